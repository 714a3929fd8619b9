"""Encoding rankings (annotations.metrics.tables): the per-item unit, combine_per_item, reading
the import format, and the malformed input that must be rejected."""

import json

import pytest

from annotations.metrics import Annotation, combine_per_item, leaderboard, mean_rank, win1
from tests.annotations.metrics.helpers import EXAMPLE, ann


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
# Malformed data


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


def test_rankings_are_decoded_once_per_distinct_ranking_and_errors_name_the_first_bad_row():
    # Equal rankings share one decoding; an error still names the first row that holds it.
    good = [ann(f"p{i}", "x", "A", "B", display="BA") for i in range(3)]
    with pytest.raises(ValueError, match=r"ranking 3 \(item 'q'\) names a system twice"):
        leaderboard(good + [ann("q", "x", "B", "B")] * 2, rounds=0)
    with pytest.raises(ValueError, match=r"ranking 2 \(item 'p2'\): display order"):
        leaderboard(good[:2] + [ann("p2", "x", "A", "B", display="AC"), good[0]], ["A", "B", "C"],
                    rounds=0)


def test_lists_and_missing_seconds_are_read_like_tuples():
    as_lists = [Annotation(a.item, a.annotator, [list(g) for g in a.ranking],
                           None if a.display_order is None else list(a.display_order), a.seconds)
                for a in EXAMPLE]
    assert leaderboard(as_lists, rounds=20) == leaderboard(EXAMPLE, rounds=20)
    by = {e["annotator"]: e for e in leaderboard(EXAMPLE, rounds=0)["annotators"]}
    assert by["a3"]["median_seconds"] is None  # its one ranking has no time
