"""The designer (annotations.metrics.design): its closed-form analysis is the leaderboard's
verdict, and its predicted chance of separating #1 from #2 matches independently simulated
studies analysed by the real `leaderboard()`."""

import time

import numpy as np
import pytest

from annotations.metrics import (
    design_grid,
    fast_verdict,
    leaderboard,
    simulate_study,
    simulate_verdicts,
    worths_for_win1,
)

EMPATHY = [0.443, 0.163]


def board_verdict(board):
    order = [e["system"] for e in board["systems"]]
    test = next(t for t in board["pairwise"]["tests"] if (t["a"], t["b"]) == tuple(order[:2]))
    return order[0], order[1], test["p_holm"], test["separable"]


@pytest.mark.parametrize("k", [6, 4])
def test_fast_verdict_is_the_leaderboards_verdict(k):
    w = worths_for_win1([0.4, 0.2] if k == 6 else [0.45, 0.3], k, n_systems=6, tie_rate=0.1)
    separated = 0
    for seed in range(20):
        data = simulate_study(w, 30, 3, k=k, tie_rate=0.15, reliability_sd=0.5, seed=seed)
        fast = fast_verdict(data)
        first, second, p_holm, sep = board_verdict(leaderboard(data, rounds=0))
        assert (fast["first"], fast["second"]) == (first, second)
        assert fast["p_holm"] == pytest.approx(p_holm, abs=1e-12)
        assert fast["separated"] == sep
        separated += sep
    assert 0 < separated < 20  # both verdicts occur, so the comparison means something


def test_cluster_robust_width_matches_the_bootstrap_interval():
    w = worths_for_win1(EMPATHY, 6, n_systems=6, tie_rate=0.1)
    ratios = []
    for seed in range(6):
        data = simulate_study(w, 60, 3, tie_rate=0.1, seed=seed)
        se = fast_verdict(data)["win1_se"]["s0"]
        lo, hi = next(e for e in leaderboard(data, rounds=400, seed=seed)["systems"]
                      if e["system"] == "s0")["win1_ci"]
        ratios.append(2 * 1.959964 * se / (hi - lo))
    # Percentile bootstrap widths scatter about 5-10 % round to round at 400 rounds.
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.1)
    assert all(0.8 < r < 1.25 for r in ratios)


def test_predicted_chance_matches_studies_analysed_by_the_leaderboard():
    # A cell in the middle of the curve (p near 0.6), where disagreement would show.
    w = worths_for_win1(EMPATHY, 6, n_systems=6, tie_rate=0.1)
    n_items, per_item = 25, 5
    predicted = simulate_verdicts(w, n_items, per_item, tie_rate=0.1, reliability_sd=0.5,
                                  n_studies=400, seed=11)
    p_pred = float(((predicted["first"] == 0) & predicted["separated"]).mean())
    hits = 0
    n_real = 100
    for seed in range(n_real):
        data = simulate_study(w, n_items, per_item, tie_rate=0.1, reliability_sd=0.5,
                              seed=1000 + seed)
        first, _, _, sep = board_verdict(leaderboard(data, rounds=20, seed=seed))
        hits += first == "s0" and sep
    # Monte Carlo SE of the difference: sqrt(p(1-p)(1/400 + 1/100)) <= 0.056; band 0.15.
    assert 0.3 < p_pred < 0.9
    assert hits / n_real == pytest.approx(p_pred, abs=0.15)


def test_designer_grid_is_fast_and_recommends_the_cheapest_cell_reaching_the_target():
    start = time.perf_counter()
    grid = design_grid(EMPATHY, 6, 6, tie_rate=0.1, reliability_sd=0.5,
                       seconds_per_screen=120, n_studies=200)
    elapsed = time.perf_counter() - start
    assert elapsed < 10  # about 1 s alone; generous for shared CPUs
    cells = grid["cells"]
    assert len(cells) == 16
    rec = grid["recommended"]
    assert rec["p_separated"] >= 0.8
    assert all(c["rankings"] >= rec["rankings"] for c in cells if c["p_separated"] >= 0.8)
    assert rec["hours"] == pytest.approx(rec["rankings"] * 120 / 3600)
    # More items tighten the interval and raise the chance, at any r.
    by = {(c["items"], c["per_item"]): c for c in cells}
    for r in (1, 3, 5, 10):
        widths = [by[n, r]["ci_width"] for n in (25, 50, 100, 200)]
        assert widths == sorted(widths, reverse=True)
    # At an equal budget, more items with fewer annotations each wins (design.md §1).
    assert by[100, 1]["p_separated"] >= by[25, 3]["p_separated"]
    assert by[50, 10]["p_separated"] <= by[200, 3]["p_separated"]


def test_no_cell_reaching_the_target_recommends_none():
    grid = design_grid([0.2, 0.19], 6, 6, items=(10,), per_item=(1, 2), n_studies=50)
    assert grid["recommended"] is None
    assert all(0 <= c["p_separated"] <= 1 for c in grid["cells"])
