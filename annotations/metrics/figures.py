"""Single per-system figures as point estimates (Win@1, Win@k, mean rank, pairwise rates,
Plackett-Luce), for callers that need one figure and for hand-checked tests."""

from __future__ import annotations

import numpy as np

from .features import _choice_stages, _features, _rates
from .fits import BT_PRIOR, _plackett_luce_fit
from .tables import _num, _Table, _table


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
