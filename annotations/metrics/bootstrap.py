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

_CHUNK_ROUNDS = 128  # bootstrap rounds resampled at once: bounds memory at 128 x items floats


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
