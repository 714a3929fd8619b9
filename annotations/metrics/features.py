"""Sufficient statistics per item: every per-system figure is a ratio of sums over rankings,
so the point estimate and each bootstrap round only need weighted totals of these columns."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .tables import _EPS, _div, _Table

# Plackett-Luce bootstrap costs one column per distinct choice set; beyond this the bootstrap
# would be dominated by it, so its intervals are left out (the point estimate stays).
PL_MAX_CHOICE_SETS = 512


# ---------------------------------------------------------------------------------------------
# Sufficient statistics per item, and the figures computed from their (weighted) totals.
# Every figure is a ratio of sums over rankings, so a bootstrap round (item i drawn w_i times)
# only needs w @ (per-item sums): all rounds are one matrix product.


@dataclass
class _Layout:
    """Where each sufficient statistic sits among the feature columns, and what each column is
    scaled by: features are kept as integers (exact sums, in any order, in float64 and, in
    bounded blocks, in float32), a figure's total is the column's total / its scale."""

    n_sys: int
    kmax: int  # longest ranking: Win@k is kept for k = 1..kmax
    n_sets: int  # Plackett-Luce choice sets in the features; 0 when PL is not bootstrapped
    share_scale: float = 1.0  # Win@k credits (multiples of 1 / g) are stored times this
    norm_scale: float = 1.0  # normalised ranks ((a + b) / 2 - 1) / (k - 1) are stored times this

    def __post_init__(self) -> None:
        k, width = self.n_sys, 0
        spans, scale = {}, []
        for name, size, factor in (
            ("n", k, 1.0),
            ("strict", k, 1.0),
            ("win_at", self.kmax * k, self.share_scale),
            ("pos", k, 2.0),  # a + b
            ("normpos", k, self.norm_scale),
            ("normcnt", k, 1.0),
            ("score", k * k, 2.0),  # 2 above, 1 tied
            ("count", k * k, 1.0),
            ("pl_wins", k if self.n_sets else 0, 1.0),
            ("pl_sets", self.n_sets, 1.0),
        ):
            spans[name] = slice(width, width + size)
            scale += [factor] * size
            width += size
        self.spans, self.width, self.scale = spans, width, np.array(scale)


def _pair_parts(t: _Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, K, K) indicators: s above t, s tied with t, s and t shown together."""
    shown = t.shown
    n_sys = shown.shape[1]
    both = shown[:, :, None] & shown[:, None, :] & ~np.eye(n_sys, dtype=bool)
    above = both & (t.last[:, :, None] < t.first[:, None, :])
    tied = both & (t.first[:, :, None] == t.first[:, None, :])
    return above, tied, both


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


# Per-ranking values built at once (distinct rankings x feature columns): bounds the memory of
# the feature pass at ~32 MB whatever the number of rankings or systems.
_CHUNK_VALUES = 1 << 22
# Largest common denominator kept exact: integer features stay far below 2^53 in float64.
_MAX_SCALE = 1 << 20


def _distinct_rankings(t: _Table) -> tuple[_Table, np.ndarray]:
    """(table of the distinct rankings, index of each row's ranking in it). A weak order is
    determined by its positions a (b follows from the size of each tie group)."""
    n_rows, n_sys = t.first.shape
    if n_sys <= 15:  # pack positions 0..K as base-(K + 1) digits: fits in int64
        codes = t.first @ (np.int64(n_sys + 1) ** np.arange(n_sys, dtype=np.int64))
        _, rep, which = np.unique(codes, return_index=True, return_inverse=True)
    else:
        _, rep, which = np.unique(t.first, axis=0, return_index=True, return_inverse=True)
    return t.rows(rep), np.asarray(which).ravel()


def _common_scale(denominators: np.ndarray) -> int:
    """Least common multiple of the denominators, or 0 where that is too large to keep."""
    scale = 1
    for d in np.unique(denominators):
        scale = math.lcm(scale, int(d))
        if scale > _MAX_SCALE:
            return 0
    return scale


def _fraction(num: np.ndarray, den: np.ndarray, scale: int) -> np.ndarray:
    """num / den times `scale` (an exact integer), or num / den itself where scale is 0."""
    return num * (scale // den) if scale else num / den


def _features(t: _Table, pl_bootstrap: bool = True) -> tuple[np.ndarray, _Layout, dict]:
    """Per-item sums (items x features) of everything the per-system figures are ratios of,
    as exact integers (divide a total by `layout.scale` for the figure's own units).

    Every per-ranking value depends only on the ranking (its weak order), so it is computed
    once per distinct ranking and summed into items by a sparse (items x rankings) count
    matrix, in chunks that bound memory.
    """
    n_rows, n_sys = t.first.shape
    n_items = len(t.items)
    kmax = int(t.k.max()) if n_rows else 0
    u, which = _distinct_rankings(t)
    n_u = len(u.item)
    g = np.where(u.shown, u.last - u.first + 1, 1)
    share_scale = _common_scale(g[u.shown])
    norm_scale = _common_scale(2 * (u.k[u.k > 1] - 1))
    chooses, rows, set_idx, sets = _choice_stages(u)
    in_features = pl_bootstrap and 0 < len(sets) <= PL_MAX_CHOICE_SETS
    lay = _Layout(n_sys=n_sys, kmax=kmax, n_sets=len(sets) if in_features else 0,
                  share_scale=share_scale or 1.0, norm_scale=norm_scale or 1.0)
    counts = sparse.csr_matrix((np.ones(n_rows), (t.item, which)), shape=(n_items, n_u))
    x, diff = None, None
    step = max(1, _CHUNK_VALUES // max(lay.width, 1))
    for lo in range(0, n_u, step):
        part = slice(lo, min(lo + step, n_u))
        values, win1_diff = _ranking_values(u, part, lay, share_scale, norm_scale, chooses,
                                            rows, set_idx)
        weights = counts[:, part] if n_u > step else counts
        if x is None:
            x, diff = weights @ values, weights @ win1_diff
        else:
            x += weights @ values
            diff += weights @ win1_diff
    if x is None:  # no rankings
        x, diff = np.zeros((n_items, lay.width)), np.zeros((n_items, n_sys * n_sys))
    multiplicity = np.bincount(which, minlength=n_u).astype(np.float64)
    extra = {
        "pl_wins": multiplicity @ chooses,
        "pl_sets": np.bincount(set_idx, weights=multiplicity[rows], minlength=len(sets)),
        "pl_sets_matrix": sets,
        # Per-item Win@1 difference for each pair shown together, for the paired sign test.
        "win1_diff": diff.reshape(n_items, n_sys, n_sys) / (share_scale or 1.0),
        "together": x[:, lay.spans["count"]].reshape(n_items, n_sys, n_sys) > 0,
    }
    return x, lay, extra


def _ranking_values(u: _Table, part: slice, lay: _Layout, share_scale: int, norm_scale: int,
                    chooses: np.ndarray, rows: np.ndarray, set_idx: np.ndarray):
    """Feature values (scaled to integers) of the distinct rankings `part`, and their Win@1
    difference for each pair shown together (times `share_scale`)."""
    t = u.rows(np.arange(part.start, part.stop))
    shown, k = t.shown, t.k
    g = np.where(shown, t.last - t.first + 1, 1)
    blocks = [shown, shown & (t.first == 1) & (g == 1)]
    # Win@k credit: the share of the tie group a..b that lies within the top k.
    ks = np.arange(1, lay.kmax + 1)
    inside = np.minimum(t.last[:, None, :], ks[None, :, None]) - t.first[:, None, :] + 1
    blocks.append(_fraction(np.clip(inside, 0, None) * shown[:, None, :], g[:, None, :],
                            share_scale))
    blocks.append((t.first + t.last) * shown)
    # A ranking of one response has no normalised rank ((a+b)/2 - 1) / (k - 1) = 0 / 0.
    norm_ok = shown & (k[:, None] > 1)
    blocks.append(np.where(norm_ok, _fraction((t.first + t.last - 2) * norm_ok,
                                              2 * np.maximum(k - 1, 1)[:, None], norm_scale), 0))
    blocks.append(norm_ok)
    above, tied, both = _pair_parts(t)
    blocks.append(2 * above + tied)
    blocks.append(both)
    if lay.n_sets:
        blocks.append(chooses[part])
        mine = (rows >= part.start) & (rows < part.stop)
        per_set = np.bincount((rows[mine] - part.start) * lay.n_sets + set_idx[mine],
                              minlength=len(t.item) * lay.n_sets)
        blocks.append(per_set.reshape(len(t.item), lay.n_sets))
    values = np.hstack([_flat(np.asarray(b, np.float64)) for b in blocks])
    top = _fraction((t.first == 1).astype(np.int64), g, share_scale)
    win1_diff = (top[:, :, None] - top[:, None, :]) * both
    return values, _flat(np.asarray(win1_diff, np.float64))


def _flat(block: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, prod(...)), also when N or the trailing size is 0."""
    return block.reshape(block.shape[0], int(np.prod(block.shape[1:])))


def _rates(totals: np.ndarray, lay: _Layout) -> dict[str, np.ndarray]:
    """Per-system ratios from totals (R x features, as `_features` scales them), R = rounds (1
    for the point estimate)."""
    r, k = totals.shape[0], lay.n_sys
    sp = lay.spans
    totals = totals / lay.scale
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
