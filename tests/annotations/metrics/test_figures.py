"""Single per-system figures (annotations.metrics.figures): Win@1, Win@k, mean and normalised
rank, pairwise win rates, hand-computed on the worked example, and Win@1 summing to one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotations.metrics import (
    bootstrap_statistics,
    mean_rank,
    pairwise_win_rates,
    pairwise_wins,
    strict_win1,
    win1,
    win_at_k,
)
from annotations.metrics.features import _features
from annotations.metrics.tables import _table
from tests.annotations.metrics.helpers import EXAMPLE, ann, approx, studies


# ---------------------------------------------------------------------------------------------
# Per-system figures, by hand


def test_win1_gives_tied_firsts_a_share_of_the_credit():
    # A: 1 + 0 + 1/2 (tied first with B) + 1 = 2.5 over 4; B: 1/2 over 4; C: 1 over 4; D: 0
    assert win1(EXAMPLE) == {"A": 0.625, "B": 0.125, "C": 0.25, "D": 0.0}


def test_strict_win1_counts_only_sole_first_places():
    # A alone first in rankings 1 and 4; C in ranking 2; the A/B tie counts for neither.
    assert strict_win1(EXAMPLE) == {"A": 0.5, "B": 0.0, "C": 0.25, "D": 0.0}


def test_win_at_2_counts_the_share_of_the_tie_group_inside_the_top_two():
    # A: 1 + 1 (2nd) + 1 (group 1-2 inside) + 1 = 4/4
    # B: 0 (4th) + 0 (group 3-4) + 1 (group 1-2) + 1 (2nd) = 2/4
    # C: 1/2 (group 2-3: one of two places inside) + 1 + 0 + 0 = 1.5/4
    # D: 1/2 + 0 + 0 + 0 = 0.5/4
    assert win_at_k(EXAMPLE, 2) == {"A": 1.0, "B": 0.5, "C": 0.375, "D": 0.125}
    # Win@k over k = 1..K is a distribution: the top K always holds everyone.
    assert win_at_k(EXAMPLE, 4) == {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}
    assert win_at_k(EXAMPLE, 9) == win_at_k(EXAMPLE, 4)


def test_mean_rank_uses_the_average_position_of_a_tie_group():
    # A: 1, 2, 1.5, 1 -> 5.5/4; B: 4, 3.5, 1.5, 2 -> 11/4; C: 2.5, 1, 3, 3 -> 9.5/4;
    # D: 2.5, 3.5, 4, 4 -> 14/4
    assert mean_rank(EXAMPLE) == {"A": 1.375, "B": 2.75, "C": 2.375, "D": 3.5}
    # normalised ((a+b)/2 - 1) / (k - 1) with k = 4: (mean rank - 1) / 3
    got = mean_rank(EXAMPLE, normalised=True)
    assert got == {s: approx(v) for s, v in
                   {"A": 0.375 / 3, "B": 1.75 / 3, "C": 1.375 / 3, "D": 2.5 / 3}.items()}


def test_normalised_rank_makes_rankings_of_different_lengths_comparable():
    data = [ann("p", "a", "A", "B"), ann("q", "a", "C", "A", "D", "E", "B"), ann("r", "a", "A")]
    # A: (1-1)/(2-1) = 0 and (2-1)/(5-1) = 0.25; the one-response ranking has no normalised rank
    got = mean_rank(data, normalised=True)
    assert got["A"] == 0.125
    assert got["B"] == 1.0  # last of 2, last of 5
    assert mean_rank(data)["A"] == approx(4 / 3)  # 1, 2, 1


def test_pairwise_win_rates_count_a_tie_as_half():
    names, rate, count = pairwise_win_rates(EXAMPLE)
    i = {s: names.index(s) for s in "ABCD"}
    # A vs B: above, above, tied, above -> 3.5 / 4
    assert rate[i["A"], i["B"]] == 0.875
    assert rate[i["B"], i["A"]] == 0.125
    # B vs D: below (4th vs 2.5), tied, above, above -> 2.5 / 4
    assert rate[i["B"], i["D"]] == 0.625
    assert count[i["A"], i["B"]] == 4
    assert np.isnan(rate[i["A"], i["A"]])
    _, wins = pairwise_wins(EXAMPLE)
    assert wins[i["A"], i["B"]] == 3.5 and wins[i["B"], i["A"]] == 0.5


def test_pairwise_win_rate_is_undefined_for_systems_never_shown_together():
    names, rate, count = pairwise_win_rates([ann("p", "a", "A", "B"), ann("q", "a", "C", "B")])
    assert np.isnan(rate[names.index("A"), names.index("C")])
    assert count[names.index("A"), names.index("C")] == 0


# ---------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=40, deadline=None)
@given(studies(everyone=True), st.sampled_from(["annotation", "item"]))
def test_win1_sums_to_one_when_every_system_is_always_shown(study, unit):
    systems, data = study
    assert sum(win1(data, systems, unit=unit).values()) == approx(1, 1e-9)
    # ... in every bootstrap round too, and Win@k sums to k (capped at K).
    boot = bootstrap_statistics(data, systems, unit=unit, rounds=20, seed=0)
    assert boot["win1"].sum(1) == pytest.approx(np.ones(20))
    k = boot["win_at"].shape[1]
    assert boot["win_at"].sum(2) == pytest.approx(np.tile(np.arange(1, k + 1), (20, 1)))


def test_tie_groups_too_varied_for_integer_features_still_give_the_figures():
    # Group sizes 9, 11, 13, 16, 17 and 19 have a common denominator above 2^20: the features
    # for Win@k stay fractions (summed in float64) rather than scaled integers.
    names = [f"S{i:02d}" for i in range(40)]

    def groups(*sizes):
        out, at = [], 0
        for size in sizes:
            out.append(names[at:at + size])
            at += size
        return out

    data = [ann("p", "x", *groups(17, 19, 4)), ann("q", "x", *groups(16, 13, 11)),
            ann("r", "y", *groups(9, 31))]
    assert win_at_k(data, 10)["S00"] == approx((10 / 17 + 10 / 16 + 1) / 3)
    assert win_at_k(data, 20)["S20"] == approx((3 / 19 + 4 / 13 + 11 / 31) / 3)
    assert win1(data)["S00"] == approx((1 / 17 + 1 / 16 + 1 / 9) / 3)
    assert _features(_table(data, None, "annotation"))[1].share_scale == 1.0  # kept as fractions
    boot = bootstrap_statistics(data, rounds=30, seed=1)
    assert np.isfinite(boot["win_at"]).all()
