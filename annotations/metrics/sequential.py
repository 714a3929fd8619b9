"""The stop signal and the forecast (design.md §2): an anytime-valid confidence sequence for the
mean per-item Win@1 difference of two systems, and how many more items it is likely to need.

The confidence sequence is the hedged betting CS with the predictable plug-in bet of
Waudby-Smith and Ramdas, "Estimating means of bounded random variables by betting", JRSS-B 86
(2024), Theorem 3 and eq. (26)-(27). A per-item difference d_i in [-1, 1] is mapped to
x_i = (1 + d_i) / 2 in [0, 1]; for a candidate mean m the two capital processes are

    K+_t(m) = prod_{i<=t} (1 + min(lambda_i, c / m) (x_i - m)),
    K-_t(m) = prod_{i<=t} (1 - min(lambda_i, c / (1 - m)) (x_i - m)),

with c = 1/2 and the predictable bet lambda_i = sqrt(2 log(2 / alpha) / (s2_{i-1} i log(1 + i))),
s2_i = (1/4 + sum_{j<=i} (x_j - mu_j)^2) / (i + 1), mu_j = (1/2 + sum_{l<=j} x_l) / (j + 1).
The hedged capital max(K+ / 2, K- / 2) is at most the martingale (K+ + K-) / 2 when m is the
true mean, so by Ville's inequality P(it ever reaches 1/alpha) <= alpha: the set of m where it
stays below 1/alpha covers the truth at all times at once, however often one looks. The stop
signal fires the first time m = 1/2 (no difference) leaves that set. (`confseq` on PyPI has
this method, but is an early-stage C++/Boost source package; this is the same formula in numpy.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .tables import Annotation, _encode

_C = 0.5  # truncation of the bets (WSR's c); 1/2 keeps each factor in [1/2, 3/2]
METHOD = ("hedged betting confidence sequence with predictable plug-in bets (Waudby-Smith & "
          "Ramdas, JRSS-B 2024), anytime-valid for the mean per-item Win@1 difference")


def pair_differences(
    annotations: Iterable[Annotation], a: str, b: str, systems: Sequence[str] | None = None
) -> np.ndarray:
    """Per-item Win@1 difference of systems a and b, in [-1, 1]: over the item's rankings that
    showed both, the mean of (a's credit - b's credit). Items in order of first appearance
    (pass annotations in submission order); items that never showed both are left out."""
    t = _encode(list(annotations), systems)
    ia, ib = t.systems.index(a), t.systems.index(b)
    both = (t.shown[:, ia] & t.shown[:, ib]).astype(np.float64)
    credit = t.top_credit()
    g_mat = t.item_matrix()
    total = g_mat @ ((credit[:, ia] - credit[:, ib]) * both)
    count = g_mat @ both
    keep = count > 0
    return total[keep] / count[keep]


def _bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """Predictable plug-in bets lambda_t (uses x_1..x_{t-1} only), along the last axis."""
    n = x.shape[-1]
    t = np.arange(1, n + 1)
    mu = (0.5 + np.cumsum(x, -1)) / (t + 1)  # mu_t after t observations
    s2 = (0.25 + np.cumsum((x - mu) ** 2, -1)) / (t + 1)
    s2_prev = np.concatenate([np.full(x.shape[:-1] + (1,), 0.25), s2[..., :-1]], -1)
    return np.sqrt(2 * np.log(2 / alpha) / (s2_prev * t * np.log(1 + t)))


def _log_capital(x: np.ndarray, m, alpha: float, bets: np.ndarray | None = None) -> np.ndarray:
    """log of the hedged capital max(K+ / 2, K- / 2) at each time, for mean m (broadcast over
    a trailing grid axis when m is an array: x (..., T) -> (..., T, G))."""
    lam = _bets(x, alpha) if bets is None else bets
    m = np.asarray(m, np.float64)
    if m.ndim:
        x, lam = x[..., None], lam[..., None]
    up = np.cumsum(np.log1p(np.minimum(lam, _C / m) * (x - m)), axis=-1 if not m.ndim else -2)
    down = np.cumsum(np.log1p(-np.minimum(lam, _C / (1 - m)) * (x - m)),
                     axis=-1 if not m.ndim else -2)
    return np.maximum(up, down) + np.log(0.5)


def rejects(diffs: np.ndarray, mean: float = 0.0, *, alpha: float = 0.05) -> np.ndarray:
    """True from the first time the confidence sequence excludes `mean` (per-item difference
    scale) onwards: the stop signal for mean = 0. Works along the last axis of `diffs`."""
    x = (1 + np.asarray(diffs, np.float64)) / 2
    m = (1 + mean) / 2
    return np.maximum.accumulate(_log_capital(x, m, alpha) >= np.log(1 / alpha), axis=-1)


def confidence_sequence(
    diffs: Sequence[float], *, alpha: float = 0.05, grid: int = 801
) -> dict[str, Any]:
    """The 1 - alpha confidence sequence for the mean per-item difference after each item.

    Returns `lower`, `upper` (running intersections: each bound only tightens), `mean`,
    `stopped_at` (1-based number of items at which 0 first left the sequence, or None),
    `alpha` and `method`. Bounds are on a grid of `grid` candidate means over [-1, 1].
    """
    d = np.asarray(diffs, np.float64)
    if d.size and (np.abs(d) > 1 + 1e-12).any():
        raise ValueError("per-item differences must lie in [-1, 1]")
    x = (1 + np.clip(d, -1, 1)) / 2
    ms = np.linspace(0, 1, grid)[1:-1]  # the ends are never excluded by a bounded bet
    inside = _log_capital(x, ms, alpha) < np.log(1 / alpha)  # (T, G)
    any_in = inside.any(1)
    lo = np.where(any_in, ms[np.argmax(inside, 1)], 0.5)
    hi = np.where(any_in, ms[len(ms) - 1 - np.argmax(inside[:, ::-1], 1)], 0.5)
    lo = np.maximum.accumulate(np.where(any_in, lo, 0.0))
    hi = np.minimum.accumulate(np.where(any_in, hi, 1.0))
    lo = np.minimum(lo, hi)
    stop = rejects(d, 0.0, alpha=alpha) if d.size else np.zeros(0, bool)
    return {
        "method": METHOD,
        "alpha": float(alpha),
        "n_items": int(d.size),
        "mean": [float(v) for v in np.cumsum(d) / np.arange(1, d.size + 1)],
        "lower": [float(2 * v - 1) for v in lo],
        "upper": [float(2 * v - 1) for v in hi],
        "stopped_at": int(np.argmax(stop)) + 1 if stop.any() else None,
    }


def forecast(
    diffs: Sequence[float],
    *,
    alpha: float = 0.05,
    per_item: int = 1,
    seconds_per_screen: float | None = None,
    n_sims: int = 200,
    max_more: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """How many more items until the confidence sequence separates the two systems.

    Each of `n_sims` continuations draws a plausible true mean (the observed mean plus its
    standard error times a normal draw, so the range reflects what is not yet known about the
    effect), resamples the observed per-item differences shifted to that mean (clipped to
    [-1, 1]) and runs the same confidence sequence on, from the data so far, until 0 leaves it
    or `max_more` items. Reports the median and the 2.5-97.5 % range of the items needed
    (a bound or the median is None where that share of continuations did not separate
    within `max_more`: "more than max_more"), the share that did, rankings (items x
    per_item) and annotator-hours, plus the
    plain projection n (z se_1 / mean)^2 from se ~ 1/sqrt(n).
    """
    d = np.asarray(diffs, np.float64)
    n = d.size
    result: dict[str, Any] = {"method": METHOD, "n_items": int(n), "alpha": float(alpha),
                              "per_item": int(per_item), "n_sims": int(n_sims),
                              "max_more": int(max_more)}
    done = n and bool(rejects(d, alpha=alpha)[-1])
    if n < 2 or done:
        more = 0 if done else None
        result.update(separated=bool(done), more_items=more, more_items_range=None,
                      share_separated=None, projection=None, rankings=None, hours=None)
        if done:
            result.update(more_items_range=[0, 0], share_separated=1.0, rankings=0, hours=0.0)
        return result
    rng = np.random.default_rng(seed)
    mean, sd = d.mean(), d.std(ddof=1)
    se = sd / np.sqrt(n)
    shift = rng.standard_normal(n_sims) * se
    future = d[rng.integers(0, n, (n_sims, max_more))] + shift[:, None]
    path = np.concatenate([np.broadcast_to(d, (n_sims, n)), np.clip(future, -1, 1)], 1)
    stop = rejects(path, 0.0, alpha=alpha)[:, n:]
    reached = stop.any(1)
    needed = np.where(reached, np.argmax(stop, 1) + 1, max_more + 1)
    share = float(reached.mean())
    q = np.quantile(needed, [0.025, 0.5, 0.975], method="higher")
    median = int(q[1]) if q[1] <= max_more else None
    rng_ok = q[2] <= max_more
    z = 1.959963984540054
    projection = None if mean == 0 else max(0, int(np.ceil(n * (z * se / mean) ** 2)) - n)
    result.update(
        separated=False,
        mean=float(mean),
        se=float(se),
        more_items=median,
        more_items_range=[int(q[0]) if q[0] <= max_more else None,
                          int(q[2]) if rng_ok else None],
        share_separated=share,
        projection=projection,
        rankings=None if median is None else median * per_item,
        hours=None if median is None or seconds_per_screen is None
        else median * per_item * seconds_per_screen / 3600,
    )
    return result
