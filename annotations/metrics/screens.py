"""Which systems share a screen and in which slot, when systems outnumber slots (design.md §3):
a greedy balanced design, and the two balances the progress page reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment


def balanced_screens(
    systems: Sequence[str], k: int, n_screens: int, *, seed: int = 0
) -> list[tuple[str, ...]]:
    """`n_screens` display orders (system in slot 1, 2, ...) of `k` systems each.

    Greedy, screen by screen: from each of the systems shown least so far, grow a subset by
    adding the system whose largest (then total) co-occurrence with those already chosen is
    smallest, and keep the candidate that leaves the pair co-occurrence counts (then the
    per-system counts) least spread; then seat the chosen systems in the slots each has
    sat in least (an assignment problem, so every system visits every slot about equally
    often and position bias cancels). Random tie-breaking with `seed` keeps it from cycling.
    When k >= len(systems) every screen shows everyone and only the slots are balanced.
    """
    names = list(systems)
    n_sys = len(names)
    if len(set(names)) != n_sys:
        raise ValueError("systems lists a name twice")
    if n_sys == 0 or k < 1:
        raise ValueError("need at least one system and k >= 1")
    k = min(k, n_sys)
    rng = np.random.default_rng(seed)
    shown = np.zeros(n_sys, np.int64)
    pair = np.zeros((n_sys, n_sys), np.int64)
    slot = np.zeros((n_sys, k), np.int64)
    screens = []
    for _ in range(n_screens):
        noise = rng.random(n_sys)  # tie-breaker, below 1 so it never outweighs a count
        if k == n_sys:
            chosen = list(range(n_sys))
        else:
            chosen = _pick_subset(pair, shown, k, noise)
        cost = slot[chosen] + rng.random((k, k)) * 0.5
        rows, cols = linear_sum_assignment(cost)
        order = [0] * k
        for r, c in zip(rows, cols):
            order[c] = chosen[r]
            slot[chosen[r], c] += 1
        idx = np.array(chosen)
        shown[idx] += 1
        pair[np.ix_(idx, idx)] += 1
        screens.append(tuple(names[s] for s in order))
    return screens


def _pick_subset(pair: np.ndarray, shown: np.ndarray, k: int, noise: np.ndarray) -> list[int]:
    n_sys = len(shown)
    upper = np.triu_indices(n_sys, 1)
    best_key, best = None, []
    for start in np.flatnonzero(shown == shown.min()):
        chosen = [int(start)]
        while len(chosen) < k:
            together = pair[:, chosen]
            score = together.max(1) * 1e6 + together.sum(1) * 1e3 + shown + noise
            score[chosen] = np.inf
            chosen.append(int(np.argmin(score)))
        idx = np.array(chosen)
        after = pair.copy()
        after[np.ix_(idx, idx)] += 1
        off = after[upper]
        seen = np.diag(after)
        key = (off.max() - off.min(), seen.max() - seen.min(), int((off**2).sum()))
        if best_key is None or key < best_key:
            best_key, best = key, chosen
    return best


def screen_balance(
    screens: Iterable[Sequence[str]], systems: Sequence[str] | None = None
) -> dict[str, Any]:
    """How balanced a set of display orders is (JSON-ready).

    `pair_counts` min/max over system pairs of the screens they shared, and their ratio
    max/min (1.0 is perfect; None when a pair never met); `slot_counts` min/max over (system,
    slot) of the screens where the system sat in that slot, with the same ratio; `shown` min/max
    of screens per system. Accepts `Annotation.display_order`s as they are.
    """
    screens = [tuple(s) for s in screens]
    names = list(systems) if systems is not None else sorted({n for s in screens for n in s})
    index = {name: i for i, name in enumerate(names)}
    n_sys = len(names)
    k = max((len(s) for s in screens), default=0)
    pair = np.zeros((n_sys, n_sys), np.int64)
    slot = np.zeros((n_sys, k), np.int64)
    for screen in screens:
        idx = [index[name] for name in screen]
        pair[np.ix_(idx, idx)] += 1
        slot[idx, np.arange(len(idx))] += 1
    off = [pair[i, j] for i, j in combinations(range(n_sys), 2)]
    # Slots beyond a system's screen size are not counted against it; with one k all are used.
    return {
        "n_screens": len(screens),
        "shown": _span(np.diag(pair)),
        "pair_counts": _span(np.array(off, np.int64)),
        "slot_counts": _span(slot.ravel()),
    }


def _span(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"min": None, "max": None, "ratio": None}
    lo, hi = int(values.min()), int(values.max())
    return {"min": lo, "max": hi, "ratio": None if lo == 0 else hi / lo}
