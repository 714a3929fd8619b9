"""The cluster bootstrap over items: resample counts, every figure for every round in batched
calls, and the percentile intervals the leaderboard reports."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .features import _competition_rank, _features, _Layout, _rates
from .fits import BT_PRIOR, _plackett_luce_fit, bradley_terry
from .tables import Annotation, _num, _table

# float32 holds every integer in [-2^24, 2^24] exactly. Columns of integer features up to
# _F32_COLUMN_MAX take the float32 product in blocks of items small enough that it stays exact.
_F32_EXACT = float(1 << 24)
_F32_COLUMN_MAX = float(1 << 14)
_CHUNK_ROUNDS = 256  # bootstrap rounds resampled at once: bounds memory at 256 x items counts


def _count_chunks(n_items: int, rounds: int, seed: int, dtype=np.float32):
    """Item-resample counts, `_CHUNK_ROUNDS` rounds at a time: row r = how often each item is
    drawn when n_items items are drawn with replacement (a multinomial count vector). The draws
    are those of `rng.integers(0, n_items, size=(rounds, n_items))`, taken a round at a time
    (the same stream) so that only the counts are held, as `dtype` (float32 holds every count
    exactly up to 2^24 items, and is what the product below takes)."""
    if n_items > _F32_EXACT and dtype == np.float32:
        dtype = np.float64
    rng = np.random.default_rng(seed)
    for done in range(0, rounds, _CHUNK_ROUNDS):
        counts = np.empty((min(_CHUNK_ROUNDS, rounds - done), n_items), dtype)
        for r in range(len(counts)):
            counts[r] = np.bincount(rng.integers(0, n_items, size=n_items), minlength=n_items)
        yield counts
        del counts  # before the next chunk is allocated


def bootstrap_counts(n_items: int, rounds: int, seed: int) -> np.ndarray:
    """The (rounds x items) resample counts the leaderboard uses for this seed."""
    if n_items == 0 or rounds == 0:
        return np.zeros((rounds, n_items), np.int64)
    return np.vstack(list(_count_chunks(n_items, rounds, seed, np.int64)))


def _bootstrap_totals(x: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    """(rounds x features) totals: round r weighs item i by how often it was drawn.

    The features are integers (`_features`) and so are the counts, so every total is an exact
    integer, and it is computed exactly: in float64 (below 2^53) and, for columns whose values
    are at most _F32_COLUMN_MAX, in float32 over blocks of items where each round draws few
    enough items that every product and every partial sum, in whatever order the BLAS adds
    them, is an integer of magnitude at most sum_i w_ri |x_ic| <= 2^24. The result is the same
    to the last bit as a float64 (or integer) product, at float32 speed.
    """
    n_items, width = x.shape
    if n_items == 0 or rounds == 0:
        return np.zeros((0, width))
    peak, whole = np.zeros(width), np.ones(width, bool)
    for lo in range(0, n_items, 1 << 13):  # in slices: no temporary the size of x
        part = x[lo:lo + (1 << 13)]
        peak = np.maximum(peak, np.abs(part).max(0))
        whole &= (part == np.rint(part)).all(0)
    fast = whole & (peak <= _F32_COLUMN_MAX)
    x32 = (x if fast.all() else x[:, fast]).astype(np.float32)
    x64 = x[:, ~fast]
    top = float(peak[fast].max(initial=1.0))
    # A block of b items is drawn about b times a round (Poisson spread ~sqrt(b)), so half the
    # exact limit leaves a wide margin; a block drawn more often still is checked and summed in
    # float64 instead.
    block = max(1, int(_F32_EXACT / top / 2))
    out = []
    for w in _count_chunks(n_items, rounds, seed):
        totals = np.empty((w.shape[0], width))
        if x64.shape[1]:
            totals[:, ~fast] = w.astype(np.float64) @ x64
        totals[:, fast] = _exact_product(w, x32, top, block)
        out.append(totals)
        del w  # before the next rounds' counts are drawn
    return np.vstack(out)


def _exact_product(w: np.ndarray, x32: np.ndarray, top: float, block: int) -> np.ndarray:
    """w @ x32 summed in float64 over blocks of `block` items, each block's product in float32
    where every round draws that block's items at most 2^24 / top times (see above)."""
    total = np.zeros((w.shape[0], x32.shape[1]))
    for lo in range(0, w.shape[1], block):
        wb, xb = w[:, lo:lo + block], x32[lo:lo + block]
        if wb.sum(1, dtype=np.float64).max() * top <= _F32_EXACT and w.dtype == np.float32:
            total += wb @ xb
        else:
            total += wb.astype(np.float64) @ xb.astype(np.float64)
    return total


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
