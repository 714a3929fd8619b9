"""Ties as data (annotations.metrics.ties): the Plackett-Luce model with tie parameters recovers
known parameters from rankings drawn from it, maximises the likelihood written out by hand,
agrees with the plain Plackett-Luce fit when there are no ties, and is fast enough for a page."""

import time
from itertools import combinations

import numpy as np
import pytest
from scipy.optimize import minimize

from annotations.metrics import plackett_luce, plackett_luce_ties, simulate_pl_ties
from annotations.metrics.fits import _plackett_luce_fit
from annotations.metrics.tables import _encode
from annotations.metrics.features import _choice_stages

from .helpers import ann

TRUE_W = np.array([0.8, 0.3, 0.0, -0.2, -0.4, -0.5])
TRUE_W = TRUE_W - TRUE_W.mean()


def test_recovers_worths_and_tie_parameters():
    data = simulate_pl_ties(TRUE_W, {2: 0.6, 3: 0.25}, 10_000, seed=1)
    got = plackett_luce_ties(data)
    assert got["converged"] and got["tie_orders"] == [2, 3]
    worth, se = np.array(got["worth"]), np.array(got["worth_se"])
    # Seed 1: largest error 0.027 (1.6 standard errors); SE about 0.017.
    assert np.abs(worth - TRUE_W).max() < 0.05
    assert np.all(np.abs(worth - TRUE_W) < 3.5 * se)
    assert 0.012 < se.min() and se.max() < 0.025
    for order, truth in ((2, 0.6), (3, 0.25)):
        log_err = np.log(got["tie_parameters"][str(order)] / truth)
        # Seed 1: delta_2 0.592 (log error -0.013), delta_3 0.250 (0.0003).
        assert abs(log_err) < 3.5 * got["log_tie_se"][str(order)]
        assert abs(log_err) < 0.06
    assert got["tie_share_equal"]["2"] == pytest.approx(got["tie_parameters"]["2"] /
                                                        (2 + got["tie_parameters"]["2"]))


def test_recovers_parameters_with_subsets_of_systems_on_screen():
    # 8 systems, 4 per screen, ties of order 2 only: every ranking is partial.
    w = np.linspace(0.6, -0.6, 8)
    data = simulate_pl_ties(w, {2: 0.4}, 8_000, k=4, seed=2)
    got = plackett_luce_ties(data)
    worth, se = np.array(got["worth"]), np.array(got["worth_se"])
    assert got["tie_orders"] == [2]
    assert np.all(np.abs(worth - w) < 3.5 * se)
    assert abs(np.log(got["tie_parameters"]["2"] / 0.4)) < 3.5 * got["log_tie_se"]["2"]


def _loglik_by_hand(rankings, names, theta, log_delta, orders, npseudo):
    """The R package's likelihood written out ranking by ranking, with its pseudo-rankings."""
    delta = {1: 1.0, **{d: np.exp(v) for d, v in zip(orders, log_delta)}}
    w = dict(zip(names, theta))
    total = 0.0

    def f(group):
        return delta[len(group)] * np.exp(np.mean([w[s] for s in group]))

    def choice(group, left):
        den = sum(f(c) for d in delta if d <= len(left) for c in combinations(left, d))
        return np.log(f(group) / den)

    for ranking in rankings:
        left = [s for g in ranking for s in g]
        for group in ranking:
            if len(left) > 1:
                total += choice(group, left)
            left = [s for s in left if s not in group]
    w["ghost"] = 0.0
    for s in names:
        total += npseudo * (choice((s,), [s, "ghost"]) + choice(("ghost",), [s, "ghost"]))
    return total


def test_maximises_the_likelihood_written_by_hand():
    data = [
        ann("p1", "a", "A", "BC", "D"),
        ann("p2", "a", "B", "A", "CD"),
        ann("p3", "b", "ABC", "D"),
        ann("p4", "b", "D", "A"),
        ann("p5", "c", "C", "B", "A"),
        ann("p6", "c", "AB", "C"),
    ]
    names = ["A", "B", "C", "D"]
    got = plackett_luce_ties(data)
    assert got["tie_orders"] == [2, 3]
    rankings = [a.ranking for a in data]

    def neg(par):
        return -_loglik_by_hand(rankings, names, par[:4], par[4:], [2, 3], 0.5)

    best = minimize(neg, np.zeros(6), method="BFGS", options={"gtol": 1e-10})
    theta = best.x[:4] - best.x[:4].mean()
    assert np.array(got["worth"]) == pytest.approx(theta, abs=1e-5)
    assert got["tie_parameters"]["2"] == pytest.approx(np.exp(best.x[4]), rel=1e-4)
    assert got["tie_parameters"]["3"] == pytest.approx(np.exp(best.x[5]), rel=1e-4)


def test_without_ties_it_is_plain_plackett_luce():
    data = simulate_pl_ties(TRUE_W, {}, 5_000, k=4, seed=3)
    got = plackett_luce_ties(data, npseudo=0)
    assert got["tie_orders"] == [] and got["tie_parameters"] == {}
    # Same maximum-likelihood fit as fits.py without its prior...
    t = _encode(data, None)
    chooses, rows, set_idx, sets = _choice_stages(t)
    mle = _plackett_luce_fit(chooses.sum(0)[None].astype(float), sets,
                             np.bincount(set_idx, minlength=len(sets))[None].astype(float), 0.0)
    assert np.array(got["worth"]) == pytest.approx(mle[0], abs=1e-6)
    # ...and within the priors' small shrinkage of the leaderboard's Plackett-Luce score.
    with_prior = plackett_luce_ties(data)
    pl = plackett_luce(data)
    assert np.array(with_prior["worth"]) == pytest.approx([pl[s] for s in t.systems], abs=0.01)


def test_a_system_that_always_wins_stays_finite_and_unshown_is_none():
    data = [ann(f"p{i}", "a", "A", "B", "C") for i in range(20)]
    data += [ann("q", "a", "BC", "A")]
    got = plackett_luce_ties(data, ["A", "B", "C", "D"])
    assert got["worth"][3] is None and got["worth_se"][3] is None
    assert all(np.isfinite(got["worth"][:3]))
    assert got["worth"][0] > got["worth"][1] > got["worth"][2]


def test_fast_enough_for_the_leaderboard():
    data = simulate_pl_ties(TRUE_W, {2: 0.6, 3: 0.25}, 10_000, seed=4)
    t0 = time.perf_counter()
    plackett_luce_ties(data)
    assert time.perf_counter() - t0 < 1.0  # about 0.1 s here
