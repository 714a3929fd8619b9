"""Position bias (annotations.metrics.bias): shares of first places per display slot, a tied
first place split across its slots, and the chi-square test."""

from scipy import stats

from annotations.metrics import position_bias
from tests.annotations.metrics.helpers import EXAMPLE, ann, approx


def test_position_bias_shares_and_chi_square():
    # First places sat in slots 2 (A in B,A,C,D), 3 (C in A,B,C,D) and 4 (A in D,C,B,A); the
    # third ranking has no display order. Expected 3/4 per slot:
    # chi2 = 0.75^2 / 0.75 + 3 * 0.25^2 / 0.75 = 1.0 with 3 degrees of freedom.
    got = position_bias(EXAMPLE)
    assert got["n"] == 3
    assert [s["share"] for s in got["slots"]] == [0.0, approx(1 / 3), approx(1 / 3), approx(1 / 3)]
    assert [s["expected"] for s in got["slots"]] == [0.25] * 4
    assert got["chi2"] == approx(1.0) and got["df"] == 3
    assert got["p"] == approx(stats.chi2.sf(1.0, 3))


def test_position_bias_splits_a_tied_first_place_across_its_slots():
    data = [ann("p", "x", "AB", "C", display="CAB"), ann("q", "x", "C", "AB", display="CAB")]
    # slot 1: 0 + 1; slot 2: 1/2; slot 3: 1/2
    got = position_bias(data)
    assert [s["share"] for s in got["slots"]] == [0.5, 0.25, 0.25]


def test_position_bias_detects_a_biased_slot():
    data = [ann(f"p{i}", "x", s, *[t for t in "ABC" if t != s], display=(s, *[t for t in "ABC"
            if t != s])) for i, s in enumerate("ABC" * 20)]
    got = position_bias(data)  # every winner was in slot 1
    assert got["slots"][0]["share"] == 1.0
    assert got["p"] < 1e-10
