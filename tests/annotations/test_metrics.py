"""The leaderboard's statistics (annotations.metrics): hand-computed cases for every figure,
degenerate data, properties, agreement with choix, and bootstrap coverage by simulation."""

import json
import math
from unittest import mock

import choix
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from annotations import metrics
from annotations.metrics import (
    Annotation,
    annotator_quality,
    bootstrap_counts,
    bootstrap_statistics,
    bradley_terry,
    combine_per_item,
    holm,
    kendalls_w,
    krippendorff_alpha_ordinal,
    leaderboard,
    mean_rank,
    pairwise_win_rates,
    pairwise_wins,
    plackett_luce,
    position_bias,
    ranking_alpha,
    sign_test,
    significance_groups,
    strict_win1,
    to_elo,
    top1_agreement,
    win1,
    win_at_k,
)


def ann(item, annotator, *groups, display=None, seconds=None):
    return Annotation(
        item=item,
        annotator=annotator,
        ranking=tuple(tuple(g) for g in groups),
        display_order=None if display is None else tuple(display),
        seconds=seconds,
    )


# The example of metrics.md ([[A], [C, D], [B]]) plus three more rankings over two items.
EXAMPLE = [
    ann("p1", "a1", "A", "CD", "B", display="BACD", seconds=41.5),
    ann("p1", "a2", "C", "A", "BD", display="ABCD", seconds=30.0),
    ann("p2", "a1", "AB", "C", "D", seconds=20.0),
    ann("p2", "a3", "A", "B", "C", "D", display="DCBA"),
]


def random_study(n_items=25, per_item=3, systems="ABCD", seed=0):
    """Uniformly random weak orderings with display orders: enough items for the bootstrap to
    have many distinct rounds."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_items):
        for j in range(per_item):
            order = [str(x) for x in rng.permutation(list(systems))]
            groups = [[order[0]]]
            for name in order[1:]:
                if rng.random() < 0.25:  # tied with the one above
                    groups[-1].append(name)
                else:
                    groups.append([name])
            display = [str(x) for x in rng.permutation(list(systems))]
            out.append(ann(f"i{i}", f"a{j}", *groups, display=display,
                           seconds=float(rng.uniform(5, 60))))
    return out


def approx(x, tol=1e-12):
    return pytest.approx(x, abs=tol)


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


def test_bradley_terry_three_wins_in_four_is_log_three_apart():
    # Without a prior the MLE has P(A beats B) = 3/4, so theta_A - theta_B = log 3, centred.
    theta = bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]), alpha=0.0)
    assert theta == pytest.approx([math.log(3) / 2, -math.log(3) / 2], abs=1e-9)
    # Elo-like: 400 log10(3) = 190.85 points apart, mean 1000
    assert to_elo(theta) == pytest.approx([1000 + 200 * math.log10(3), 1000 - 200 * math.log10(3)])


def test_bradley_terry_prior_keeps_an_unbeaten_system_finite():
    # One win, prior 0.01: theta_A = -theta_B = x with sigmoid(2x) = 1 - 2 * 0.01 * x.
    x = optimize.brentq(lambda x: 1 / (1 + math.exp(-2 * x)) - 1 + 0.02 * x, 0, 50)
    theta = bradley_terry(np.array([[0.0, 1.0], [0.0, 0.0]]), alpha=0.01)
    assert theta == pytest.approx([x, -x], abs=1e-8)
    assert 1 < x < 3


def test_bradley_terry_fits_a_batch_as_it_fits_each():
    rng = np.random.default_rng(3)
    wins = rng.integers(0, 6, size=(7, 4, 4)) * (1 - np.eye(4))
    batched = bradley_terry(wins)
    for r in range(7):
        assert batched[r] == pytest.approx(bradley_terry(wins[r]), abs=1e-8)


def test_bradley_terry_is_undefined_without_comparisons_and_centred_per_component():
    wins = np.zeros((5, 5))
    wins[0, 1] = 2  # A beat B twice
    wins[2, 3], wins[3, 2] = 1, 3  # C and D: another component
    theta = bradley_terry(wins)
    assert np.isnan(theta[4])  # E never compared
    assert theta[0] + theta[1] == approx(0, 1e-9)  # the prior centres each component
    assert theta[2] + theta[3] == approx(0, 1e-9)


def test_plackett_luce_on_two_systems_is_bradley_terry():
    data = [ann("p", "x", "A", "B")] * 3 + [ann("q", "x", "B", "A")]
    assert plackett_luce(data, alpha=0.0) == {
        "A": approx(math.log(3) / 2, 1e-9), "B": approx(-math.log(3) / 2, 1e-9)}


def breslow_neg_log_likelihood(theta, data, names, alpha):
    """Plackett-Luce with Breslow ties, written out one choice at a time."""
    total = alpha * np.sum(theta**2)
    for a in data:
        groups = [[names.index(s) for s in g] for g in a.ranking]
        for j, group in enumerate(groups[:-1]):
            remaining = [s for g in groups[j:] for s in g]
            for s in group:  # each member of a tie group is chosen from the same set
                total -= theta[s] - np.log(np.sum(np.exp(theta[remaining])))
    return total


def test_plackett_luce_treats_a_tie_group_as_members_chosen_from_the_same_set():
    # [[A, B], [C]]: A from {A,B,C} and B from {A,B,C}; [[C], [A], [B]]: C from {A,B,C}, then
    # A from {A,B}. The MAP must minimise that likelihood, written out choice by choice.
    data = [ann("p", "x", "AB", "C"), ann("q", "x", "C", "A", "B")] + random_study(8, 2)
    got = plackett_luce(data, alpha=0.1)
    names = sorted(got)
    best = optimize.minimize(breslow_neg_log_likelihood, np.zeros(len(names)),
                             args=(data, names, 0.1), method="BFGS", options={"gtol": 1e-10})
    assert [got[s] for s in names] == pytest.approx(best.x - best.x.mean(), abs=1e-5)
    assert sum(got.values()) == approx(0, 1e-9)


def test_chance_level_is_one_over_k():
    data = [ann(f"p{i}", "a", "A", "B", "C", "D", "E", "F") for i in range(3)]
    board = leaderboard(data, rounds=0)
    assert board["chance_win1"] == approx(1 / 6)  # the 16.7 % shown beside the table
    assert all(e["chance_win1"] == approx(1 / 6) for e in board["systems"])


# ---------------------------------------------------------------------------------------------
# Per-item unit


def test_combine_per_item_orders_by_mean_position_and_keeps_ties():
    # p1: A (1 + 2) / 2 = 1.5, C (2.5 + 1) / 2 = 1.75, D (2.5 + 3.5) / 2 = 3, B (4 + 3.5) / 2
    # p2: A 1.25, B 1.75, C 3, D 4
    combined = combine_per_item(EXAMPLE)
    assert [c.ranking for c in combined] == [
        (("A",), ("C",), ("D",), ("B",)),
        (("A",), ("B",), ("C",), ("D",)),
    ]
    tied = combine_per_item([ann("p", "x", "A", "B"), ann("p", "y", "B", "A")])
    assert tied[0].ranking == (("A", "B"),)


def test_per_item_unit_counts_each_item_once():
    # A is first in both combined rankings.
    assert win1(EXAMPLE, unit="item") == {"A": 1.0, "B": 0.0, "C": 0.0, "D": 0.0}
    # A 1, 1; C 2, 3; B 4, 2; D 3, 4
    assert mean_rank(EXAMPLE, unit="item") == {"A": 1.0, "B": 3.0, "C": 2.5, "D": 3.5}
    board = leaderboard(EXAMPLE, unit="item", rounds=20)
    assert board["unit"] == "item" and board["n_units"] == 2
    assert {e["system"]: e["n"] for e in board["systems"]} == {s: 2 for s in "ABCD"}


def test_per_item_unit_with_a_system_shown_to_only_some_annotators():
    data = [ann("p", "x", "B", "A", "C"), ann("p", "y", "A", "B")]
    # A (2 + 1) / 2 = 1.5, B (1 + 2) / 2 = 1.5, C 3 (only the first ranking showed it)
    assert combine_per_item(data)[0].ranking == (("A", "B"), ("C",))
    assert win1(data, unit="item") == {"A": 0.5, "B": 0.5, "C": 0.0}


# ---------------------------------------------------------------------------------------------
# Agreement and quality, by hand


def test_kendalls_w_with_tie_correction():
    # p1: ranks A 1, 2; B 4, 3.5; C 2.5, 1; D 2.5, 3.5 -> sums 3, 7.5, 3.5, 6; mean m(n+1)/2 = 5
    # S = 4 + 6.25 + 2.25 + 1 = 13.5; each rater has one pair tied: T = 2^3 - 2 = 6 each
    # W = 12 S / (m^2 (n^3 - n) - m sum T) = 162 / (4 * 60 - 2 * 12) = 0.75
    # p2: sums A 2.5, B 3.5, C 6, D 8; S = 6.25 + 2.25 + 1 + 9 = 18.5; T = 6 + 0
    # W = 222 / (240 - 12)
    assert kendalls_w(EXAMPLE) == {"p1": approx(0.75), "p2": approx(222 / 228)}


def test_kendalls_w_classic_cases():
    same = [ann("p", "x", "A", "B", "C"), ann("p", "y", "A", "B", "C")]
    opposite = [ann("p", "x", "A", "B", "C"), ann("p", "y", "C", "B", "A")]
    # two raters, A B C and A C B: sums 2, 5, 5; S = 4 + 1 + 1 = 6; W = 72 / (4 * 24) = 0.75
    swap = [ann("p", "x", "A", "B", "C"), ann("p", "y", "A", "C", "B")]
    assert kendalls_w(same) == {"p": 1.0}
    assert kendalls_w(opposite) == {"p": 0.0}
    assert kendalls_w(swap) == {"p": 0.75}


def test_kendalls_w_uses_the_systems_every_annotator_saw():
    # D was shown to x only; on {A, B, C} the two rankings agree exactly.
    data = [ann("p", "x", "A", "D", "B", "C"), ann("p", "y", "A", "B", "C")]
    assert kendalls_w(data) == {"p": 1.0}


def test_kendalls_w_is_undefined_for_one_rater_or_all_ties():
    data = [ann("p", "x", "A", "B"), ann("q", "x", "AB"), ann("q", "y", "AB")]
    assert kendalls_w(data) == {"p": None, "q": None}


def reference_alpha(data):
    """Krippendorff's alpha (ordinal) straight from the definition, one pair at a time."""
    data = np.asarray(data, float)
    values = np.unique(data[~np.isnan(data)])
    o = np.zeros((len(values), len(values)))
    for unit in data.T:
        coded = [np.searchsorted(values, v) for v in unit[~np.isnan(unit)]]
        m = len(coded)
        for i in range(m):
            for j in range(m):
                if i != j:
                    o[coded[i], coded[j]] += 1 / (m - 1)
    n_c = o.sum(1)
    n = n_c.sum()

    def delta2(c, k):
        lo, hi = min(c, k), max(c, k)
        return (n_c[lo:hi + 1].sum() - (n_c[c] + n_c[k]) / 2) ** 2

    d_o = sum(o[c, k] * delta2(c, k) for c in range(len(values)) for k in range(len(values)))
    d_e = sum(n_c[c] * n_c[k] * delta2(c, k) for c in range(len(values))
              for k in range(len(values))) / (n - 1)
    return 1 - d_o / d_e


def test_krippendorff_alpha_ordinal_matches_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units;
    # ordinal alpha = 0.815.
    nan = np.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    assert round(krippendorff_alpha_ordinal(data), 3) == 0.815
    assert krippendorff_alpha_ordinal(data) == approx(reference_alpha(data))


def test_krippendorff_alpha_by_hand():
    # Units (C) and (D), values {1, 2} and {2, 1}: o_12 = o_21 = 2, n_1 = n_2 = 2, n = 4,
    # delta^2(1, 2) = (2 + 2 - 2)^2 = 4; alpha = 1 - (n - 1) * 16 / 32 = -0.5.
    assert krippendorff_alpha_ordinal([[1, 2], [2, 1]]) == -0.5
    assert krippendorff_alpha_ordinal([[1, 2, 3], [1, 2, 3]]) == 1.0
    assert krippendorff_alpha_ordinal([[1, 1], [1, 1]]) is None  # no variation: undefined
    assert krippendorff_alpha_ordinal([[1, np.nan], [np.nan, 2]]) is None  # nothing pairable


def test_ranking_alpha_takes_units_item_system_and_values_position():
    data = [ann("q", "a", "C", "D"), ann("q", "b", "D", "C"), ann("p", "a", "A", "B")]
    # Units (q, C): {1, 2}, (q, D): {2, 1}; (p, A) and (p, B) are coded once: not pairable.
    assert ranking_alpha(data) == -0.5
    ties = [ann("p", "a", "A", "BC"), ann("p", "b", "A", "BC")]
    # A: {1, 1}, B: {2.5, 2.5}, C: {2.5, 2.5}: perfect agreement on half positions too
    assert ranking_alpha(ties) == 1.0
    rng = np.random.default_rng(5)
    # Random rankings: agrees with the one-pair-at-a-time definition on coder x unit data.
    rand = []
    for item in range(6):
        for coder in range(3):
            perm = rng.permutation(list("ABCD"))
            rand.append(ann(f"i{item}", f"c{coder}", *perm))
    matrix = np.full((3, 24), np.nan)
    for r in rand:
        c, i = int(r.annotator[1]), int(r.item[1])
        for pos, (s,) in enumerate(r.ranking, start=1):
            matrix[c, i * 4 + "ABCD".index(s)] = pos
    assert ranking_alpha(rand) == approx(reference_alpha(matrix), 1e-10)


def test_top1_agreement_and_chance():
    # p1: firsts A and C -> 0; p2: top groups {A, B} and {A} -> a random pick agrees 1/2.
    # Two pairs: (0 + 0.5) / 2. Chance: 4 systems, both pick at random: 1/4 per pair.
    assert top1_agreement(EXAMPLE) == (0.25, 0.25)
    three = [ann("p", "x", "A", "B"), ann("p", "y", "A", "B"), ann("p", "z", "B", "A")]
    # pairs (x, y) agree, (x, z) and (y, z) do not: 1/3; chance 1/2
    assert top1_agreement(three) == (approx(1 / 3), 0.5)
    assert top1_agreement([ann("p", "x", "A", "B")]) == (None, None)


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


def test_annotator_quality_against_leave_one_out_consensus():
    # x: A B C, y: A C B, z: B A C on item p.
    # x vs mean of y, z: A 1.5, B 2, C 2.5 -> same order -> tau-b 1
    # y vs x, z: A 1.5, B 1.5, C 3: pairs (A,B) 0, (A,C) +1, (B,C) -1 -> 0 / sqrt(3 * 2) = 0
    # z vs x, y: A 1, B 2.5, C 2.5: (A,B) -1, (A,C) +1, (B,C) 0 -> 0
    data = [
        ann("p", "x", "A", "B", "C", seconds=10),
        ann("p", "y", "A", "C", "B", seconds=20),
        ann("p", "z", "B", "A", "C"),
        ann("q", "x", "A", "B", seconds=50),
    ]
    got = {a["annotator"]: a for a in annotator_quality(data, {"x": 1.0, "y": 0.5})}
    assert got["x"]["loo_agreement"] == 1.0  # q has no other ranking: left out of the mean
    assert got["y"]["loo_agreement"] == 0.0 and got["z"]["loo_agreement"] == 0.0
    assert got["x"]["n_annotations"] == 2
    assert got["x"]["median_seconds"] == 30.0 and got["z"]["median_seconds"] is None
    assert got["x"]["attention_pass_rate"] == 1.0 and got["z"]["attention_pass_rate"] is None


# ---------------------------------------------------------------------------------------------
# Significance


def test_holm_step_down():
    # sorted 0.01, 0.03, 0.04: 3 * 0.01 = 0.03; 2 * 0.03 = 0.06; max(0.06, 1 * 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_sign_test_is_exact_binomial():
    # 9 of 10 items favour one system: 2 * P(X <= 1) = 2 * (1 + 10) / 1024
    assert sign_test(9, 1) == approx(22 / 1024)
    assert sign_test(1, 9) == sign_test(9, 1)
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0


def test_significance_groups_compact_letters():
    # A-C separable, A-B and B-C not: groups {A, B} and {B, C}
    sep = [[False, False, True], [False, False, False], [True, False, False]]
    letters, groups = significance_groups(["A", "B", "C"], sep)
    assert letters == {"A": "a", "B": "ab", "C": "b"}
    assert groups == [["A", "B"], ["B", "C"]]
    all_sep = ~np.eye(3, dtype=bool)
    assert significance_groups(["A", "B", "C"], all_sep)[0] == {"A": "a", "B": "b", "C": "c"}
    assert significance_groups(["A", "B"], np.zeros((2, 2), bool))[0] == {"A": "a", "B": "a"}


def test_leaderboard_separates_a_clear_winner_and_groups_the_rest():
    # 30 items: A always first alone, B and C swap places: A-B and A-C separable, B-C not.
    data = []
    for i in range(30):
        data.append(ann(f"p{i}", "x", "A", *("BC" if i % 2 else "CB")))
        data.append(ann(f"p{i}", "y", "A", *("CB" if i % 2 else "BC")))
    board = leaderboard(data, rounds=200)
    tests = {(t["a"], t["b"]): t for t in board["pairwise"]["tests"]}
    assert tests[("A", "B")]["a_better"] == 30 and tests[("A", "B")]["b_better"] == 0
    assert tests[("A", "B")]["p"] == approx(2 * 0.5**30)
    # Holm over 3 pairs: the smallest p is multiplied by 3
    assert tests[("A", "B")]["p_holm"] == approx(3 * 2 * 0.5**30)
    assert tests[("A", "B")]["separable"] and not tests[("B", "C")]["separable"]
    assert tests[("A", "B")]["win1_diff"] == 1.0 and tests[("A", "B")]["win1_diff_ci"] == [1, 1]
    assert {e["system"]: e["group"] for e in board["systems"]} == {"A": "a", "B": "b", "C": "b"}
    assert board["pairwise"]["groups"] == [["A"], ["B", "C"]]


# ---------------------------------------------------------------------------------------------
# The bootstrap


def test_bootstrap_rounds_equal_refitting_on_the_resampled_items():
    # The vectorised rounds must be what one would get by rebuilding each resampled study.
    items = sorted({a.item for a in EXAMPLE}, key=[a.item for a in EXAMPLE].index)
    boot = bootstrap_statistics(EXAMPLE, rounds=6, seed=11)
    counts = bootstrap_counts(len(items), 6, 11)
    for r in range(6):
        resampled = [a for i, item in enumerate(items) for _ in range(counts[r, i])
                     for a in EXAMPLE if a.item == item]
        names, wins = pairwise_wins(resampled, boot["systems"])
        expect_win1 = win1(resampled, boot["systems"])
        for s, name in enumerate(boot["systems"]):
            assert boot["win1"][r, s] == approx(expect_win1[name])
        assert boot["bt"][r] == pytest.approx(bradley_terry(wins), abs=1e-8, nan_ok=True)


def test_bootstrap_fits_all_rounds_in_one_batched_call():
    # Guards the vectorisation: one Bradley-Terry call for the point estimate and one for all
    # rounds, not one per round.
    with mock.patch.object(metrics, "bradley_terry", wraps=metrics.bradley_terry) as bt:
        leaderboard(EXAMPLE, rounds=300)
    assert bt.call_count == 2
    assert bt.call_args_list[1].args[0].shape == (300, 4, 4)


def test_bootstrap_resamples_items_not_annotations():
    # Five identical copies of each ranking per item add no information about items: with the
    # same seed, the intervals must be exactly those of one copy per item.
    rng = np.random.default_rng(0)
    once = [ann(f"p{i}", "x", *rng.permutation(list("ABC"))) for i in range(40)]
    five = [Annotation(a.item, f"x{j}", a.ranking) for a in once for j in range(5)]
    one = {e["system"]: e for e in leaderboard(once, rounds=300, seed=4)["systems"]}
    many = {e["system"]: e for e in leaderboard(five, rounds=300, seed=4)["systems"]}
    for s in "ABC":
        # (Bradley-Terry is left out: its prior weighs less against five times the counts.)
        for key in ("win1_ci", "strict_win1_ci", "mean_rank_ci", "rank_ci"):
            assert many[s][key] == pytest.approx(one[s][key]), key
    # An i.i.d. bootstrap over rankings would have shrunk the intervals by about sqrt(5).


def test_bootstrap_is_reproducible_from_the_reported_seed():
    a = leaderboard(EXAMPLE, rounds=100, seed=7)
    assert a == leaderboard(EXAMPLE, rounds=100, seed=7)
    assert a["seed"] == 7 and a["bootstrap_rounds"] == 100
    assert a != leaderboard(EXAMPLE, rounds=100, seed=8)


def test_rank_interval_spans_the_ranks_seen_across_rounds():
    board = leaderboard(EXAMPLE, rounds=400, seed=1)
    by = {e["system"]: e for e in board["systems"]}
    boot = bootstrap_statistics(EXAMPLE, rounds=400, seed=1)
    ranks = boot["rank"][:, boot["systems"].index("C")]
    assert by["C"]["rank_ci"] == [int(np.quantile(ranks, 0.025, method="lower")),
                                  int(np.quantile(ranks, 0.975, method="higher"))]
    assert by["A"]["rank"] == 1 and by["D"]["rank"] == 4


def simulate_pl(theta, n_items, per_item, rng):
    """Plackett-Luce rankings by the Gumbel-max trick (no ties, every system shown)."""
    names = [f"s{i}" for i in range(len(theta))]
    order = np.argsort(-(theta + rng.gumbel(size=(n_items * per_item, len(theta)))), axis=1)
    return [Annotation(f"i{r // per_item}", f"a{r % per_item}",
                       tuple((names[s],) for s in row)) for r, row in enumerate(order)]


def test_bootstrap_intervals_cover_known_plackett_luce_truth():
    # Under Plackett-Luce the true Win@1 is softmax(theta) and every pair follows
    # Bradley-Terry with the same theta, so both truths are known.
    theta = np.array([1.0, 0.3, 0.0, -0.6])
    true_win1 = np.exp(theta) / np.exp(theta).sum()
    true_bt = theta - theta.mean()
    rng = np.random.default_rng(2024)
    hits_win1 = hits_bt = total = 0
    for _ in range(150):
        data = simulate_pl(theta, n_items=60, per_item=3, rng=rng)
        boot = bootstrap_statistics(data, [f"s{i}" for i in range(4)], rounds=200,
                                    seed=int(rng.integers(1 << 30)))
        for key, truth in (("win1", true_win1), ("bt", true_bt)):
            lo, hi = np.quantile(boot[key], [0.025, 0.975], axis=0)
            hits = int(((lo <= truth) & (truth <= hi)).sum())
            if key == "win1":
                hits_win1 += hits
            else:
                hits_bt += hits
        total += 4
    assert 0.88 <= hits_win1 / total <= 0.99
    assert 0.88 <= hits_bt / total <= 0.99


def test_leaderboard_intervals_are_the_bootstrap_percentiles():
    data = random_study()
    board = leaderboard(data, rounds=250, seed=3)
    boot = bootstrap_statistics(data, rounds=250, seed=3)
    by = {e["system"]: e for e in board["systems"]}
    for s, name in enumerate(boot["systems"]):
        for key in ("win1", "strict_win1", "mean_rank", "normalised_rank", "bt", "pl"):
            assert by[name][key + "_ci"] == pytest.approx(
                list(np.quantile(boot[key][:, s], [0.025, 0.975])), abs=1e-9)
        assert by[name]["win_at_ci"]["2"] == pytest.approx(
            list(np.quantile(boot["win_at"][:, 1, s], [0.025, 0.975])))
        assert by[name]["bt_elo_ci"] == pytest.approx(list(to_elo(by[name]["bt_ci"])))
        assert by[name]["win1_ci"][0] <= by[name]["win1"] <= by[name]["win1_ci"][1]
    # The paired difference uses the same resampled items for both systems.
    for test in board["pairwise"]["tests"]:
        a, b = boot["systems"].index(test["a"]), boot["systems"].index(test["b"])
        diff = boot["win1"][:, a] - boot["win1"][:, b]
        assert test["win1_diff_ci"] == pytest.approx(list(np.quantile(diff, [0.025, 0.975])))


# ---------------------------------------------------------------------------------------------
# The leaderboard dict


def plain(value):
    """True when value holds only JSON types (no numpy scalars) and no NaN."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) in (int, str, bool)


def test_leaderboard_is_plain_json_with_the_documented_keys():
    board = leaderboard(EXAMPLE, rounds=50, attention={"a1": 0.9})
    assert plain(board)
    json.dumps(board, allow_nan=False)
    for key in ("unit", "seed", "bootstrap_rounds", "n_annotations", "n_items", "chance_win1",
                "systems", "pairwise", "agreement", "position_bias", "annotators"):
        assert key in board
    for entry in board["systems"]:
        for key in ("system", "n", "win1", "win1_ci", "strict_win1", "win_at", "mean_rank",
                    "mean_rank_ci", "normalised_rank", "bt", "bt_elo", "bt_elo_ci", "rank_ci",
                    "group"):
            assert key in entry
    assert [e["system"] for e in board["systems"]] == ["A", "C", "B", "D"]  # by Win@1
    assert board["pairwise"]["systems"] == ["A", "C", "B", "D"]
    assert board["pairwise"]["win_rate"][0][2] == 0.875  # A over B
    assert board["agreement"]["kendalls_w"]["mean"] == approx((0.75 + 222 / 228) / 2)
    assert board["agreement"]["kendalls_w"]["n_items"] == 2
    assert sum(board["agreement"]["kendalls_w"]["histogram"]["counts"]) == 2
    by = {a["annotator"]: a for a in board["annotators"]}
    assert by["a1"]["attention_pass_rate"] == 0.9


def test_leaderboard_proportions_are_fractions():
    board = leaderboard(EXAMPLE, rounds=50)
    for e in board["systems"]:
        for v in [e["win1"], e["strict_win1"], e["normalised_rank"], *e["win1_ci"],
                  *e["win_at"].values()]:
            assert 0 <= v <= 1
    for row in board["pairwise"]["win_rate"]:
        assert all(v is None or 0 <= v <= 1 for v in row)
    assert all(0 <= s["share"] <= 1 for s in board["position_bias"]["slots"])


def test_excluded_annotators_leave_the_figures_but_stay_listed():
    board = leaderboard(EXAMPLE, rounds=20, exclude={"a2"})
    by = {e["system"]: e for e in board["systems"]}
    # Without a2's ranking (C first): A 2.5 / 3, B 0.5 / 3, C 0
    assert by["A"]["win1"] == approx(2.5 / 3) and by["C"]["win1"] == 0.0
    assert board["n_annotations"] == 3 and board["n_annotators"] == 2
    listed = {a["annotator"]: a["excluded"] for a in board["annotators"]}
    assert listed == {"a1": False, "a2": True, "a3": False}


def test_rounds_zero_skips_the_bootstrap():
    board = leaderboard(EXAMPLE, rounds=0)
    assert all(e["win1_ci"] is None and e["rank_ci"] is None for e in board["systems"])
    assert board["systems"][0]["win1"] == 0.625


# ---------------------------------------------------------------------------------------------
# Degenerate and malformed data


def assert_defined(board):
    assert plain(board)
    json.dumps(board, allow_nan=False)


def test_no_annotations():
    board = leaderboard([], rounds=10)
    assert_defined(board)
    assert board["systems"] == [] and board["chance_win1"] is None
    assert board["agreement"]["krippendorff_alpha"] is None


def test_one_annotation():
    board = leaderboard([ann("p", "x", "A", "B")], rounds=10)
    assert_defined(board)
    by = {e["system"]: e for e in board["systems"]}
    assert by["A"]["win1"] == 1.0 and by["A"]["win1_ci"] == [1.0, 1.0]
    assert by["A"]["bt"] > 0 > by["B"]["bt"]  # finite thanks to the prior
    assert board["agreement"]["kendalls_w"]["mean"] is None
    assert board["agreement"]["top1_agreement"] is None
    assert board["pairwise"]["tests"][0]["p"] == 1.0  # one item cannot be significant


def test_one_system():
    board = leaderboard([ann("p", "x", "A"), ann("q", "y", "A")], rounds=10)
    assert_defined(board)
    (only,) = board["systems"]
    assert only["win1"] == 1.0 and only["bt"] is None and only["bt_elo"] is None
    assert only["normalised_rank"] is None  # (a+b)/2 - 1 over k - 1 = 0 / 0
    assert board["pairwise"]["tests"] == [] and board["position_bias"]["p"] is None


def test_a_system_never_shown():
    board = leaderboard([ann("p", "x", "A", "B")], ["A", "B", "Z"], rounds=10)
    assert_defined(board)
    z = board["systems"][-1]
    assert z["system"] == "Z" and z["n"] == 0
    assert all(z[k] is None for k in ("win1", "win1_ci", "mean_rank", "bt", "bt_elo", "rank",
                                      "rank_ci", "group"))
    assert all(v is None for v in z["win_at"].values())


def test_all_ties():
    data = [ann("p", "x", "ABC"), ann("p", "y", "ABC"), ann("q", "x", "ABC")]
    for unit in ("annotation", "item"):
        board = leaderboard(data, unit=unit, rounds=10)
        assert_defined(board)
        assert [e["win1"] for e in board["systems"]] == [approx(1 / 3)] * 3
        assert [e["strict_win1"] for e in board["systems"]] == [0.0] * 3
        assert [e["bt"] for e in board["systems"]] == [approx(0, 1e-9)] * 3
        assert [e["rank"] for e in board["systems"]] == [1, 1, 1]
        assert board["agreement"]["kendalls_w"]["mean"] is None
        assert board["agreement"]["krippendorff_alpha"] is None


def test_disconnected_comparison_graph():
    data = [ann("p", "x", "A", "B"), ann("q", "x", "C", "D"), ann("q", "y", "D", "C")]
    board = leaderboard(data, rounds=20)
    assert_defined(board)
    assert board["pairwise"]["connected"] is False and board["pairwise"]["components"] == 2
    by = {e["system"]: e for e in board["systems"]}
    assert by["A"]["bt"] == approx(-by["B"]["bt"], 1e-9)  # each part centred on its own
    assert by["C"]["bt"] == approx(0, 1e-9)


@pytest.mark.parametrize("bad, message", [
    (ann("p", "x", "A", "A"), "twice"),
    (ann("p", "x", "A", ""), "empty"),
    (Annotation("p", "x", ()), "empty"),
    (ann("p", "x", "A", "B", display="AC"), "display order"),
    (ann("p", "x", "A", "B", display="AAB"), "display order"),
])
def test_malformed_rankings_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        leaderboard([bad], ["A", "B", "C"], rounds=0)


def test_unknown_system_and_unit_are_rejected():
    with pytest.raises(ValueError, match="unknown system 'Q'"):
        win1([ann("p", "x", "A", "Q")], ["A", "B"])
    with pytest.raises(ValueError, match="unit"):
        leaderboard(EXAMPLE, unit="annotator")


def test_from_record_reads_the_import_format():
    record = json.loads('{"item_id": "p1", "annotator": "a1", "criterion": "overall", '
                        '"ranking": [["sysA"], ["sysC", "sysD"], ["sysB"]], '
                        '"display_order": ["sysB", "sysA", "sysC", "sysD"], "seconds": 41.5}')
    got = Annotation.from_record(record)
    assert got == Annotation("p1", "a1", (("sysA",), ("sysC", "sysD"), ("sysB",)),
                             ("sysB", "sysA", "sysC", "sysD"), 41.5)


# ---------------------------------------------------------------------------------------------
# Properties

NAMES = ["s0", "s1", "s2", "s3", "s4"]


@st.composite
def rankings(draw, systems, everyone=False):
    shown = list(systems) if everyone else draw(
        st.lists(st.sampled_from(systems), min_size=1, max_size=len(systems), unique=True))
    order = draw(st.permutations(shown))
    groups = [[order[0]]]
    for name in order[1:]:
        if draw(st.booleans()) and draw(st.booleans()):  # a tie one time in four
            groups[-1].append(name)
        else:
            groups.append([name])
    display = draw(st.one_of(st.none(), st.permutations(shown)))
    return Annotation(
        item=draw(st.sampled_from(["p1", "p2", "p3", "p4"])),
        annotator=draw(st.sampled_from(["a1", "a2", "a3"])),
        ranking=tuple(tuple(g) for g in groups),
        display_order=None if display is None else tuple(display),
        seconds=draw(st.one_of(st.none(), st.floats(1, 100))),
    )


@st.composite
def studies(draw, everyone=False, min_size=1):
    systems = NAMES[:draw(st.integers(1, len(NAMES)))]
    data = draw(st.lists(rankings(systems, everyone), min_size=min_size, max_size=10))
    return systems, data


FIELDS = ("n", "win1", "win1_ci", "strict_win1", "strict_win1_ci", "win_at", "win_at_ci",
          "mean_rank", "mean_rank_ci", "normalised_rank", "bt", "bt_ci", "pl", "pl_ci", "rank",
          "rank_ci", "chance_win1")


def close(a, b, tol=1e-6):
    """Equal up to tol, through the nested lists and dicts of a leaderboard entry."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, str):
        return a == b
    return abs(a - b) <= tol


@settings(max_examples=40, deadline=None)
@given(studies(), st.permutations(range(len(NAMES))), st.sampled_from(["annotation", "item"]))
def test_relabelling_systems_permutes_the_results(study, perm, unit):
    systems, data = study
    # New names sort in a different order, so the internal order really changes.
    rename = {s: f"t{perm[i]}" for i, s in enumerate(systems)}
    relabelled = [Annotation(a.item, a.annotator,
                             tuple(tuple(rename[s] for s in g) for g in a.ranking),
                             None if a.display_order is None else
                             tuple(rename[s] for s in a.display_order), a.seconds)
                  for a in data]
    before = leaderboard(data, unit=unit, rounds=30, seed=5)
    after = leaderboard(relabelled, unit=unit, rounds=30, seed=5)
    after_by = {e["system"]: e for e in after["systems"]}
    for entry in before["systems"]:
        other = after_by[rename[entry["system"]]]
        for key in FIELDS:
            assert close(other[key], entry[key]), key
    p_before = {frozenset((rename[t["a"]], rename[t["b"]])): t["p_holm"]
                for t in before["pairwise"]["tests"]}
    assert p_before == {frozenset((t["a"], t["b"])): t["p_holm"]
                        for t in after["pairwise"]["tests"]}
    assert sorted(sorted(rename[s] for s in g) for g in before["pairwise"]["groups"]) == \
        sorted(sorted(g) for g in after["pairwise"]["groups"])
    assert close(before["agreement"], after["agreement"], 1e-12)
    assert close(before["position_bias"], after["position_bias"], 1e-12)


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


@settings(max_examples=40, deadline=None)
@given(studies(min_size=0), st.data(), st.sampled_from(["annotation", "item"]))
def test_adding_a_ranking_changes_n_by_at_most_one(study, data, unit):
    systems, rows = study
    extra = data.draw(rankings(systems))
    n_before = {e["system"]: e["n"] for e in leaderboard(rows, systems, unit=unit,
                                                          rounds=0)["systems"]}
    n_after = {e["system"]: e["n"] for e in leaderboard(rows + [extra], systems, unit=unit,
                                                         rounds=0)["systems"]}
    shown = {s for g in extra.ranking for s in g}
    for s in systems:
        assert 0 <= n_after[s] - n_before[s] <= 1
        if unit == "annotation":
            assert n_after[s] - n_before[s] == (s in shown)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 5), st.data())
def test_bradley_terry_agrees_with_choix(k, data):
    wins = np.array(data.draw(st.lists(
        st.lists(st.integers(0, 12), min_size=k, max_size=k), min_size=k, max_size=k)),
        float) / 2  # halves: ties count half a win each way
    np.fill_diagonal(wins, 0)
    alpha = data.draw(st.sampled_from([0.01, 0.1, 1.0]))
    # choix takes single outcomes: double every count so halves become whole comparisons, which
    # doubles the likelihood, so the prior doubles too.
    pairs = [(s, t) for s in range(k) for t in range(k) for _ in range(int(wins[s, t] * 2))]
    ours = bradley_terry(wins, alpha)
    compared = (wins + wins.T).sum(1) > 0
    if not pairs:
        assert np.isnan(ours).all()
        return
    theirs = choix.opt_pairwise(k, pairs, alpha=2 * alpha, tol=1e-12)
    assert ours[compared] == pytest.approx(theirs[compared], abs=1e-5)
    assert np.isnan(ours[~compared]).all()


def test_plackett_luce_agrees_with_choix_without_ties():
    rng = np.random.default_rng(9)
    theta = np.array([0.8, 0.1, -0.2, -0.7])
    data = simulate_pl(theta, n_items=60, per_item=1, rng=rng)
    ours = plackett_luce(data, alpha=0.05)
    index = {f"s{i}": i for i in range(4)}
    rank_data = [[index[g[0]] for g in a.ranking] for a in data]
    theirs = choix.opt_rankings(4, rank_data, alpha=0.05, tol=1e-12)
    assert [ours[f"s{i}"] for i in range(4)] == pytest.approx(theirs - theirs.mean(), abs=1e-5)
