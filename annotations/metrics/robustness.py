"""How many rankings hold the leader up (design.md §5): the fewest rankings whose removal makes
another system's Win@1 reach the leader's, found greedily and confirmed by recomputing Win@1.

"The winner changes" means the leader no longer stands alone at the top: some other system's
Win@1 (per annotation) is at least the leader's, so it shares or takes rank 1. For each
challenger the greedy removes, one at a time, the ranking whose removal most reduces the
leader's Win@1 margin over that challenger (recomputing both Win@1 after each removal), and
stops when any system reaches the leader; the answer is the challenger needing fewest. When
every ranking shows every system, Win@1 denominators are equal, so for each challenger this
is exactly the largest-contributions-first order and the count is the true minimum; with
subsets (k < K) it is an upper bound on the minimum, usually equal (see the tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .tables import _EPS, Annotation, _encode, _Table

_LCM_1_TO_15 = 360360  # 1/g times this is an integer for g <= 15, and distinct up to g ~ 600
_CODED_MAX_GROUP = 500

METHOD = ("greedy removal of the rankings that contribute most to the leader's Win@1 margin "
          "over each challenger, confirmed by recomputing Win@1 without them")


def _win1(credit: np.ndarray, shown: np.ndarray, keep: np.ndarray) -> np.ndarray:
    n = shown[keep].sum(0)
    return np.where(n > 0, credit[keep].sum(0) / np.maximum(n, 1), np.nan)


def _leader(w: np.ndarray, names: Sequence[str]) -> int:
    order = sorted(range(len(names)), key=lambda s: (np.isnan(w[s]), -np.nan_to_num(w[s]),
                                                     names[s]))
    return order[0]


def _changed(w: np.ndarray, leader: int) -> bool:
    if np.isnan(w[leader]):
        return True
    others = np.delete(w, leader)
    return bool(np.any(others >= w[leader] - _EPS))


def _greedy(credit, shown, leader, challenger, max_steps) -> list[int] | None:
    n_rows = len(credit)
    keep = np.ones(n_rows, bool)
    removed: list[int] = []
    if shown.all():  # equal denominators: largest contributions first, no recomputation
        gain = credit[:, leader] - credit[:, challenger]
        order = np.argsort(-gain, kind="stable")[:max_steps]
        # Credit totals after removing the first m rankings of that order, m = 1, 2, ...
        after = credit.sum(0) - np.cumsum(credit[order], axis=0)
        rest = np.arange(n_rows - 1, n_rows - 1 - len(order), -1)
        others = np.delete(after, leader, axis=1).max(1, initial=-np.inf)
        hit = (others >= after[:, leader] - _EPS * np.maximum(rest, 1)) | (rest == 0)
        if not hit.any():
            return None
        return [int(i) for i in order[:int(np.argmax(hit)) + 1]]
    return _greedy_by_type(credit, shown, leader, challenger, max_steps)


def _margins(c_l, n_l, c_c, n_c, types) -> np.ndarray:
    """(J, T) leader's Win@1 margin over the challenger after removing one ranking of each
    type, from totals (J,) of the two; rounded to 12 places so that equal margins reached by
    different sums stay equal (ties then go to the lowest index, as a scan would)."""
    s_l, s_c, cr_l, cr_c = types.T
    left_l, left_c = n_l[:, None] - s_l, n_c[:, None] - s_c
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = (c_l[:, None] - cr_l) / left_l - (c_c[:, None] - cr_c) / left_c
    # Removing the leader's last showing unseats it; the challenger's last, never helps.
    margin = np.where(left_c > 0, np.round(margin, 12), np.inf)
    return np.where(left_l > 0, margin, -np.inf)


def _greedy_by_type(credit, shown, leader, challenger, max_steps) -> list[int] | None:
    """The greedy with unequal denominators: each step removes the ranking that leaves the
    smallest margin (lowest index on ties), exactly as a scan over all rankings would.

    A ranking's effect on the margin depends only on its (shown, credit) for the two systems,
    so rankings fall into a few types, each taken in index order; a step compares types, not
    rankings. The greedy tends to take one type many times running, so runs are checked in
    batches: after j removals of the chosen type, is it still the choice, and has anyone
    reached the leader? Both are array operations over the run.
    """
    n_rows = len(credit)
    key = np.stack([shown[:, leader], shown[:, challenger],
                    credit[:, leader], credit[:, challenger]], axis=1)
    if credit.shape[1] <= _CODED_MAX_GROUP:
        # Credits are 0 or 1/g: one integer per ranking, exact for g up to the bound.
        scaled = np.rint(key[:, 2:] * _LCM_1_TO_15).astype(np.int64)
        code = ((scaled[:, 0] << 20 | scaled[:, 1]) << 2
                | key[:, 0].astype(np.int64) << 1 | key[:, 1].astype(np.int64))
        _, first_of, inverse = np.unique(code, return_index=True, return_inverse=True)
        types = key[first_of]
    else:
        types, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    rows = np.argsort(inverse, kind="stable")  # by type, then by index
    ends = np.searchsorted(inverse[rows], np.arange(1, len(types) + 1))
    pos = np.concatenate([[0], ends[:-1]])  # next ranking of each type, as a place in rows
    c_tot, n_tot = credit.sum(0), shown.sum(0).astype(np.float64)
    removed: list[int] = []
    run = 16
    steps = min(max_steps, n_rows)
    while len(removed) < steps:
        left = pos < ends
        margin = _margins(c_tot[[leader]], n_tot[[leader]], c_tot[[challenger]],
                          n_tot[[challenger]], types)[0]
        margin[~left] = np.inf
        next_row = np.where(left, rows[np.minimum(pos, n_rows - 1)], n_rows)
        best = np.flatnonzero((margin == margin.min()) & left)
        if best.size == 0:
            return None
        t = best[np.argmin(next_row[best])]
        # A run of up to `size` rankings of type t, and the totals after each of them.
        size = int(min(run, ends[t] - pos[t], steps - len(removed)))
        taken = rows[pos[t]:pos[t] + size]
        c_after = c_tot - np.cumsum(credit[taken], axis=0)
        n_after = n_tot - np.cumsum(shown[taken], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(n_after > 0, c_after / np.maximum(n_after, 1), np.nan)
        others = np.delete(w, leader, axis=1)
        stop = np.isnan(w[:, leader]) | np.any(others >= w[:, [leader]] - _EPS, axis=1)
        stop[-1] |= len(removed) + size == n_rows
        # After j removals, is t still the choice for removal j + 1?
        after = _margins(c_after[:-1, leader], n_after[:-1, leader],
                         c_after[:-1, challenger], n_after[:-1, challenger], types)
        after[:, ~left] = np.inf
        own = after[:, t].copy()
        after[:, t] = np.inf
        rival = after.min(1)
        tied_rival = np.where(after == rival[:, None], next_row[None, :], n_rows).min(1)
        still = (own < rival) | ((own == rival) & (rows[pos[t] + 1:pos[t] + size] < tied_rival))
        lost = np.flatnonzero(~still)
        n_take = size if lost.size == 0 else int(lost[0]) + 1
        hit = np.flatnonzero(stop[:n_take])
        if hit.size:
            n_take = int(hit[0]) + 1
        removed.extend(int(i) for i in taken[:n_take])
        pos[t] += n_take
        c_tot, n_tot = c_after[n_take - 1], n_after[n_take - 1]
        if hit.size:
            return removed
        run = run * 2 if n_take == size else max(1, run // 2)
    return None


def robustness(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    max_removals: int | None = None,
) -> dict[str, Any]:
    """The fewest rankings (of one criterion) whose removal changes who is first by Win@1.

    Returns JSON-ready: `method`, `n_rankings`, `leader`, `challenger` (who reaches it),
    `count` (0 when the leader already shares first place; None when no removal within
    `max_removals` does it), `share` of all rankings, `removed` (indices into `annotations`,
    in removal order) and `removed_rankings` (their index, item and annotator, for the page),
    `new_leader` and `confirmed` (Win@1 recomputed from the rankings left, by the Win@k
    formula rather than the greedy's running totals, agrees that the leader lost sole first
    place).
    """
    annotations = list(annotations)
    return _robustness(_encode(annotations, systems), max_removals=max_removals)


def _robustness(t: _Table, *, max_removals: int | None = None,
                list_limit: int | None = None) -> dict[str, Any]:
    """`robustness` on an encoded table (the leaderboard's, so nothing is encoded twice);
    `removed_rankings` lists at most `list_limit` of the removed rankings (all by default)."""
    names = list(t.systems)
    credit, shown = t.top_credit(), t.shown.astype(np.float64)
    n_rows = len(t.item)
    out: dict[str, Any] = {"method": METHOD, "n_rankings": n_rows, "leader": None,
                           "challenger": None, "count": None, "share": None, "removed": [],
                           "removed_rankings": [], "new_leader": None, "confirmed": False}
    if n_rows == 0 or len(names) < 2:
        return out
    w = _win1(credit, shown, np.ones(n_rows, bool))
    leader = _leader(w, names)
    out["leader"] = names[leader]
    if _changed(w, leader):  # already shares first place: nothing holds it up
        out.update(count=0, share=0.0, new_leader=names[leader], confirmed=True)
        return out
    limit = n_rows if max_removals is None else max_removals
    best: list[int] | None = None
    best_challenger = None
    for challenger in range(len(names)):
        if challenger == leader or np.isnan(w[challenger]):
            continue
        removed = _greedy(credit, shown, leader, challenger,
                          limit if best is None else min(limit, len(best) - 1))
        if removed is not None and (best is None or len(removed) < len(best)):
            best, best_challenger = removed, challenger
    if best is None:
        return out
    keep = np.ones(n_rows, bool)
    keep[best] = False
    after = _recomputed_win1(t, keep)
    confirmed = bool(np.isnan(after[leader]) or np.any(np.delete(after, leader)
                                                       >= after[leader] - _EPS))
    listed = best if list_limit is None else best[:list_limit]
    out.update(
        challenger=names[best_challenger],
        count=len(best),
        share=len(best) / n_rows,
        removed=best,
        removed_rankings=[{"index": i, "item": t.items[t.item[i]],
                           "annotator": t.annotators[t.annotator[i]]} for i in listed],
        new_leader=None if np.isnan(after).all() else names[_leader(after, names)],
        confirmed=confirmed,
    )
    return out


def _recomputed_win1(t: _Table, keep: np.ndarray) -> np.ndarray:
    """Win@1 of the rankings kept, from scratch by the Win@k formula of metrics.md (the share
    max(0, min(b, 1) - a + 1) / g of the tie group in the top 1), not the greedy's totals."""
    first, last, shown = t.first[keep], t.last[keep], t.shown[keep]
    g = np.where(shown, last - first + 1, 1)
    share = np.clip(np.minimum(last, 1) - first + 1, 0, None) * shown / g
    n = shown.sum(0)
    return np.where(n > 0, share.sum(0) / np.maximum(n, 1), np.nan)
