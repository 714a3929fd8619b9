"""The bootstrap over items (annotations.metrics.bootstrap): rounds equal refitting, batching,
cluster resampling, reproducibility, and coverage of a known truth by simulation."""

from unittest import mock

import numpy as np
import pytest

from annotations.metrics import (
    Annotation,
    bootstrap,
    bootstrap_counts,
    bootstrap_statistics,
    bradley_terry,
    leaderboard,
    pairwise_wins,
    to_elo,
    win1,
)
from tests.annotations.metrics.helpers import EXAMPLE, ann, approx, random_study, simulate_pl


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
    with mock.patch.object(bootstrap, "bradley_terry", wraps=bootstrap.bradley_terry) as bt:
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
# Exactness of the batched product: the features are integers (each figure's column scaled by
# a common denominator) and so are the resample counts, so every round's totals are exact
# integers. The float32 product must give them to the last bit, as an integer product does.


def _scaled_features(data, unit="annotation"):
    from annotations.metrics.features import _features
    from annotations.metrics.tables import _table

    return _features(_table(data, None, unit))


def _integer_totals(x, rounds, seed):
    counts = bootstrap_counts(x.shape[0], rounds, seed)
    return (counts @ x.astype(np.int64)).astype(np.float64)


@pytest.mark.parametrize("unit", ["annotation", "item"])
def test_bootstrap_totals_are_the_exact_integer_totals(unit):
    x, lay, _ = _scaled_features(random_study(n_items=300, per_item=4), unit)
    assert np.array_equal(x, np.rint(x))  # the features are integers
    if unit == "annotation":  # multiples of 1/g for g = 1..4, and of 1/(2(k - 1)) for k = 4
        assert lay.share_scale == 12 and lay.norm_scale == 6
    totals = bootstrap._bootstrap_totals(x, 300, 5)
    assert np.array_equal(totals, _integer_totals(x, 300, 5))


def test_float32_blocks_stay_exact_and_fall_back_to_float64_when_a_block_is_drawn_often():
    # Shrink the float32 limit so that blocks are a few items and some rounds draw a block more
    # often than the limit allows: those blocks go through float64, every total stays exact.
    x, _, _ = _scaled_features(random_study(n_items=200, per_item=5))
    top = np.abs(x).max()
    with mock.patch.object(bootstrap, "_F32_EXACT", float(4 * top)), \
            mock.patch.object(bootstrap, "_exact_product",
                              wraps=bootstrap._exact_product) as product:
        totals = bootstrap._bootstrap_totals(x, 40, 1)
    assert product.called
    assert np.array_equal(totals, _integer_totals(x, 40, 1))


def test_float32_product_is_exact_where_a_plain_float32_product_is_not():
    # Large integer features (many rankings per item) push a one-shot float32 product past
    # 2^24, where it rounds; the blocked product must not.
    x = np.random.default_rng(0).integers(0, 3000, size=(20_000, 8)).astype(np.float64)
    exact = _integer_totals(x, 8, 2)
    naive = bootstrap_counts(20_000, 8, 2).astype(np.float32) @ x.astype(np.float32)
    assert exact.max() > 2**24 and not np.array_equal(naive.astype(np.float64), exact)
    assert np.array_equal(bootstrap._bootstrap_totals(x, 8, 2), exact)


def test_non_integer_features_take_the_float64_product():
    x = np.random.default_rng(1).random((50, 3))
    counts = bootstrap_counts(50, 20, 4)
    assert bootstrap._bootstrap_totals(x, 20, 4) == pytest.approx(counts @ x, rel=1e-15)


def test_resample_counts_follow_the_documented_draws():
    # The seeded counts are bincounts of rng.integers(0, n, size=(rounds, n)), whatever the
    # chunking: the same seed gives the same intervals as it always has.
    for n_items, rounds in ((7, 3), (25, 300), (1000, 5)):
        draws = np.random.default_rng(9).integers(0, n_items, size=(rounds, n_items))
        expect = np.stack([np.bincount(row, minlength=n_items) for row in draws])
        got = bootstrap_counts(n_items, rounds, 9)
        assert got.dtype == np.int64 and np.array_equal(got, expect)
        chunks = np.vstack(list(bootstrap._count_chunks(n_items, rounds, 9)))
        assert chunks.dtype == np.float32 and np.array_equal(chunks, expect)
