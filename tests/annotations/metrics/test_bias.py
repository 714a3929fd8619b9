"""Position bias (annotations.metrics.bias): shares of first places per display slot, a tied
first place split across its slots, and the chi-square test."""

from scipy import stats

from annotations.metrics import position_bias
from tests.annotations.metrics.helpers import EXAMPLE, ann, approx


def test_position_bias_shares_and_chi_square():
    # First places sat in slots 2 (A in B,A,C,D), 3 (C in A,B,C,D) and 4 (A in D,C,B,A); the
    # third ranking has no display order. Seven times over: 21 rankings of 4, enough for the test
    # (5 expected per slot). Expected 21/4 per slot, observed 0, 7, 7, 7:
    # chi2 = 5.25^2 / 5.25 + 3 * 1.75^2 / 5.25 = 7.0 with 3 degrees of freedom.
    got = position_bias(EXAMPLE * 7)
    assert got["n"] == 21 and got["n_tested"] == 21 and got["min_n"] == 20
    assert [s["share"] for s in got["slots"]] == [0.0, approx(1 / 3), approx(1 / 3), approx(1 / 3)]
    assert [s["expected"] for s in got["slots"]] == [0.25] * 4
    assert got["chi2"] == approx(7.0) and got["df"] == 3
    assert got["p"] == approx(stats.chi2.sf(7.0, 3))


def test_position_bias_makes_no_claim_from_too_few_rankings():
    # Three rankings once read "p = 0.010, the slot matters". Fewer than 5 per slot: shares, no test.
    got = position_bias(EXAMPLE)
    assert got["n"] == 3
    assert [s["share"] for s in got["slots"]] == [0.0, approx(1 / 3), approx(1 / 3), approx(1 / 3)]
    assert (got["chi2"], got["df"], got["p"]) == (None, None, None)
    assert got["n_tested"] == 0 and got["min_n"] == 20
    all_in_slot_1 = [ann(f"p{i}", "x", "A", "B", "C", display="ABC") for i in range(14)]
    assert position_bias(all_in_slot_1)["p"] is None  # 14 < 5 * 3, however lopsided
    assert position_bias(all_in_slot_1 * 2)["p"] < 1e-6


def test_position_bias_tests_only_the_lengths_with_enough_rankings():
    threes = [ann(f"p{i}", "x", "ABC"[i % 3], *[t for t in "ABC" if t != "ABC"[i % 3]], display="ABC")
              for i in range(15)]
    fours = [ann("q", "x", "A", "B", "C", "D", display="ABCD")] * 3
    got = position_bias(threes + fours)
    assert got["n"] == 18 and got["n_tested"] == 15 and got["df"] == 2 and got["min_n"] == 15
    assert got["chi2"] == approx(0.0)  # the 15 rankings of 3 put first places evenly


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
