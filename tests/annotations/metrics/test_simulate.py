"""The generative model of design.md (annotations.metrics.simulate): worths solved from stated
Win@1 values, and simulated studies whose Win@1 matches them when the leaderboard reads them."""

import numpy as np
import pytest

from annotations.metrics import (
    expected_win1,
    leaderboard,
    simulate_study,
    win1,
    worths_for_win1,
)

EMPATHY = [0.443, 0.163]  # Empathy-R1: best 44.3 %, next 16.3 %, six systems


@pytest.mark.parametrize("k, tie_rate, sd", [(6, 0.0, 0.0), (6, 0.1, 0.0), (6, 0.1, 0.5),
                                             (4, 0.2, 0.3)])
def test_solved_worths_give_the_stated_win1(k, tie_rate, sd):
    target = [0.5, 0.25] if k == 4 else EMPATHY
    w = worths_for_win1(target, k, n_systems=6, tie_rate=tie_rate, reliability_sd=sd)
    got = expected_win1(w, k, tie_rate=tie_rate, reliability_sd=sd)
    rest = (6 / k - sum(target)) / 4  # the other four share what is left
    assert got == pytest.approx(target + [rest] * 4, abs=1e-7)
    assert w[0] > w[1] > w[2] and np.allclose(w[2:], w[2])


def test_without_ties_or_spread_worths_are_log_win1():
    w = worths_for_win1(EMPATHY, 6, n_systems=6)
    expected = np.log([0.443, 0.163] + [0.0985] * 4)
    assert w == pytest.approx(expected - expected.mean(), abs=1e-9)


def test_impossible_targets_are_refused():
    with pytest.raises(ValueError):
        worths_for_win1([0.9, 0.2], 6, n_systems=6)  # leaves a negative remainder
    with pytest.raises(ValueError):
        worths_for_win1([0.5, 0.5, 0.2], 3)  # all given, but they do not sum to 1


@pytest.mark.parametrize("k, tie_rate", [(6, 0.1), (4, 0.1)])
def test_simulated_win1_matches_the_target(k, tie_rate):
    target = EMPATHY if k == 6 else [0.5, 0.25]
    w = worths_for_win1(target, k, n_systems=6, tie_rate=tie_rate, reliability_sd=0.4)
    # Many annotators, so the study's own reliability draw averages out.
    data = simulate_study(w, 1500, 4, k=k, tie_rate=tie_rate, reliability_sd=0.4,
                          n_annotators=600, seed=3)
    got = win1(data)
    rest = (6 / k - sum(target)) / 4
    for name, want in zip(sorted(got), target + [rest] * 4):
        # SE of a Win@1 over 6000 rankings is below 0.0065 (binomial at 0.44); 3 SE.
        assert got[name] == pytest.approx(want, abs=0.02)


def test_a_simulated_study_reads_like_a_real_one():
    w = worths_for_win1(EMPATHY, 4, n_systems=6)
    data = simulate_study(w, 30, 3, k=4, tie_rate=0.3, seconds=90.0, seed=1)
    assert len(data) == 90
    for i in range(30):
        rows = [a for a in data if a.item == f"i{i}"]
        assert len({a.annotator for a in rows}) == 3  # distinct annotators per item
        for a in rows:
            assert len(a.display_order) == 4
            assert sorted(a.display_order) == sorted(n for g in a.ranking for n in g)
    assert any(len(g) > 1 for a in data for g in a.ranking)  # ties happen
    board = leaderboard(data, rounds=20)
    assert board["n_items"] == 30 and board["n_annotations"] == 90


def test_position_bias_favours_the_first_slot():
    data = simulate_study(np.zeros(6), 300, 2, position_bias=[1.0, 0, 0, 0, 0, 0], seed=2)
    first_in_slot1 = np.mean([a.ranking[0][0] == a.display_order[0] for a in data])
    # exp(1) / (exp(1) + 5) = 0.35 against a chance of 1/6; 600 rankings, SE 0.02.
    assert first_in_slot1 == pytest.approx(np.e / (np.e + 5), abs=0.06)
