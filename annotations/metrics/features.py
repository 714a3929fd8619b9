"""Sufficient statistics per item: every per-system figure is a ratio of sums over rankings,
so the point estimate and each bootstrap round only need weighted totals of these columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
