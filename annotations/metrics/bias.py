"""Position bias: how often the first place sat in each display slot, against the 1/k expected
without bias, with a chi-square test stratified by ranking length once there are enough rankings."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import stats

from .tables import Annotation, _encode, _num, _Table

# The chi-square approximation needs an expected count of at least 5 in every slot (Cochran's
# rule): rankings of length k enter the test only when there are at least 5 * k of them. With
# fewer, a p-value says nothing (3 rankings once gave p = 0.010).
MIN_EXPECTED_PER_SLOT = 5


def _position_bias(t: _Table) -> dict:
    has = (t.slot >= 0).any(1)
    credit = t.top_credit()[has]
    slot = t.slot[has]
    k = t.k[has]
    n = int(has.sum())
    kmax = int(k.max()) if n else 0
    observed = np.bincount(slot[credit > 0], weights=credit[credit > 0], minlength=kmax)
    expected = np.zeros(kmax)
    chi2, df, n_tested = 0.0, 0, 0
    lengths = [int(kk) for kk in np.unique(k) if kk >= 2]
    # Rankings of different lengths have different null shares (1/k), so the test is stratified
    # by k: a sum of independent chi-squares, degrees of freedom adding up. A length with too
    # few rankings for the approximation stays out of the test (its shares are still shown).
    for kk in np.unique(k):
        rows = k == kk
        o = np.bincount(slot[rows][credit[rows] > 0], weights=credit[rows][credit[rows] > 0],
                        minlength=kk)
        e = np.full(kk, rows.sum() / kk)
        expected[:kk] += e
        if kk >= 2 and rows.sum() >= MIN_EXPECTED_PER_SLOT * kk:
            chi2 += float(((o - e) ** 2 / e).sum())
            df += int(kk - 1)
            n_tested += int(rows.sum())
    return {
        "n": n,
        "slots": [
            {"slot": j + 1, "share": _num(observed[j] / n), "expected": _num(expected[j] / n)}
            for j in range(kmax)
        ],
        "chi2": chi2 if df else None,
        "df": df if df else None,
        "p": float(stats.chi2.sf(chi2, df)) if df else None,
        # How many rankings the test used, and the fewest it needs (for the shortest length).
        "n_tested": n_tested,
        "min_n": MIN_EXPECTED_PER_SLOT * min(lengths) if lengths else None,
    }


def position_bias(annotations: Iterable[Annotation]) -> dict:
    """Share of rankings whose first place sat in each display slot (a tied first place splits
    its credit), against the 1/k expected without bias, with a chi-square test (stratified by k).
    Rankings without a display order are left out; `n` counts the rest. Only lengths k with at
    least 5 * k rankings are tested (`n_tested` of them, `min_n` the fewest that would do); with
    none, `chi2`, `df` and `p` are None."""
    return _position_bias(_encode(list(annotations), None))
