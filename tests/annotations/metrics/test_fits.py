"""Bradley-Terry and Plackett-Luce (annotations.metrics.fits): closed forms, the prior, batched
fits, Breslow ties written out by hand, and agreement with choix."""

import math

import choix
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from annotations.metrics import bradley_terry, plackett_luce, to_elo
from tests.annotations.metrics.helpers import ann, approx, random_study, simulate_pl


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


# ---------------------------------------------------------------------------------------------
# Agreement with choix


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
