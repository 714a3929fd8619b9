"""Significance (annotations.metrics.significance): Holm's step-down, the exact sign test, the
compact letter display, and the leaderboard's pairwise tests on a clear winner."""

import numpy as np
import pytest

from annotations.metrics import holm, leaderboard, sign_test, significance_groups
from tests.annotations.metrics.helpers import ann, approx


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
