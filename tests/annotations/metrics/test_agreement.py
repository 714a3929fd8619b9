"""Agreement and annotator quality (annotations.metrics.agreement): Kendall's W, Krippendorff's
alpha against the published example and the definition, top-1 agreement, leave-one-out."""

import numpy as np

from annotations.metrics import (
    annotator_quality,
    kendalls_w,
    krippendorff_alpha_ordinal,
    ranking_alpha,
    top1_agreement,
)
from tests.annotations.metrics.helpers import EXAMPLE, ann, approx


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
