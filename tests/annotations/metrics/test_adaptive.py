"""Adaptive allocation (annotations.metrics.adaptive, design.md §4): at equal numbers of
rankings the #1-#2 interval narrows against uniform screens, every interval still covers the
uniform-design Win@1 93-97 % of the time, no system falls below its floor share, the selection
probabilities are exact, and choosing a screen at 20 systems costs well under 5 ms."""

import time
from math import comb

import numpy as np
import pytest

from annotations.metrics import (
    AdaptiveState,
    choose_screen,
    expected_win1,
    ipw_win1,
    record,
    screen_probabilities,
    simulate_adaptive,
    system_names,
    win1,
    worths_for_win1,
)
from annotations.metrics.adaptive import _subsets
from tests.annotations.metrics.helpers import ann

K, k, T = 8, 3, 600  # 8 systems, 3 per screen, 600 rankings per study
TIE = 0.1
FLOOR = 0.1  # each system on >= 10 % of screens (uniform gives k/K = 37.5 %)
STUDIES = 1000
Z = 1.959963984540054
# A clear #1-#2 question (60 % vs 45 % Win@1) with six others not far behind (26.9 % each).
W = worths_for_win1([0.6, 0.45], k, n_systems=K, tie_rate=TIE)
TRUTH = expected_win1(W, k, tie_rate=TIE)  # Win@1 under uniformly random 3-subsets


@pytest.fixture(scope="module")
def runs():
    return {
        "adaptive": simulate_adaptive(W, T, k, floor=FLOOR, tie_rate=TIE, n_studies=STUDIES,
                                      seed=11),
        "uniform": simulate_adaptive(W, T, k, floor=FLOOR, tie_rate=TIE, n_studies=STUDIES,
                                     adaptive=False, seed=12),
    }


def diff_interval(run):
    d = run["win1"][:, 0] - run["win1"][:, 1]
    c = run["cov"]
    se = np.sqrt(c[:, 0, 0] + c[:, 1, 1] - 2 * c[:, 0, 1])
    return d, se


def test_the_question_interval_narrows_against_uniform_at_equal_rankings(runs):
    _, se_a = diff_interval(runs["adaptive"])
    _, se_u = diff_interval(runs["uniform"])
    ratio = se_a.mean() / se_u.mean()
    print(f"\n#1-#2 interval width: adaptive {2 * Z * se_a.mean():.4f}, uniform "
          f"{2 * Z * se_u.mean():.4f}, ratio {ratio:.3f} ({1 - ratio:.1%} narrower)")
    # Observed 0.87 (13 % narrower) at 600 rankings; Neyman's asymptotic optimum with this
    # floor is 0.815 (0.835 seen with the pair known in advance).
    assert ratio < 0.92
    d_a, _ = diff_interval(runs["adaptive"])
    d_u, _ = diff_interval(runs["uniform"])
    assert d_a.std() / d_u.std() < 0.92  # the spread of the estimates narrows too, not just SEs


def test_every_interval_covers_the_uniform_design_win1_93_to_97_percent(runs):
    # 1000 studies: Monte Carlo SE of one coverage near 95 % is 0.69 points, so single
    # intervals are held to 93-97 % widened by two SEs (91.6-98.4 %), their pooled rate to 93-97.
    mc = np.sqrt(0.95 * 0.05 / STUDIES)
    for name, run in runs.items():
        hit = (run["lower"] <= TRUTH) & (TRUTH <= run["upper"])  # (S, K) score intervals
        d, se = diff_interval(run)
        hit_d = np.abs(d - (TRUTH[0] - TRUTH[1])) <= Z * se
        per = np.append(hit.mean(0), hit_d.mean())
        print(f"\n{name}: coverage per system {np.round(per[:-1], 3)}, #1-#2 difference "
              f"{per[-1]:.3f}, pooled {per.mean():.3f} ({STUDIES} studies, MC SE {mc:.4f})")
        assert 0.93 <= per.mean() <= 0.97
        assert ((per >= 0.93 - 2 * mc) & (per <= 0.97 + 2 * mc)).all()


def test_weighting_removes_the_bias_that_adaptive_sampling_puts_into_plain_averages(runs):
    run = runs["adaptive"]
    mc = run["win1"].std(0) / np.sqrt(STUDIES)
    bias = run["win1"].mean(0) - TRUTH
    naive = np.nanmean(run["naive"], 0) - TRUTH
    print(f"\nIPW bias {np.round(bias, 4)}; plain credit/shown bias {np.round(naive, 4)}")
    assert (np.abs(bias) < 4 * mc).all()
    assert (naive[2:] < -0.02).all()  # the others meet #1 and #2 more often: plain is low


def test_no_system_falls_below_its_floor_share(runs):
    run = runs["adaptive"]
    print(f"\nsmallest share of screens {run['share'].min():.3f} (floor {FLOOR}); largest "
          f"weight {run['max_weight'].max():.3f} (bound {k / (FLOOR * K):.3f})")
    assert run["share"].min() >= FLOOR
    assert run["max_weight"].max() <= k / (FLOOR * K) + 1e-9
    # Where the floor binds: 2 per screen (uniform share 25 %), floor 20 %, one clear pair.
    w = worths_for_win1([0.8, 0.6], 2, n_systems=K)
    tight = simulate_adaptive(w, 300, 2, floor=0.2, n_studies=200, seed=13)
    fewest = int(np.rint(tight["share"] * 300).min())
    print(f"binding floor 0.2: fewest screens of a system {fewest} of 300 (floor 60) over 200 "
          "studies")
    assert fewest >= 60 - 1  # at most one screen short, from a rare uniform draw


def test_the_returned_probability_is_exactly_the_sampling_distribution():
    names = system_names(6)
    state = AdaptiveState(names)
    rng = np.random.default_rng(3)
    for i in range(60):  # a study under way, s0 ahead of s1
        screen, p = choose_screen(state, 3, floor=0.1, rng=rng)
        order = sorted(screen, key=names.index)
        record(state, screen, [[order[0]], order[1:]] if i % 3 else [order], p)
    dist = screen_probabilities(state, 3, floor=0.1)
    assert len(dist) == comb(6, 3) and abs(sum(dist.values()) - 1) < 1e-12
    assert min(dist.values()) >= 0.1 * 6 / 3 / comb(6, 3) - 1e-15
    for name in names:  # each system on the screen with probability >= floor
        assert sum(p for s, p in dist.items() if name in s) >= 0.1 - 1e-12
    draws = {}
    before = state.to_dict()
    for _ in range(8000):
        screen, p = choose_screen(state, 3, floor=0.1, rng=rng)
        key = tuple(sorted(screen, key=names.index))
        assert p == dist[key]
        draws[key] = draws.get(key, 0) + 1
    assert state.to_dict() == before  # choosing does not change the state
    freq = np.array([draws.get(s, 0) / 8000 for s in dist])
    prob = np.array(list(dist.values()))
    assert (np.abs(freq - prob) <= 5 * np.sqrt(prob * (1 - prob) / 8000) + 1e-4).all()


def test_uniform_screens_give_the_leaderboards_win1_and_the_state_round_trips():
    names = list("ABCDE")
    rng = np.random.default_rng(4)
    state = AdaptiveState(names)
    anns = []
    for i in range(200):
        shown = [names[j] for j in rng.choice(5, 3, replace=False)]
        groups = [[shown[0], shown[1]], [shown[2]]] if i % 4 == 0 else [[s] for s in shown]
        record(state, shown, groups, 1 / comb(5, 3))
        anns.append(ann(f"i{i}", "a1", *groups))
    out = ipw_win1(state)
    plain = win1(anns, names)
    for row in out["systems"]:
        assert row["win1"] == pytest.approx(plain[row["system"]], abs=1e-12)
        assert row["lower"] <= row["win1"] <= row["upper"]
    assert out["difference"]["a"] == out["systems"][0]["system"]
    assert AdaptiveState.from_dict(state.to_dict()).to_dict() == state.to_dict()


def test_choosing_a_screen_at_20_systems_is_well_under_5_ms():
    names = system_names(20)
    state = AdaptiveState(names)
    rng = np.random.default_rng(5)
    w = np.linspace(1, -1, 20)
    _subsets(20, 4)  # the subset table is built once per (K, k) and cached
    times = []
    for _ in range(400):
        t0 = time.perf_counter()
        screen, p = choose_screen(state, 4, floor=0.05, rng=rng)
        times.append(time.perf_counter() - t0)
        idx = [names.index(s) for s in screen]
        order = np.argsort(-(w[idx] + rng.gumbel(size=4)))
        record(state, screen, [[screen[j]] for j in order], p)
    p95 = np.quantile(times[50:], 0.95) * 1000
    print(f"\nchoose_screen at K=20, k=4 (C=4845): p95 {p95:.2f} ms, median "
          f"{np.median(times[50:]) * 1000:.2f} ms")
    assert p95 < 20  # generous for a loaded CI machine; the bench holds it to 5 ms


def test_malformed_input_raises():
    state = AdaptiveState(list("ABCD"))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        choose_screen(state, 2, floor=0.6, rng=rng)  # above k/K
    with pytest.raises(ValueError):
        choose_screen(state, 2, floor=0.0, rng=rng)
    with pytest.raises(ValueError):
        choose_screen(state, 4, floor=0.1, rng=rng)  # k = K: nothing to choose
    with pytest.raises(ValueError):
        record(state, ["A", "B"], [["A"], ["C"]], 0.5)
    with pytest.raises(ValueError):
        record(state, ["A", "B"], [["A"], ["B"]], 0.0)
    with pytest.raises(ValueError):
        AdaptiveState(["A", "A"])
