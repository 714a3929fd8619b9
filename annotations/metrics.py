"""Ranking statistics behind the leaderboard, exactly as shared/docs/metrics.md defines them.
Pure numpy/scipy (no Django), so it can be tested and benchmarked on its own.

Input: one criterion's rankings as `Annotation` objects (`ranking` = tie groups of system names,
best first). Everything else is a function of those:

- `leaderboard(annotations, systems=None, *, unit="annotation", rounds=1000, seed=0,
  alpha=0.05, attention=None, exclude=(), bt_prior=BT_PRIOR) -> dict`: every figure, with
  cluster-bootstrap (over items) percentile intervals, as a JSON-ready dict of plain
  floats/ints/lists/None. Keys: `unit`, `seed`, `bootstrap_rounds`, `alpha`, `bt_prior`,
  `n_annotations`, `n_items`, `n_annotators`, `n_units`, `chance_win1`, `systems` (best Win@1
  first; the entries' keys are listed in `leaderboard`), `pairwise`, `agreement`,
  `position_bias`, `annotators`.
- Single figures, for callers that need one and for hand-checked tests: `win1`, `strict_win1`,
  `win_at_k`, `mean_rank`, `pairwise_win_rates`, `pairwise_wins`, `bradley_terry`, `to_elo`,
  `plackett_luce`, `kendalls_w`, `krippendorff_alpha_ordinal`, `ranking_alpha`,
  `top1_agreement`, `position_bias`, `annotator_quality`, `combine_per_item`, `holm`,
  `sign_test`, `significance_groups`, `bootstrap_counts`, `bootstrap_statistics`.

Conventions. Positions are 1-based; a tie group over positions a..b gives each member the
average position (a + b) / 2. Units: "annotation" counts each ranking once; "item" first
combines an item's rankings by mean position (ties kept, `combine_per_item`), then counts each
item once. Agreement, position bias and annotator quality are always per annotation.
Undefined figures are NaN in the array-returning functions and None in dicts (a system never
shown, one system, all ties, fewer than two annotators...). Malformed input (a system twice in
one ranking, an empty ranking or tie group, a display order that is not a permutation of the
ranked systems, a name outside `systems`) raises ValueError: that is a bug upstream, not data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components
from scipy.special import expit

# L2 prior strength on Bradley-Terry / Plackett-Luce log-strengths (penalty alpha * sum(theta^2),
# a Gaussian prior with variance 1 / (2 alpha) = 50): negligible next to real data, but it keeps a
# system that always wins finite and makes every fit unique (the prior centres each connected
# component of the comparison graph at 0).
BT_PRIOR = 0.01
ELO_SCALE = 400 / math.log(10)  # 400 * log10(e^theta) = theta * 400 / ln 10
ELO_MEAN = 1000.0
UNITS = ("annotation", "item")
# Plackett-Luce bootstrap costs one column per distinct choice set; beyond this the bootstrap
# would be dominated by it, so its intervals are left out (the point estimate stays).
PL_MAX_CHOICE_SETS = 512
_CHUNK_ROUNDS = 128  # bootstrap rounds resampled at once: bounds memory at 128 x items floats
_EPS = 1e-9  # credits are multiples of 1/g; this only absorbs floating-point noise


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotator's ranking of one item's responses under one criterion."""

    item: str
    annotator: str
    ranking: tuple[tuple[str, ...], ...]  # tie groups, best first
    display_order: tuple[str, ...] | None = None  # system in slot 1, 2, ... as shown
    seconds: float | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Annotation:
        """Build from the import/export JSONL shape (`item_id`, `annotator`, `ranking`, ...)."""
        display = record.get("display_order")
        seconds = record.get("seconds")
        return cls(
            item=str(record["item_id"]),
            annotator=str(record["annotator"]),
            ranking=tuple(tuple(group) for group in record["ranking"]),
            display_order=None if display is None else tuple(display),
            seconds=None if seconds is None else float(seconds),
        )


# ---------------------------------------------------------------------------------------------
# Encoding: rankings -> arrays (one row per ranking, one column per system)


@dataclass
class _Table:
    systems: tuple[str, ...]
    items: tuple[str, ...]
    annotators: tuple[str, ...]
    item: np.ndarray  # (N,) item index of each ranking
    annotator: np.ndarray  # (N,) annotator index
    first: np.ndarray  # (N, K) position a of the system's tie group, 0 where not shown
    last: np.ndarray  # (N, K) position b, 0 where not shown
    slot: np.ndarray  # (N, K) display slot (0-based), -1 where unknown
    seconds: np.ndarray  # (N,) NaN where unknown

    def __post_init__(self) -> None:
        self.shown = self.first > 0
        self.k = self.last.max(axis=1) if self.last.size else np.zeros(len(self.item), np.int64)
        self.mid = (self.first + self.last) / 2.0  # 0 where not shown

    def item_matrix(self) -> sparse.csr_matrix:
        """(items x rankings) indicator: `G @ per_ranking` sums each item's rankings."""
        n = len(self.item)
        return sparse.csr_matrix(
            (np.ones(n), (self.item, np.arange(n))), shape=(len(self.items), n)
        )

    def top_credit(self) -> np.ndarray:
        """(N, K) Win@1 credit: 1/g for each member of the first tie group, else 0."""
        g = self.last - self.first + 1
        return np.where(self.first == 1, 1.0 / np.maximum(g, 1), 0.0)

    def subset(self, keep: np.ndarray) -> _Table:
        """The rankings where `keep`; items and annotators renumbered by first appearance."""
        item_ids, item = _first_appearance(self.item[keep])
        ann_ids, annotator = _first_appearance(self.annotator[keep])
        return _Table(
            systems=self.systems,
            items=tuple(self.items[i] for i in item_ids),
            annotators=tuple(self.annotators[i] for i in ann_ids),
            item=item,
            annotator=annotator,
            first=self.first[keep],
            last=self.last[keep],
            slot=self.slot[keep],
            seconds=self.seconds[keep],
        )


def _first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct codes in order of first appearance, each element's index into them)."""
    uniq, first_at, inverse = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first_at, kind="stable")
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    return uniq[order], rank[np.asarray(inverse).ravel()]


def _system_names(annotations: Sequence[Annotation], systems: Sequence[str] | None) -> list[str]:
    if systems is None:
        return sorted({name for ann in annotations for group in ann.ranking for name in group})
    names = list(systems)
    if len(set(names)) != len(names):
        raise ValueError("systems lists a name twice")
    return names


def _indices(values: Iterable[str], index: dict[str, int], what: str) -> np.ndarray:
    try:
        return np.fromiter(map(index.__getitem__, values), np.int64)
    except KeyError as err:
        raise ValueError(f"{what} names unknown system {err.args[0]!r}") from None


def _encode(annotations: Sequence[Annotation], systems: Sequence[str] | None) -> _Table:
    names = _system_names(annotations, systems)
    index = {name: i for i, name in enumerate(names)}
    n_rows, n_sys = len(annotations), len(names)
    items: dict[str, int] = {}
    annotators: dict[str, int] = {}
    # The input is Python objects, so one pass over them is unavoidable; it is kept to C-level
    # iteration (map, chain) and the positions are then worked out with array code.
    item = np.fromiter((items.setdefault(a.item, len(items)) for a in annotations), np.int64,
                       count=n_rows)
    annotator = np.fromiter((annotators.setdefault(a.annotator, len(annotators))
                             for a in annotations), np.int64, count=n_rows)
    seconds = np.array([np.nan if a.seconds is None else a.seconds for a in annotations],
                       np.float64).reshape(n_rows)
    rankings = [a.ranking for a in annotations]
    n_groups = np.fromiter(map(len, rankings), np.int64, count=n_rows)
    sizes = np.fromiter(map(len, chain.from_iterable(rankings)), np.int64)
    cols = _indices(chain.from_iterable(chain.from_iterable(rankings)), index, "a ranking")

    group_row = np.repeat(np.arange(n_rows), n_groups)
    k = np.bincount(group_row, weights=sizes, minlength=n_rows).astype(np.int64)
    bad = (k == 0) | (np.bincount(group_row, weights=sizes == 0, minlength=n_rows) > 0)
    if bad.any():
        n = int(np.argmax(bad))
        raise ValueError(f"ranking {n} (item {annotations[n].item!r}) is empty or has an "
                         "empty tie group")
    ends = np.cumsum(sizes)
    row_start = np.cumsum(k) - k  # names before this row
    group_first = ends - sizes - row_start[group_row] + 1
    rows = np.repeat(group_row, sizes)
    seen = np.bincount(rows * n_sys + cols, minlength=n_rows * n_sys)
    if seen.size and seen.max() > 1:
        n = int(np.argmax(seen) // n_sys)
        raise ValueError(f"ranking {n} (item {annotations[n].item!r}) names a system twice")
    first = np.zeros((n_rows, n_sys), np.int64)
    last = np.zeros((n_rows, n_sys), np.int64)
    first[rows, cols] = np.repeat(group_first, sizes)
    last[rows, cols] = np.repeat(group_first + sizes - 1, sizes)

    slot = np.full((n_rows, n_sys), -1, np.int64)
    displays = [a.display_order or () for a in annotations]
    d_len = np.fromiter(map(len, displays), np.int64, count=n_rows)
    if d_len.any():
        d_cols = _indices(chain.from_iterable(displays), index, "a display order")
        d_rows = np.repeat(np.arange(n_rows), d_len)
        d_seen = np.bincount(d_rows * n_sys + d_cols, minlength=n_rows * n_sys)
        d_seen = d_seen.reshape(n_rows, n_sys)
        # A display order must be a permutation of the ranked systems: same set, no repeats.
        bad = (d_seen > 1).any(1) | ((d_len > 0) & ((d_seen > 0) != (first > 0)).any(1))
        if bad.any():
            n = int(np.argmax(bad))
            raise ValueError(
                f"ranking {n} (item {annotations[n].item!r}): display order is not a "
                "permutation of the ranked systems"
            )
        slot[d_rows, d_cols] = np.arange(len(d_rows)) - np.repeat(np.cumsum(d_len) - d_len, d_len)
    return _Table(
        systems=tuple(names),
        items=tuple(items),
        annotators=tuple(annotators),
        item=item,
        annotator=annotator,
        first=first,
        last=last,
        slot=slot,
        seconds=seconds,
    )


def _combine_table(t: _Table) -> _Table:
    """One row per item: systems ordered by mean position over the item's rankings, ties kept."""
    n_items, n_sys = len(t.items), len(t.systems)
    g_mat = t.item_matrix()
    shown = t.shown
    # Sums of half-integers are exact in floating point, and equal rationals divide to equal
    # floats, so exact equality below finds exactly the mathematical ties.
    total = np.asarray(g_mat @ (t.mid * shown))
    count = np.asarray(g_mat @ shown.astype(np.float64))
    present = count > 0
    mean = np.where(present, total / np.where(present, count, 1), np.inf)
    both = present[:, :, None] & present[:, None, :]
    better = both & (mean[:, None, :] < mean[:, :, None])  # [i, s, t]: t strictly ahead of s
    not_worse = both & (mean[:, None, :] <= mean[:, :, None])
    first = np.where(present, 1 + better.sum(2), 0)
    last = np.where(present, not_worse.sum(2), 0)
    return _Table(
        systems=t.systems,
        items=t.items,
        annotators=("consensus",),
        item=np.arange(n_items),
        annotator=np.zeros(n_items, np.int64),
        first=first,
        last=last,
        slot=np.full((n_items, n_sys), -1, np.int64),
        seconds=np.full(n_items, np.nan),
    )


def _table(annotations, systems, unit: str) -> _Table:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    t = _encode(list(annotations), systems)
    return _combine_table(t) if unit == "item" else t


def combine_per_item(
    annotations: Iterable[Annotation], systems: Sequence[str] | None = None
) -> list[Annotation]:
    """Each item's rankings combined into one (annotator "consensus") by mean position (Borda).

    A system's mean position is over the rankings that showed it; equal means stay tied.
    """
    t = _table(annotations, systems, "item")
    out = []
    for i, name in enumerate(t.items):
        groups: dict[int, list[str]] = {}
        for s in np.flatnonzero(t.first[i]):
            groups.setdefault(int(t.first[i, s]), []).append(t.systems[s])
        ranking = tuple(tuple(groups[a]) for a in sorted(groups))
        out.append(Annotation(item=name, annotator="consensus", ranking=ranking))
    return out


# ---------------------------------------------------------------------------------------------
# Sufficient statistics per item, and the figures computed from their (weighted) totals.
# Every figure is a ratio of sums over rankings, so a bootstrap round (item i drawn w_i times)
# only needs w @ (per-item sums): all rounds are one matrix product.


@dataclass
class _Layout:
    """Where each sufficient statistic sits among the feature columns."""

    n_sys: int
    kmax: int  # longest ranking: Win@k is kept for k = 1..kmax
    n_sets: int  # Plackett-Luce choice sets in the features; 0 when PL is not bootstrapped

    def __post_init__(self) -> None:
        k, width = self.n_sys, 0
        spans = {}
        for name, size in (
            ("n", k),
            ("strict", k),
            ("win_at", self.kmax * k),
            ("pos", k),
            ("normpos", k),
            ("normcnt", k),
            ("score", k * k),
            ("count", k * k),
            ("pl_wins", k if self.n_sets else 0),
            ("pl_sets", self.n_sets),
        ):
            spans[name] = slice(width, width + size)
            width += size
        self.spans, self.width = spans, width


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _pairs(t: _Table) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, K) pairwise score (1 above, 0.5 tied, 0 below) and co-shown indicator."""
    shown = t.shown
    n_sys = shown.shape[1]
    both = shown[:, :, None] & shown[:, None, :] & ~np.eye(n_sys, dtype=bool)
    above = both & (t.last[:, :, None] < t.first[:, None, :])
    tied = both & (t.first[:, :, None] == t.first[:, None, :])
    return above + 0.5 * tied, both


def _choice_stages(t: _Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plackett-Luce stages with Breslow ties.

    Every tie group except the last is chosen from the systems at or below it; each member of
    the group is one choice from that risk set. Returns `chooses` (N, K), True where the
    system is one such choice, the row of each choice, the index of its choice set, and the
    distinct choice sets (U, K).
    """
    shown = t.shown
    n_sys = shown.shape[1]
    chooses = shown & (t.last < t.k[:, None])
    rows, cols = np.nonzero(chooses)
    if rows.size == 0:
        return chooses, rows, rows, np.zeros((0, n_sys), bool)
    risk = shown[rows] & (t.first[rows] >= t.first[rows, cols][:, None])
    if n_sys <= 62:
        codes = risk.astype(np.int64) @ (np.int64(1) << np.arange(n_sys, dtype=np.int64))
        uniq, inverse = np.unique(codes, return_inverse=True)
        sets = (uniq[:, None] >> np.arange(n_sys)) & 1 == 1
    else:
        sets, inverse = np.unique(risk, axis=0, return_inverse=True)
    return chooses, rows, np.asarray(inverse).ravel(), sets.astype(bool)


def _features(t: _Table, pl_bootstrap: bool = True) -> tuple[np.ndarray, _Layout, dict]:
    """Per-item sums (items x features) of everything the per-system figures are ratios of."""
    n_rows, n_sys = t.first.shape
    n_items = len(t.items)
    shown = t.shown
    k = t.k
    kmax = int(k.max()) if n_rows else 0
    g = np.where(shown, t.last - t.first + 1, 1)
    g_mat = t.item_matrix()

    def per_item(block: np.ndarray) -> np.ndarray:
        return np.asarray(g_mat @ _flat(block), np.float64)

    blocks = [per_item(shown.astype(np.float64))]
    blocks.append(per_item(shown & (t.first == 1) & (g == 1)))
    # Win@k credit: the share of the tie group a..b that lies within the top k.
    ks = np.arange(1, kmax + 1)
    inside = np.minimum(t.last[:, None, :], ks[None, :, None]) - t.first[:, None, :] + 1
    blocks.append(per_item(np.clip(inside, 0, None) * (shown / g)[:, None, :]))
    mid = t.mid * shown
    blocks.append(per_item(mid))
    # A ranking of one response has no normalised rank ((a+b)/2 - 1) / (k - 1) = 0 / 0.
    norm_ok = shown & (k[:, None] > 1)
    blocks.append(per_item(np.where(norm_ok, (mid - 1) / np.maximum(k - 1, 1)[:, None], 0.0)))
    blocks.append(per_item(norm_ok))
    score, both = _pairs(t)
    blocks.append(per_item(score))
    together = per_item(both)
    blocks.append(together)

    chooses, rows, set_idx, sets = _choice_stages(t)
    in_features = pl_bootstrap and 0 < len(sets) <= PL_MAX_CHOICE_SETS
    if in_features:
        blocks.append(per_item(chooses))
        per_set = np.bincount(
            t.item[rows] * len(sets) + set_idx, minlength=n_items * len(sets)
        ).reshape(n_items, len(sets))
        blocks.append(per_set.astype(np.float64))
    layout = _Layout(n_sys=n_sys, kmax=kmax, n_sets=len(sets) if in_features else 0)
    x = np.hstack(blocks) if n_items else np.zeros((0, layout.width))
    extra = {
        "pl_wins": chooses.sum(0).astype(np.float64),
        "pl_sets": np.bincount(set_idx, minlength=len(sets)).astype(np.float64),
        "pl_sets_matrix": sets,
        # Per-item Win@1 difference for each pair shown together, for the paired sign test.
        "win1_diff": _per_item_win1_diff(t, both, g_mat),
        "together": together.reshape(n_items, n_sys, n_sys) > 0,
    }
    return x, layout, extra


def _flat(block: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, prod(...)), also when N or the trailing size is 0."""
    return block.reshape(block.shape[0], int(np.prod(block.shape[1:])))


def _per_item_win1_diff(t: _Table, both: np.ndarray, g_mat) -> np.ndarray:
    credit = t.top_credit()
    diff = (credit[:, :, None] - credit[:, None, :]) * both
    n_rows, n_sys = credit.shape
    return np.asarray(g_mat @ _flat(diff)).reshape(len(t.items), n_sys, n_sys)


def _rates(totals: np.ndarray, lay: _Layout) -> dict[str, np.ndarray]:
    """Per-system ratios from totals (R x features), R = rounds (1 for the point estimate)."""
    r, k = totals.shape[0], lay.n_sys
    sp = lay.spans
    n = totals[:, sp["n"]]
    win_at = _div(totals[:, sp["win_at"]].reshape(r, lay.kmax, k), n[:, None, :])
    score = totals[:, sp["score"]].reshape(r, k, k)
    count = totals[:, sp["count"]].reshape(r, k, k)
    return {
        "n": n,
        "win_at": win_at,  # (R, kmax, K)
        "win1": win_at[:, 0, :] if lay.kmax else np.full((r, k), np.nan),
        "strict_win1": _div(totals[:, sp["strict"]], n),
        "mean_rank": _div(totals[:, sp["pos"]], n),
        "normalised_rank": _div(totals[:, sp["normpos"]], totals[:, sp["normcnt"]]),
        "score": score,
        "count": count,
        "win_rate": _div(score, count),
    }


def _competition_rank(values: np.ndarray) -> np.ndarray:
    """Rank 1 = highest; equal values share the best rank; NaN stays unranked (NaN)."""
    with np.errstate(invalid="ignore"):
        ahead = (values[..., None, :] > values[..., :, None] + _EPS).sum(-1)
    return np.where(np.isnan(values), np.nan, 1.0 + ahead)


# ---------------------------------------------------------------------------------------------
# Bradley-Terry and Plackett-Luce: batched damped Newton over (rounds x systems)


def _newton(objective, grad_hess, theta: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Minimise a strictly convex objective for a batch of problems at once.

    `objective(theta) -> (R,)`, `grad_hess(theta) -> (R, K), (R, K, K)`. Backtracking keeps each
    problem's objective non-increasing, so nearly separable data cannot make Newton overshoot.
    With ~1e6 comparisons, steps below ~1e-9 are floating-point noise, hence tol ~1e-8 (in
    log-strength; 1e-6 Elo points).
    """
    f = objective(theta)
    for _ in range(max_iter):
        grad, hess = grad_hess(theta)
        # Without a prior the Hessian is singular along theta + c (strengths are relative). The
        # gradient has no component there, so a ridge far below the curvature only makes the
        # solve possible; it does not move the optimum.
        diag = np.abs(np.diagonal(hess, axis1=1, axis2=2)).max(1, initial=0.0)
        hess = hess + np.eye(hess.shape[-1]) * (1e-12 * diag + 1e-300)[:, None, None]
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        scale = np.ones(theta.shape[0])
        for _ in range(50):
            f_new = objective(theta - scale[:, None] * step)
            worse = f_new > f + 1e-12 * np.abs(f)
            if not worse.any():
                break
            scale[worse] /= 2
        scale[worse] = 0.0  # no descent left at all: that problem has converged
        theta = theta - scale[:, None] * step
        f = np.where(worse, f, f_new)
        if np.max(np.abs(scale[:, None] * step), initial=0.0) < tol:
            break
    return theta


def bradley_terry(
    wins: np.ndarray, alpha: float = BT_PRIOR, *, tol: float = 1e-8, max_iter: int = 100
) -> np.ndarray:
    """MAP Bradley-Terry log-strengths; `wins[..., s, t]` = times s beat t (a tie is 0.5 each way).

    Minimises sum_st wins[s,t] * log(1 + exp(theta_t - theta_s)) + alpha * sum_s theta_s^2 for
    every leading index at once. Returns theta[..., K], mean 0 over systems with comparisons,
    NaN for systems with none. In a disconnected comparison graph the prior centres each
    component at 0, so scores are only comparable within a component.
    """
    wins = np.asarray(wins, np.float64)
    lead, n_sys = wins.shape[:-2], wins.shape[-1]
    c = wins.reshape(int(np.prod(lead)), n_sys, n_sys)
    played = c + np.swapaxes(c, 1, 2)
    won = c.sum(2)
    eye = np.eye(n_sys, dtype=bool)

    def objective(theta):
        diff = theta[:, None, :] - theta[:, :, None]  # [s, t] = theta_t - theta_s
        return (c * np.logaddexp(0.0, diff)).sum((1, 2)) + alpha * (theta**2).sum(1)

    def grad_hess(theta):
        p = expit(theta[:, :, None] - theta[:, None, :])  # P(s beats t)
        grad = (played * p).sum(2) - won + 2 * alpha * theta
        w = played * p * (1 - p)
        hess = np.where(eye, 0.0, -w)
        hess += np.eye(n_sys) * (w.sum(2) + 2 * alpha)[:, :, None]
        return grad, hess

    theta = _newton(objective, grad_hess, np.zeros(c.shape[:2]), tol, max_iter)
    has_data = played.sum(2) > 0
    theta = np.where(has_data, theta, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
        theta = theta - np.nanmean(theta, axis=1, keepdims=True)
    return theta.reshape(*lead, n_sys)


def _plackett_luce_fit(
    chosen: np.ndarray, sets: np.ndarray, set_counts: np.ndarray, alpha: float
) -> np.ndarray:
    """MAP Plackett-Luce (Breslow ties) for R problems at once.

    chosen (R, K): times each system was chosen; sets (U, K): choice sets; set_counts (R, U):
    choices made from each set. Log-likelihood: sum_s chosen_s theta_s
    - sum_u set_counts_u * log sum_{s in u} exp(theta_s). Every sum over sets is a matrix
    product with the (U, K) membership matrix, so a round costs a few small GEMMs.
    """
    r, n_sys = chosen.shape
    member = sets.astype(np.float64)
    member_pairs = (member[:, :, None] * member[:, None, :]).reshape(len(sets), -1)
    tiny = np.finfo(np.float64).tiny

    def strengths(theta):
        top = theta.max(1, keepdims=True)
        e = np.exp(theta - top)  # relative strengths, <= 1, so no overflow
        return e, top, np.maximum(e @ member.T, tiny)  # (R, U) strength of each set

    def objective(theta):
        _, top, sums = strengths(theta)
        lse = np.log(sums) + top
        return -(chosen * theta).sum(1) + (set_counts * lse).sum(1) + alpha * (theta**2).sum(1)

    def grad_hess(theta):
        e, _, sums = strengths(theta)
        rate = set_counts / sums
        expected = e * (rate @ member)  # sum_u count_u * P(s chosen from u)
        grad = expected - chosen + 2 * alpha * theta
        # Hessian: sum_u count_u (diag(p_u) - p_u p_u^T), with p_u = e * member_u / sums_u.
        outer = ((set_counts / sums**2) @ member_pairs).reshape(r, n_sys, n_sys)
        hess = -(e[:, :, None] * e[:, None, :]) * outer
        hess += np.eye(n_sys) * (expected + 2 * alpha)[:, :, None]
        return grad, hess

    theta = _newton(objective, grad_hess, np.zeros((r, n_sys)), 1e-8, 100)
    has_data = (set_counts @ member) > 0
    theta = np.where(has_data, theta, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return theta - np.nanmean(theta, axis=1, keepdims=True)


def to_elo(theta):
    """Log-strength -> Elo-like 400 * log10(strength) + 1000 (mean 1000 when mean theta = 0)."""
    return np.asarray(theta, np.float64) * ELO_SCALE + ELO_MEAN


# ---------------------------------------------------------------------------------------------
# Bootstrap over items


def _count_chunks(n_items: int, rounds: int, seed: int):
    """Item-resample counts, `_CHUNK_ROUNDS` rounds at a time: row r = how often each item is
    drawn when n_items items are drawn with replacement (a multinomial count vector)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < rounds:
        r = min(_CHUNK_ROUNDS, rounds - done)
        draws = rng.integers(0, n_items, size=(r, n_items))
        draws += (np.arange(r) * n_items)[:, None]
        yield np.bincount(draws.ravel(), minlength=r * n_items).reshape(r, n_items)
        done += r


def bootstrap_counts(n_items: int, rounds: int, seed: int) -> np.ndarray:
    """The (rounds x items) resample counts the leaderboard uses for this seed."""
    if n_items == 0 or rounds == 0:
        return np.zeros((rounds, n_items), np.int64)
    return np.vstack(list(_count_chunks(n_items, rounds, seed)))


def _bootstrap_totals(x: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    if x.shape[0] == 0 or rounds == 0:
        return np.zeros((0, x.shape[1]))
    return np.vstack([w.astype(np.float64) @ x for w in _count_chunks(x.shape[0], rounds, seed)])


def _all_figures(totals: np.ndarray, lay: _Layout, extra: dict, bt_prior: float) -> dict:
    out = _rates(totals, lay)
    out["bt"] = bradley_terry(out["score"], bt_prior)
    out["rank"] = _competition_rank(out["win1"])
    sets = extra["pl_sets_matrix"]
    if lay.n_sets:
        sp = lay.spans
        out["pl"] = _plackett_luce_fit(totals[:, sp["pl_wins"]], sets, totals[:, sp["pl_sets"]],
                                       bt_prior)
    else:
        out["pl"] = np.full(out["win1"].shape, np.nan)
    return out


def bootstrap_statistics(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    unit: str = "annotation",
    rounds: int = 1000,
    seed: int = 0,
    bt_prior: float = BT_PRIOR,
) -> dict[str, Any]:
    """Every per-system figure for every bootstrap round (arrays with rounds first).

    Rounds resample items (with all their rankings) using `bootstrap_counts(n_items, rounds,
    seed)`, items numbered in order of first appearance. Keys: `systems`, `n`, `win1`,
    `strict_win1`, `win_at` (R, kmax, K), `mean_rank`, `normalised_rank`, `win_rate` (R, K, K),
    `bt`, `pl`, `rank` (competition rank by Win@1).
    """
    t = _table(annotations, systems, unit)
    x, lay, extra = _features(t)
    out = _all_figures(_bootstrap_totals(x, rounds, seed), lay, extra, bt_prior)
    out["systems"] = list(t.systems)
    return out


# ---------------------------------------------------------------------------------------------
# Single figures (point estimates)


def _point(annotations, systems, unit) -> tuple[_Table, dict]:
    t = _table(annotations, systems, unit)
    x, lay, _ = _features(t, pl_bootstrap=False)
    return t, _rates(x.sum(0, keepdims=True), lay)


def _by_system(t: _Table, values: np.ndarray) -> dict[str, float | None]:
    return {name: _num(v) for name, v in zip(t.systems, values)}


def win1(annotations, systems=None, *, unit="annotation") -> dict[str, float | None]:
    """Win@1: mean of 1/g over rankings that showed the system, when its tie group is first."""
    t, r = _point(annotations, systems, unit)
    return _by_system(t, r["win1"][0])


def strict_win1(annotations, systems=None, *, unit="annotation") -> dict[str, float | None]:
    """Share of rankings that showed the system in which it is first alone."""
    t, r = _point(annotations, systems, unit)
    return _by_system(t, r["strict_win1"][0])


def win_at_k(annotations, k: int, systems=None, *, unit="annotation") -> dict[str, float | None]:
    """Win@k: mean share max(0, min(b, k) - a + 1) / g of the system's tie group in the top k."""
    t, r = _point(annotations, systems, unit)
    kmax = r["win_at"].shape[1]
    if k < 1:
        raise ValueError("k must be at least 1")
    if kmax == 0:
        return _by_system(t, np.full(len(t.systems), np.nan))
    # Beyond the longest ranking every shown system is inside the top k.
    return _by_system(t, r["win_at"][0, min(k, kmax) - 1])


def mean_rank(
    annotations, systems=None, *, normalised=False, unit="annotation"
) -> dict[str, float | None]:
    """Mean of (a + b) / 2, or of ((a + b) / 2 - 1) / (k - 1) when normalised (0 best, 1 worst;
    rankings of a single response are left out of the normalised mean)."""
    t, r = _point(annotations, systems, unit)
    return _by_system(t, r["normalised_rank" if normalised else "mean_rank"][0])


def pairwise_win_rates(
    annotations, systems=None, *, unit="annotation"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(systems, rate[s, t], count[s, t]): s's mean score against t (1 above, 0.5 tied, 0
    below) over rankings showing both, NaN where never shown together; count = those rankings."""
    t, r = _point(annotations, systems, unit)
    return list(t.systems), r["win_rate"][0], r["count"][0].astype(np.int64)


def pairwise_wins(annotations, systems=None, *, unit="annotation") -> tuple[list[str], np.ndarray]:
    """(systems, wins[s, t]): times s was above t, a tie 0.5 to each; Bradley-Terry's input."""
    t, r = _point(annotations, systems, unit)
    return list(t.systems), r["score"][0]


def plackett_luce(
    annotations, systems=None, *, alpha: float = BT_PRIOR, unit="annotation"
) -> dict[str, float | None]:
    """MAP Plackett-Luce log-strengths (mean 0) from the full rankings; a tie group is handled
    as Breslow does in survival analysis (each member chosen from the same remaining set)."""
    t = _table(annotations, systems, unit)
    chooses, _, set_idx, sets = _choice_stages(t)
    chosen = chooses.sum(0).astype(np.float64)
    counts = np.bincount(set_idx, minlength=len(sets)).astype(np.float64)
    theta = _plackett_luce_fit(chosen[None], sets, counts[None], alpha)[0]
    return _by_system(t, theta)


def kendalls_w(annotations: Iterable[Annotation]) -> dict[str, float | None]:
    """Tie-corrected Kendall's W per item across its annotators.

    Uses the systems every annotator of the item was shown, re-ranked (mid-ranks) within that
    set: W = 12 S / (m^2 (n^3 - n) - m sum_j T_j), T_j = sum over rater j's tie groups of
    t^3 - t. None where m < 2 raters, n < 2 systems, or every rater tied everything.
    """
    t = _encode(list(annotations), None)
    return dict(zip(t.items, (_num(v) for v in _kendalls_w(t))))


def _kendalls_w(t: _Table) -> np.ndarray:
    n_items = len(t.items)
    if n_items == 0:
        return np.zeros(0)
    g_mat = t.item_matrix()
    shown = t.shown
    m = np.bincount(t.item, minlength=n_items).astype(np.float64)
    common = np.asarray(g_mat @ shown.astype(np.float64)) == m[:, None]  # (M, K)
    cm = common[t.item]  # (N, K): shown to every annotator of the row's item
    ahead = cm[:, None, :] & (t.last[:, None, :] < t.first[:, :, None])  # [n, s, t]: t above s
    tied = cm[:, None, :] & (t.first[:, None, :] == t.first[:, :, None])  # includes s itself
    n_tied = tied.sum(2)
    rank = np.where(cm, 1 + ahead.sum(2) + (n_tied - 1) / 2, 0.0)
    rank_sum = np.asarray(g_mat @ rank)
    n = common.sum(1).astype(np.float64)
    dev = np.where(common, rank_sum - (m * (n + 1) / 2)[:, None], 0.0)
    s = (dev**2).sum(1)
    # sum over a rater's tie groups of t^3 - t = sum over its members of t^2 - 1
    ties = g_mat @ np.where(cm, n_tied**2 - 1, 0).sum(1).astype(np.float64)
    denom = m**2 * (n**3 - n) - m * ties
    ok = (m >= 2) & (n >= 2) & (denom > _EPS)
    return np.where(ok, 12 * s / np.where(ok, denom, 1), np.nan)


def _alpha_ordinal_from_counts(counts: np.ndarray) -> float:
    """Krippendorff's alpha (ordinal) from (units x values) counts, values in increasing order."""
    counts = np.asarray(counts, np.float64)
    m_u = counts.sum(1)
    keep = m_u >= 2  # a unit coded once has no pairable values
    counts, m_u = counts[keep], m_u[keep]
    if counts.size == 0:
        return math.nan
    scaled = counts / (m_u - 1)[:, None]
    coincidence = scaled.T @ counts - np.diag(scaled.sum(0))
    n_c = coincidence.sum(1)
    total = n_c.sum()
    cum = np.cumsum(n_c)
    # ordinal metric: delta^2(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2
    lo = np.minimum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
    hi = np.maximum.outer(np.arange(len(n_c)), np.arange(len(n_c)))
    span = cum[hi] - cum[lo] + n_c[lo]
    delta2 = (span - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    expected = (np.outer(n_c, n_c) * delta2).sum()
    if total <= 1 or expected <= 0:
        return math.nan
    return float(1 - (total - 1) * (coincidence * delta2).sum() / expected)


def krippendorff_alpha_ordinal(reliability_data) -> float | None:
    """Krippendorff's alpha, ordinal metric; rows = coders, columns = units, NaN = missing."""
    data = np.asarray(reliability_data, np.float64)
    present = ~np.isnan(data)
    values, codes = np.unique(data[present], return_inverse=True)
    units = np.nonzero(present)[1]
    counts = np.zeros((data.shape[1], len(values)))
    np.add.at(counts, (units, codes), 1.0)
    return _num(_alpha_ordinal_from_counts(counts))


def _ranking_alpha(t: _Table) -> float:
    rows, cols = np.nonzero(t.shown)
    if rows.size == 0:
        return math.nan
    value = (t.first[rows, cols] + t.last[rows, cols])  # 2 x position: exact integer codes
    values, codes = np.unique(value, return_inverse=True)
    unit = t.item[rows] * len(t.systems) + cols
    counts = np.bincount(unit * len(values) + codes, minlength=len(t.items) * len(t.systems) *
                         len(values)).reshape(-1, len(values))
    return _alpha_ordinal_from_counts(counts)


def ranking_alpha(annotations: Iterable[Annotation]) -> float | None:
    """Krippendorff's alpha (ordinal) with units = (item, system), values = position (a + b) / 2,
    coders = annotators."""
    return _num(_ranking_alpha(_encode(list(annotations), None)))


def _top1_agreement(t: _Table) -> tuple[float, float, int]:
    g_mat = t.item_matrix()
    credit = t.top_credit()
    # A pair of rankings agrees with probability sum_s c1_s * c2_s (a random pick from each top
    # group coincides), so a shared sole first place scores 1. Summed over an item's pairs:
    # (|sum c|^2 - sum |c|^2) / 2. Chance: both pick uniformly among what they were shown.
    chance = t.shown / np.maximum(t.k, 1)[:, None]

    def pair_sum(v):
        return float(((np.asarray(g_mat @ v) ** 2).sum() - (v**2).sum()) / 2)

    m = np.bincount(t.item, minlength=len(t.items)).astype(np.float64)
    pairs = float((m * (m - 1) / 2).sum())
    if pairs == 0:
        return math.nan, math.nan, 0
    return pair_sum(credit) / pairs, pair_sum(chance) / pairs, int(pairs)


def top1_agreement(annotations: Iterable[Annotation]) -> tuple[float | None, float | None]:
    """(agreement, chance): share of annotator pairs on one item that chose the same first
    response (tied firsts give partial credit), and the same share if both picked at random."""
    agree, chance, _ = _top1_agreement(_encode(list(annotations), None))
    return _num(agree), _num(chance)


def _position_bias(t: _Table) -> dict:
    has = (t.slot >= 0).any(1)
    credit = t.top_credit()[has]
    slot = t.slot[has]
    k = t.k[has]
    n = int(has.sum())
    kmax = int(k.max()) if n else 0
    observed = np.bincount(slot[credit > 0], weights=credit[credit > 0], minlength=kmax)
    expected = np.zeros(kmax)
    chi2, df = 0.0, 0
    # Rankings of different lengths have different null shares (1/k), so the test is stratified
    # by k: a sum of independent chi-squares, degrees of freedom adding up.
    for kk in np.unique(k):
        rows = k == kk
        o = np.bincount(slot[rows][credit[rows] > 0], weights=credit[rows][credit[rows] > 0],
                        minlength=kk)
        e = np.full(kk, rows.sum() / kk)
        expected[:kk] += e
        if kk >= 2:
            chi2 += float(((o - e) ** 2 / e).sum())
            df += int(kk - 1)
    return {
        "n": n,
        "slots": [
            {"slot": j + 1, "share": _num(observed[j] / n), "expected": _num(expected[j] / n)}
            for j in range(kmax)
        ],
        "chi2": chi2 if df else None,
        "df": df if df else None,
        "p": float(stats.chi2.sf(chi2, df)) if df else None,
    }


def position_bias(annotations: Iterable[Annotation]) -> dict:
    """Share of rankings whose first place sat in each display slot (a tied first place splits
    its credit), against the 1/k expected without bias, with a chi-square test (stratified by k).
    Rankings without a display order are left out; `n` counts the rest."""
    return _position_bias(_encode(list(annotations), None))


def _loo_agreement(t: _Table) -> np.ndarray:
    """Kendall's tau-b of each ranking against the mean position of the item's other rankings."""
    g_mat = t.item_matrix()
    shown = t.shown
    mid = t.mid * shown
    total = np.asarray(g_mat @ mid)[t.item] - mid
    count = np.asarray(g_mat @ shown.astype(np.float64))[t.item] - shown
    common = shown & (count > 0)
    consensus = _div(total, count)
    both = common[:, :, None] & common[:, None, :]
    x = np.where(both, np.sign(mid[:, :, None] - mid[:, None, :]), 0.0)
    y = np.where(both, np.sign(np.nan_to_num(consensus[:, :, None] - consensus[:, None, :])), 0.0)
    num = (x * y).sum((1, 2))
    den = np.sqrt((x**2).sum((1, 2)) * (y**2).sum((1, 2)))
    return _div(num, den)


def annotator_quality(
    annotations: Iterable[Annotation], attention: Mapping[str, float] | None = None
) -> list[dict]:
    """Per annotator: `n_annotations`; `loo_agreement`, the mean Kendall tau-b between their
    ranking and the item's other rankings combined by mean position (None where no other
    ranking, or all ties); `attention_pass_rate` as given; `median_seconds` per item."""
    return _annotator_quality(_encode(list(annotations), None), attention, ())


def _annotator_quality(t: _Table, attention, exclude: Collection[str]) -> list[dict]:
    tau = _loo_agreement(t)
    n_ann = len(t.annotators)
    defined = ~np.isnan(tau)
    n = np.bincount(t.annotator, minlength=n_ann)
    tau_sum = np.bincount(t.annotator[defined], weights=tau[defined], minlength=n_ann)
    tau_n = np.bincount(t.annotator[defined], minlength=n_ann)
    order = np.lexsort((t.seconds, t.annotator))
    out = []
    starts = np.searchsorted(t.annotator[order], np.arange(n_ann))
    for a, name in enumerate(t.annotators):
        secs = t.seconds[order[starts[a]: starts[a] + n[a]]]
        secs = secs[~np.isnan(secs)]
        rate = None if attention is None else attention.get(name)
        out.append({
            "annotator": name,
            "n_annotations": int(n[a]),
            "loo_agreement": _num(tau_sum[a] / tau_n[a]) if tau_n[a] else None,
            "attention_pass_rate": None if rate is None else float(rate),
            "median_seconds": float(np.median(secs)) if secs.size else None,
            "excluded": name in exclude,
        })
    return out


# ---------------------------------------------------------------------------------------------
# Paired significance and groups


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def sign_test(n_better, n_worse):
    """Exact two-sided sign test: p = min(1, 2 P(X <= min)), X ~ Binomial(better + worse, 1/2)."""
    b, w = np.asarray(n_better), np.asarray(n_worse)
    return np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(b, w), b + w, 0.5))


def significance_groups(
    names: Sequence[str], separable
) -> tuple[dict[str, str], list[list[str]]]:
    """Compact letter display: each maximal set of systems no two of which the data separate
    gets a letter; systems sharing a letter cannot be told apart.

    `names` best first; separable[i][j] True when systems i and j differ significantly.
    Returns ({system: letters}, groups best first).
    """
    k = len(names)
    near = [{j for j in range(k) if j != i and not separable[i][j]} for i in range(k)]
    cliques: list[set[int]] = []

    def extend(clique: set[int], candidates: set[int], excluded: set[int]) -> None:
        # Bron-Kerbosch with pivoting: lists every maximal clique of the "cannot separate" graph.
        if not candidates and not excluded:
            cliques.append(clique)
            return
        pivot = max(candidates | excluded, key=lambda u: len(near[u] & candidates))
        for v in sorted(candidates - near[pivot]):
            extend(clique | {v}, candidates & near[v], excluded & near[v])
            candidates = candidates - {v}
            excluded = excluded | {v}

    if k:
        extend(set(), set(range(k)), set())
    groups = sorted((sorted(c) for c in cliques))
    letters = {name: "" for name in names}
    for g, members in enumerate(groups):
        for i in members:
            letters[names[i]] += _letter(g)
    return letters, [[names[i] for i in members] for members in groups]


def _letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


# ---------------------------------------------------------------------------------------------
# The leaderboard


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _interval(samples: np.ndarray, alpha: float, integer: bool = False) -> np.ndarray:
    """Percentile interval over axis 0, ignoring NaN rounds; (2, ...) with NaN where undefined."""
    if samples.shape[0] == 0:
        return np.full((2, *samples.shape[1:]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN
        if not integer:
            return np.nanquantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
        return np.stack([
            np.nanquantile(samples, alpha / 2, axis=0, method="lower"),
            np.nanquantile(samples, 1 - alpha / 2, axis=0, method="higher"),
        ])


def _pair(ci: np.ndarray, *index) -> list[float | None] | None:
    lo, hi = _num(ci[(0, *index)]), _num(ci[(1, *index)])
    return None if lo is None or hi is None else [lo, hi]


def leaderboard(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    unit: str = "annotation",
    rounds: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    attention: Mapping[str, float] | None = None,
    exclude: Collection[str] = (),
    bt_prior: float = BT_PRIOR,
) -> dict[str, Any]:
    """Every figure of metrics.md for one criterion, as a JSON-ready dict.

    `systems` fixes the systems and may include ones never shown (default: every name ranked).
    Intervals are 1 - alpha percentile intervals from `rounds` item-resampling rounds drawn with
    `seed`; `alpha` is also the level of the Holm-corrected sign tests. `exclude` drops those
    annotators' rankings from every figure (they stay in `annotators`, marked excluded).
    `attention` maps annotator -> attention-check pass rate in [0, 1].

    `systems` entries (best Win@1 first; never-shown systems last): system, n (units that
    showed it), chance_win1, win1, win1_ci, strict_win1, strict_win1_ci, win_at {"1": ..},
    win_at_ci, mean_rank, mean_rank_ci, normalised_rank, normalised_rank_ci, bt (log scale),
    bt_ci, bt_elo, bt_elo_ci, pl (Plackett-Luce log scale), pl_ci, rank (by Win@1, ties share),
    rank_ci ([best, worst]), group (letters: systems sharing a letter are not separable).
    """
    if rounds < 0:
        raise ValueError("rounds must be >= 0")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    annotations = list(annotations)
    excluded = set(exclude)
    full = _encode(annotations, systems)
    dropped = np.array([name in excluded for name in full.annotators], bool)
    raw = full.subset(~dropped[full.annotator]) if dropped.any() else full
    t = _combine_table(raw) if unit == "item" else raw
    names = list(t.systems)
    n_sys = len(names)

    x, lay, extra = _features(t)
    point = _all_figures(x.sum(0, keepdims=True), lay, extra, bt_prior)
    if not lay.n_sets and len(extra["pl_sets_matrix"]):
        point["pl"] = _plackett_luce_fit(extra["pl_wins"][None], extra["pl_sets_matrix"],
                                         extra["pl_sets"][None], bt_prior)
    boot = _all_figures(_bootstrap_totals(x, rounds, seed), lay, extra, bt_prior)
    ci = {key: _interval(boot[key], alpha) for key in ("win1", "strict_win1", "win_at",
          "mean_rank", "normalised_rank", "win_rate", "bt", "pl")}
    # Ranks are integers: widen to the nearest attained ranks rather than interpolate.
    rank_ci = _interval(boot["rank"], alpha, integer=True)

    # Leaderboard order: Win@1 descending, never-shown systems last, names break ties.
    w1 = point["win1"][0]
    order = sorted(range(n_sys),
                   key=lambda s: (math.isnan(w1[s]), -np.nan_to_num(w1[s]), names[s]))

    tests, separable = _pair_tests(names, order, extra, w1, boot["win1"], alpha)
    ranked = [s for s in order if point["n"][0, s] > 0]
    letters, groups = significance_groups([names[s] for s in ranked],
                                          separable[np.ix_(ranked, ranked)])

    chance = _div((t.shown / np.maximum(t.k, 1)[:, None]).sum(0), t.shown.sum(0))
    entries = []
    for s in order:
        entry = {
            "system": names[s],
            "n": int(point["n"][0, s]),
            "chance_win1": _num(chance[s]),
            "rank": None if np.isnan(point["rank"][0, s]) else int(point["rank"][0, s]),
            "rank_ci": _pair(rank_ci, s),
            "group": letters.get(names[s]),
        }
        for key in ("win1", "strict_win1", "mean_rank", "normalised_rank", "bt", "pl"):
            entry[key] = _num(point[key][0, s])
            entry[key + "_ci"] = _pair(ci[key], s)
        if entry["rank_ci"] is not None:
            entry["rank_ci"] = [int(v) for v in entry["rank_ci"]]
        entry["bt_elo"] = _num(to_elo(point["bt"][0, s]))
        entry["bt_elo_ci"] = None if entry["bt_ci"] is None else [
            float(to_elo(v)) for v in entry["bt_ci"]]
        entry["win_at"] = {str(j + 1): _num(point["win_at"][0, j, s]) for j in range(lay.kmax)}
        entry["win_at_ci"] = {str(j + 1): _pair(ci["win_at"], j, s) for j in range(lay.kmax)}
        entries.append(entry)

    # Bradley-Terry scores are comparable only within a connected part of the comparison graph.
    played = point["count"][0] > 0
    compared = played.any(1)
    n_parts = connected_components(sparse.csr_matrix(played[np.ix_(compared, compared)]),
                                   directed=False)[0] if compared.any() else 0
    idx = order
    w = _kendalls_w(raw)
    w_ok = w[~np.isnan(w)]
    agree, agree_chance, n_pairs = _top1_agreement(raw)
    return {
        "unit": unit,
        "seed": int(seed),
        "bootstrap_rounds": int(rounds),
        "alpha": float(alpha),
        "bt_prior": float(bt_prior),
        "n_annotations": int(len(raw.item)),
        "n_items": int(len(raw.items)),
        "n_annotators": int(len(raw.annotators)),
        "n_units": int(len(t.item)),
        "chance_win1": _num(np.mean(1 / t.k)) if len(t.item) else None,
        "systems": entries,
        "pairwise": {
            "systems": [names[s] for s in idx],
            "win_rate": [[_num(point["win_rate"][0, s, u]) for u in idx] for s in idx],
            "win_rate_ci": [[_pair(ci["win_rate"], s, u) for u in idx] for s in idx],
            "counts": [[int(point["count"][0, s, u]) for u in idx] for s in idx],
            "connected": bool(n_parts <= 1),
            "components": int(n_parts),
            "test": "exact sign test over items on the Win@1 difference, Holm-corrected",
            "tests": tests,
            "groups": groups,
        },
        "agreement": {
            "kendalls_w": _summary(w_ok),
            "krippendorff_alpha": _num(_ranking_alpha(raw)),
            "top1_agreement": _num(agree),
            "top1_chance": _num(agree_chance),
            "top1_pairs": n_pairs,
        },
        "position_bias": _position_bias(raw),
        "annotators": _annotator_quality(full, attention, excluded),
    }


def _pair_tests(names, order, extra, w1, boot_win1, alpha) -> tuple[list[dict], np.ndarray]:
    """Paired sign tests over items on the Win@1 difference, best-ranked system of each pair
    first, Holm-corrected over the pairs ever shown together on an item."""
    diff, together = extra["win1_diff"], extra["together"]
    n_better = (diff > _EPS).sum(0)
    n_items_together = together.sum(0)
    diff_ci = _interval(boot_win1[:, :, None] - boot_win1[:, None, :], alpha)  # same rounds
    tests = []
    for i, s in enumerate(order):
        for u in order[i + 1:]:
            if n_items_together[s, u] == 0:
                continue
            tests.append({
                "a": names[s],
                "b": names[u],
                "win1_diff": _num(w1[s] - w1[u]),
                "win1_diff_ci": _pair(diff_ci, s, u),
                "n_items": int(n_items_together[s, u]),
                "a_better": int(n_better[s, u]),
                "b_better": int(n_better[u, s]),
                "p": float(sign_test(n_better[s, u], n_better[u, s])),
            })
    separable = np.zeros((len(names), len(names)), bool)
    index = {name: i for i, name in enumerate(names)}
    for test, p_adj in zip(tests, holm([test["p"] for test in tests])):
        test["p_holm"] = float(p_adj)
        test["separable"] = bool(p_adj < alpha)
        s, u = index[test["a"]], index[test["b"]]
        separable[s, u] = separable[u, s] = test["separable"]
    return tests, separable


def _summary(values: np.ndarray) -> dict[str, Any]:
    """Mean, quartiles and a 10-bin histogram on [0, 1] of per-item values."""
    if values.size == 0:
        return {"n_items": 0, "mean": None, "min": None, "q25": None, "median": None,
                "q75": None, "max": None, "histogram": None}
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    counts, edges = np.histogram(np.clip(values, 0, 1), bins=10, range=(0, 1))
    return {
        "n_items": int(values.size),
        "mean": float(values.mean()),
        "min": float(q[0]),
        "q25": float(q[1]),
        "median": float(q[2]),
        "q75": float(q[3]),
        "max": float(q[4]),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }
