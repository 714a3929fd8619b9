"""The designer (design.md §1): for a grid of items x annotations per item, the chance that a
study names the true best system and separates it from the runner-up, its interval, its cost.

Each cell simulates S studies from `simulate`'s model and analyses every one as `leaderboard()`
does, in closed form and vectorised: Win@1 per annotation decides the order (names break ties),
and #1 is separated from #2 when the exact sign test over items on the per-item Win@1
difference, Holm-corrected over all pairs shown together, is below alpha. That verdict is the
leaderboard's own (the bootstrap plays no part in it), so it is replicated exactly, not
approximated; `fast_verdict` applies the same code to real `Annotation`s so tests can check it.
The interval width is the cluster-robust (over items) standard error of the best system's
Win@1, a ratio estimator, times 2 x 1.96: the delta-method twin of the leaderboard's percentile
bootstrap interval, which is too slow to run S x cells times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from .simulate import (
    _annotator_of,
    _draw,
    _reliabilities,
    _screen_matrix,
    _top_credit,
    system_names,
    worths_for_win1,
)
from .tables import _EPS, Annotation, _encode

DEFAULT_ITEMS = (25, 50, 100, 200)
DEFAULT_PER_ITEM = (1, 3, 5, 10)
_Z95 = 1.959963984540054


def _verdicts(
    win1: np.ndarray,
    diff: np.ndarray,
    together: np.ndarray,
    credit_items: np.ndarray,
    shown_items: np.ndarray,
    name_rank: np.ndarray,
    alpha: float,
) -> dict[str, np.ndarray]:
    """The leaderboard's order and #1-vs-#2 verdict for S studies at once.

    win1 (S, K); diff (S, N, K, K) per-item Win@1 difference summed over the item's rankings
    that showed both; together (N, K, K) pair shown together on the item; credit_items (S, N,
    K) and shown_items (N, K) per-item sums of Win@1 credit and of rankings showing the system;
    name_rank (K,) the position of each name in sorted order (leaderboard tie-break).
    """
    n_studies, n_sys = win1.shape
    # Leaderboard order: Win@1 descending, names break exact ties (lexsort: last key first).
    keys = np.stack([np.broadcast_to(name_rank, win1.shape), -np.nan_to_num(win1, nan=-np.inf)])
    order = np.lexsort(keys, axis=-1)
    first, second = order[:, 0], order[:, 1]

    upper = np.triu_indices(n_sys, 1)
    tested = together.any(0)[upper]  # pairs ever shown together on an item
    pa, pb = upper[0][tested], upper[1][tested]
    better = (diff > _EPS).sum(1)  # (S, K, K): items where s beat u
    n_ab, n_ba = better[:, pa, pb], better[:, pb, pa]
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(n_ab, n_ba), n_ab + n_ba, 0.5))
    m = p.shape[1]
    srt = np.argsort(p, axis=1, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(
        np.take_along_axis(p, srt, 1) * (m - np.arange(m)), axis=1))
    p_holm = np.empty_like(p)
    np.put_along_axis(p_holm, srt, adjusted, axis=1)
    pair_index = np.full((n_sys, n_sys), -1)
    pair_index[pa, pb] = pair_index[pb, pa] = np.arange(m)
    top_pair = pair_index[first, second]
    p12 = np.where(top_pair >= 0,
                   np.take_along_axis(p_holm, np.maximum(top_pair, 0)[:, None], 1)[:, 0], 1.0)

    # Cluster-robust SE of the ratio sum_i C_is / sum_i n_is over items.
    n_items = shown_items.shape[0]
    total = shown_items.sum(0)
    resid = credit_items - win1[:, None, :] * shown_items[None]
    scale = n_items / max(n_items - 1, 1)
    se = np.sqrt(scale * (resid ** 2).sum(1)) / np.where(total > 0, total, np.nan)
    return {"first": first, "second": second, "p_holm": p12, "separated": p12 < alpha,
            "win1_se": se}


def fast_verdict(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """The designer's analysis of one real study (per annotation): who is #1 and #2 by Win@1,
    the Holm-adjusted sign-test p-value between them, whether that separates them at `alpha`
    (the leaderboard's verdict, exactly), and each system's cluster-robust Win@1 SE."""
    t = _encode(list(annotations), systems)
    g_mat = t.item_matrix()
    credit = t.top_credit()
    shown = t.shown.astype(np.float64)
    both = t.shown[:, :, None] & t.shown[:, None, :]
    per = np.asarray(g_mat @ (credit[:, :, None] * both).reshape(len(t.item), -1))
    d1 = per.reshape(len(t.items), *both.shape[1:])
    together = np.asarray(g_mat @ both.reshape(len(t.item), -1)).reshape(d1.shape) > 0
    credit_items = np.asarray(g_mat @ credit)
    shown_items = np.asarray(g_mat @ shown)
    win1 = credit.sum(0) / np.where(shown.sum(0) > 0, shown.sum(0), np.nan)
    out = _verdicts(win1[None], (d1 - d1.swapaxes(-1, -2))[None], together, credit_items[None],
                    shown_items, _name_rank(t.systems), alpha)
    names = t.systems
    return {
        "first": names[int(out["first"][0])],
        "second": names[int(out["second"][0])],
        "p_holm": float(out["p_holm"][0]),
        "separated": bool(out["separated"][0]),
        "win1_se": {name: float(v) for name, v in zip(names, out["win1_se"][0])},
    }


def _name_rank(names: Sequence[str]) -> np.ndarray:
    rank = np.empty(len(names), np.int64)
    rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
    return rank


def simulate_verdicts(
    log_worths: Sequence[float],
    n_items: int,
    per_item: int,
    *,
    k: int | None = None,
    tie_rate: float = 0.0,
    reliability_sd: float = 0.0,
    n_annotators: int | None = None,
    position_bias: Sequence[float] | None = None,
    alpha: float = 0.05,
    n_studies: int = 200,
    seed: int = 0,
    screens: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """S simulated studies of one cell, analysed as the leaderboard does (see `_verdicts`).

    Returns arrays over studies: first, second, p_holm, separated, win1_se (S, K) and win1.
    """
    w = np.asarray(log_worths, np.float64)
    n_sys = len(w)
    k = n_sys if k is None else min(k, n_sys)
    rng = np.random.default_rng(seed)
    m = n_items * per_item
    if screens is None:
        screens = _screen_matrix(n_sys, k, m, seed)
    screens = screens[:m]
    n_ann = n_annotators or max(per_item, 20)
    if n_ann < per_item:
        raise ValueError("each item needs per_item distinct annotators")
    annotator = _annotator_of(n_items, per_item, n_ann)
    bias = np.zeros(k) if position_bias is None else np.asarray(position_bias, np.float64)
    shown = np.zeros((m, n_sys), bool)
    shown[np.arange(m)[:, None], screens] = True
    shown_r = shown.reshape(n_items, per_item, n_sys)
    both = shown_r[:, :, :, None] & shown_r[:, :, None, :]
    together = both.any(1)
    shown_items = shown_r.sum(1).astype(np.float64)
    name_rank = _name_rank(system_names(n_sys))
    chunk = max(1, int(2_000_000 // max(m * n_sys, 1)))  # studies per batch: bounds memory
    parts = []
    for start in range(0, n_studies, chunk):
        s = min(chunk, n_studies - start)
        rel = _reliabilities(rng, s, n_ann, reliability_sd)
        ranked, merged = _draw(rng, w, screens, rel, annotator, bias, tie_rate)
        credit = _top_credit(ranked, merged, n_sys).reshape(s, n_items, per_item, n_sys)
        credit_items = credit.sum(2)
        if k == n_sys:  # everyone on every screen: the pair sums are differences of sums
            diff = credit_items[:, :, :, None] - credit_items[:, :, None, :]
        else:
            d1 = np.einsum("snrk,nrku->snku", credit, both.astype(np.float64))
            diff = d1 - d1.swapaxes(-1, -2)
        win1 = credit_items.sum(1) / shown_items.sum(0)
        out = _verdicts(win1, diff, together, credit_items, shown_items, name_rank, alpha)
        out["win1"] = win1
        parts.append(out)
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def design_grid(
    target_win1: Sequence[float] | None = None,
    n_systems: int | None = None,
    k: int | None = None,
    *,
    log_worths: Sequence[float] | None = None,
    items: Sequence[int] = DEFAULT_ITEMS,
    per_item: Sequence[int] = DEFAULT_PER_ITEM,
    tie_rate: float = 0.0,
    reliability_sd: float = 0.0,
    n_annotators: int | None = None,
    seconds_per_screen: float = 60.0,
    alpha: float = 0.05,
    target: float = 0.8,
    n_studies: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The designer's table, JSON-ready.

    State the effect as Win@1 (`target_win1`, e.g. [0.443, 0.163] with `n_systems`=6: the
    rest share what is left; see `simulate.worths_for_win1`) or give `log_worths`; system 0 is
    the true best. For each (N items, r annotations per item), `n_studies` simulated studies
    give: `p_separated` P(the true best is #1 AND separated from #2 at alpha, Holm) with its
    Monte Carlo SE; `p_first` P(the true best is #1); `ci_width` the mean 95 % interval width
    of the best system's Win@1; cost in `rankings` (N x r) and `hours` (rankings x seconds /
    3600). `recommended` is the cheapest cell (fewest rankings, then more items) whose
    p_separated reaches `target`, or None.
    """
    if log_worths is None:
        if target_win1 is None:
            raise ValueError("give target_win1 or log_worths")
        w = worths_for_win1(target_win1, k, n_systems=n_systems, tie_rate=tie_rate,
                            reliability_sd=reliability_sd)
    else:
        w = np.asarray(log_worths, np.float64)
    n_sys = len(w)
    k = n_sys if k is None else min(k, n_sys)
    best = int(np.argmax(w))
    # One balanced design for the largest cell; smaller cells use its first N x r screens,
    # which is what the greedy design would have produced for them.
    screens = _screen_matrix(n_sys, k, max(items) * max(per_item), seed)
    cells = []
    for n in items:
        for r in per_item:
            v = simulate_verdicts(w, n, r, k=k, tie_rate=tie_rate, reliability_sd=reliability_sd,
                                  n_annotators=n_annotators, alpha=alpha, n_studies=n_studies,
                                  seed=seed + 7919 * n + 104729 * r, screens=screens)
            hit = (v["first"] == best) & v["separated"]
            p = float(hit.mean())
            cells.append({
                "items": int(n),
                "per_item": int(r),
                "rankings": int(n * r),
                "hours": float(n * r * seconds_per_screen / 3600),
                "p_separated": p,
                "p_separated_se": float(np.sqrt(p * (1 - p) / n_studies)),
                "p_first": float((v["first"] == best).mean()),
                "ci_width": float(np.nanmean(2 * _Z95 * v["win1_se"][:, best])),
                "best_win1": float(np.mean(v["win1"][:, best])),
            })
    ok = [c for c in cells if c["p_separated"] >= target]
    recommended = min(ok, key=lambda c: (c["rankings"], -c["items"])) if ok else None
    return {
        "method": ("simulated studies from the Plackett-Luce model of design.md, each analysed "
                   "as the leaderboard does: Win@1 per annotation, exact sign test over items, "
                   "Holm-corrected; interval width from the cluster-robust SE over items"),
        "n_systems": n_sys,
        "k": k,
        "log_worths": [float(x) for x in w],
        "tie_rate": float(tie_rate),
        "reliability_sd": float(reliability_sd),
        "seconds_per_screen": float(seconds_per_screen),
        "alpha": float(alpha),
        "target": float(target),
        "n_studies": int(n_studies),
        "seed": int(seed),
        "cells": cells,
        "recommended": recommended,
    }
