"""The stop signal (annotations.metrics.sequential): under continuous monitoring the betting
confidence sequence keeps its false-positive rate and its coverage, and stops when there is
an effect; the forecast's range contains what continuations then needed."""

import numpy as np
import pytest

from annotations.metrics import (
    Annotation,
    confidence_sequence,
    expected_win1,
    forecast,
    pair_differences,
    rejects,
    worths_for_win1,
)
from annotations.metrics.simulate import _annotator_of, _draw, _screen_matrix, _top_credit

ALPHA = 0.05


def item_diffs(w, n_seqs, n_items, per_item=3, tie_rate=0.1, seed=0):
    """(n_seqs, n_items) per-item Win@1 differences of s0 and s1 drawn from the model."""
    w = np.asarray(w, np.float64)
    rng = np.random.default_rng(seed)
    screens = _screen_matrix(len(w), len(w), n_items * per_item, seed)
    annotator = _annotator_of(n_items, per_item, 20)
    ranked, merged = _draw(rng, w, screens, np.ones((n_seqs, 20)), annotator,
                           np.zeros(len(w)), tie_rate)
    credit = _top_credit(ranked, merged, len(w)).reshape(n_seqs, n_items, per_item, len(w))
    return (credit[..., 0] - credit[..., 1]).mean(2)


def test_false_positive_rate_under_the_null_with_a_look_after_every_item():
    d = item_diffs(np.zeros(6), 500, 500, seed=1)  # two (indeed six) equal systems
    fired = rejects(d, alpha=ALPHA).any(1)  # at any of the 500 looks
    # Ville's bound is alpha; observed about 1.4 %. Binomial SE at 5 % over 500 is 1 %.
    assert fired.mean() <= ALPHA


def test_coverage_holds_uniformly_over_time():
    for target, seed in (([0.443, 0.163], 2), ([0.3, 0.25], 3)):
        w = worths_for_win1(target, 6, n_systems=6, tie_rate=0.1)
        true = np.diff(expected_win1(w, 6, tie_rate=0.1)[1::-1])[0]  # s0 - s1
        d = item_diffs(w, 500, 500, seed=seed)
        missed = rejects(d, true, alpha=ALPHA).any(1)  # truth outside the CS at some time
        assert missed.mean() <= ALPHA


def test_it_stops_under_the_empathy_effect():
    w = worths_for_win1([0.443, 0.163], 6, n_systems=6, tie_rate=0.1)
    stop = rejects(item_diffs(w, 300, 300, seed=4), alpha=ALPHA)
    assert stop[:, -1].all()  # every sequence separated within 300 items
    assert np.median(np.argmax(stop, 1) + 1) < 60  # typically after about 30 items


def test_confidence_sequence_bounds_shrink_and_hold_the_mean():
    w = worths_for_win1([0.443, 0.163], 6, n_systems=6, tie_rate=0.1)
    d = item_diffs(w, 1, 200, seed=5)[0]
    cs = confidence_sequence(d)
    lo, hi, mean = map(np.array, (cs["lower"], cs["upper"], cs["mean"]))
    assert (lo <= mean + 1e-9).all() and (mean <= hi + 1e-9).all()
    assert (np.diff(lo) >= 0).all() and (np.diff(hi) <= 0).all()
    assert hi[-1] - lo[-1] < 0.35
    assert cs["stopped_at"] == int(np.argmax(lo > 0)) + 1  # stop = 0 left the sequence
    assert "Waudby-Smith" in cs["method"]


def test_forecast_range_holds_the_items_actually_needed():
    # A modest effect: separation needs about 115 items (5-95 %: 47-213).
    w = worths_for_win1([0.33, 0.22], 6, n_systems=6, tie_rate=0.1)
    d = item_diffs(w, 40, 2000, seed=6)
    stop = rejects(d, alpha=ALPHA)
    inside = total = 0
    for row, s in zip(d, stop):
        assert not s[29] and s.any()
        f = forecast(row[:30], per_item=3, seconds_per_screen=120, n_sims=200, seed=1)
        lo, hi = f["more_items_range"]  # hi None: "more than max_more"
        actual = int(np.argmax(s)) + 1 - 30
        total += 1
        inside += lo <= actual <= (np.inf if hi is None else hi)
    # A 95 % range forecast from only 30 items; checked at 85 %.
    assert inside / total >= 0.85


def test_forecast_says_it_in_rankings_and_hours():
    d = np.array([1, 0, 1, -1, 1, 0, 1, 0, 0, 1, -1, 1, 0, 1, 0.5, 0, 1, -0.5, 1, 0])
    f = forecast(d, per_item=3, seconds_per_screen=120, seed=0)
    assert f["more_items"] is not None and f["more_items"] > 0
    assert f["rankings"] == 3 * f["more_items"]
    assert f["hours"] == pytest.approx(f["rankings"] * 120 / 3600)
    lo, hi = f["more_items_range"]
    assert lo <= f["more_items"] <= (hi or np.inf)
    assert forecast(np.ones(40))["more_items"] == 0  # already separated


def test_pair_differences_per_item():
    data = [
        Annotation("p1", "x", (("A",), ("B",), ("C",))),
        Annotation("p1", "y", (("A", "B"), ("C",))),
        Annotation("p2", "x", (("C",), ("B",), ("A",))),
        Annotation("p3", "x", (("A",), ("C",))),  # B not shown: item left out
    ]
    assert pair_differences(data, "A", "B") == pytest.approx([0.5, 0.0])
