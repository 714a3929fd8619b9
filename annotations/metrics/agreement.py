"""Agreement between annotators (Kendall's W, Krippendorff's alpha, top-1 agreement) and each
annotator's quality against the leave-one-out consensus of the others."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping

import numpy as np

from .tables import _EPS, Annotation, _div, _encode, _num, _Table

_PAIR_CHUNK = 1 << 20  # (ranking, pair of systems) values built at once


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
    # Per system s: how many common systems stand above it, and how many share its group (s
    # included); one (N, K) pass per system t keeps memory at a few (N, K) arrays.
    n_ahead = np.zeros(cm.shape, np.int64)
    n_tied = np.zeros(cm.shape, np.int64)
    for u in range(cm.shape[1]):
        with_u = cm[:, u:u + 1]
        n_ahead += with_u & (t.last[:, u:u + 1] < t.first)
        n_tied += with_u & (t.first[:, u:u + 1] == t.first)
    rank = np.where(cm, 1 + n_ahead + (n_tied - 1) / 2, 0.0)
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
    if not t.shown.any():
        return math.nan
    n_sys = len(t.systems)
    value = t.first + t.last  # 2 x position: exact integer codes; 0 where not shown
    present = np.bincount(value.ravel()) > 0
    present[0] = False
    values = np.flatnonzero(present)  # the values that occur, in increasing order
    code = np.full(len(present), len(values))  # not shown: one more column, dropped below
    code[values] = np.arange(len(values))
    unit = t.item[:, None] * n_sys + np.arange(n_sys)  # (item, system)
    width = len(values) + 1
    counts = np.bincount((unit * width + code[value]).ravel(),
                         minlength=len(t.items) * n_sys * width).reshape(-1, width)
    return _alpha_ordinal_from_counts(counts[:, :-1])


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


def _loo_agreement(t: _Table) -> np.ndarray:
    """Kendall's tau-b of each ranking against the mean position of the item's other rankings."""
    g_mat = t.item_matrix()
    shown = t.shown
    mid = t.mid * shown
    total = np.asarray(g_mat @ mid)[t.item] - mid
    count = np.asarray(g_mat @ shown.astype(np.float64))[t.item] - shown
    common = shown & (count > 0)
    consensus = _div(total, count)
    # Sums over ordered pairs (s, t) are twice those over s < t; every term is -1, 0 or 1, so
    # the sums are exact. Rows go in chunks so that memory stays at a few (N,) arrays.
    s, u = np.triu_indices(mid.shape[1], 1)
    num, xx, yy = (np.zeros(len(t.item)) for _ in range(3))
    step = max(1, _PAIR_CHUNK // max(len(s), 1))
    for lo in range(0, len(t.item), step):
        rows = slice(lo, lo + step)
        c, m, k = common[rows], mid[rows], consensus[rows]
        both = c[:, s] & c[:, u]
        x = np.where(both, np.sign(m[:, s] - m[:, u]), 0.0)
        y = np.where(both, np.sign(k[:, s] - k[:, u]), 0.0)
        num[rows], xx[rows], yy[rows] = (x * y).sum(1), (x * x).sum(1), (y * y).sum(1)
    return _div(2 * num, np.sqrt((2 * xx) * (2 * yy)))


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
