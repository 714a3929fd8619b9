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

from .figures import win1
from .tables import _EPS, Annotation, _encode

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
    c_tot, n_tot = credit.sum(0), shown.sum(0).astype(np.float64)
    for _ in range(min(max_steps, n_rows)):
        # Win@1 of leader and challenger after removing each remaining ranking.
        n_l = n_tot[leader] - shown[:, leader]
        n_c = n_tot[challenger] - shown[:, challenger]
        with np.errstate(invalid="ignore", divide="ignore"):
            w_l = (c_tot[leader] - credit[:, leader]) / n_l
            w_c = (c_tot[challenger] - credit[:, challenger]) / n_c
        # Removing the leader's last showing unseats it; the challenger's last, never helps.
        margin = np.where(n_c > 0, w_l - w_c, np.inf)
        margin = np.where(n_l > 0, margin, -np.inf)
        margin[~keep] = np.inf
        i = int(np.argmin(margin))
        keep[i] = False
        removed.append(i)
        c_tot -= credit[i]
        n_tot -= shown[i]
        if not keep.any() or _changed(_win1(credit, shown, keep), leader):
            return removed
    return None


def robustness(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    max_removals: int | None = None,
) -> dict[str, Any]:
    """The fewest rankings (of one criterion) whose removal changes who is first by Win@1.

    Returns JSON-ready: `leader`, `challenger` (who reaches it), `count` (0 when the leader
    already shares first place; None when no removal within `max_removals` does it), `share`
    of all rankings,
    `removed` (indices into `annotations`, in removal order) and `removed_rankings` (their
    item and annotator, for the page), `new_leader` and `confirmed` (Win@1 recomputed by
    `figures.win1` on the rankings left agrees that the leader lost sole first place).
    """
    annotations = list(annotations)
    t = _encode(annotations, systems)
    names = list(t.systems)
    credit, shown = t.top_credit(), t.shown.astype(np.float64)
    n_rows = len(annotations)
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
    left = [a for i, a in enumerate(annotations) if i not in set(best)]
    after = win1(left, names)
    top = max((v for v in after.values() if v is not None), default=None)
    confirmed = (after[names[leader]] is None
                 or any(v is not None and v >= after[names[leader]] - _EPS
                        for name, v in after.items() if name != names[leader]))
    new_w = np.array([np.nan if after[n] is None else after[n] for n in names])
    out.update(
        challenger=names[best_challenger],
        count=len(best),
        share=len(best) / n_rows,
        removed=best,
        removed_rankings=[{"index": i, "item": annotations[i].item,
                           "annotator": annotations[i].annotator} for i in best],
        new_leader=names[_leader(new_w, names)] if top is not None else None,
        confirmed=bool(confirmed),
    )
    return out
