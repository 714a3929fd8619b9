"""The whole leaderboard dict (annotations.metrics.leaderboard): documented keys, plain JSON,
exclusions, degenerate data, and properties over random studies."""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from annotations.metrics import Annotation, leaderboard
from tests.annotations.metrics.helpers import EXAMPLE, NAMES, ann, approx, rankings, studies


def test_chance_level_is_one_over_k():
    data = [ann(f"p{i}", "a", "A", "B", "C", "D", "E", "F") for i in range(3)]
    board = leaderboard(data, rounds=0)
    assert board["chance_win1"] == approx(1 / 6)  # the 16.7 % shown beside the table
    assert all(e["chance_win1"] == approx(1 / 6) for e in board["systems"])


# ---------------------------------------------------------------------------------------------
# The leaderboard dict


def plain(value):
    """True when value holds only JSON types (no numpy scalars) and no NaN."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) in (int, str, bool)


def test_leaderboard_is_plain_json_with_the_documented_keys():
    board = leaderboard(EXAMPLE, rounds=50, attention={"a1": 0.9})
    assert plain(board)
    json.dumps(board, allow_nan=False)
    for key in ("unit", "seed", "bootstrap_rounds", "n_annotations", "n_items", "chance_win1",
                "systems", "pairwise", "agreement", "position_bias", "annotators"):
        assert key in board
    for entry in board["systems"]:
        for key in ("system", "n", "win1", "win1_ci", "strict_win1", "win_at", "mean_rank",
                    "mean_rank_ci", "normalised_rank", "bt", "bt_elo", "bt_elo_ci", "rank_ci",
                    "group"):
            assert key in entry
    assert [e["system"] for e in board["systems"]] == ["A", "C", "B", "D"]  # by Win@1
    assert board["pairwise"]["systems"] == ["A", "C", "B", "D"]
    assert board["pairwise"]["win_rate"][0][2] == 0.875  # A over B
    assert board["agreement"]["kendalls_w"]["mean"] == approx((0.75 + 222 / 228) / 2)
    assert board["agreement"]["kendalls_w"]["n_items"] == 2
    assert sum(board["agreement"]["kendalls_w"]["histogram"]["counts"]) == 2
    by = {a["annotator"]: a for a in board["annotators"]}
    assert by["a1"]["attention_pass_rate"] == 0.9


def test_leaderboard_proportions_are_fractions():
    board = leaderboard(EXAMPLE, rounds=50)
    for e in board["systems"]:
        for v in [e["win1"], e["strict_win1"], e["normalised_rank"], *e["win1_ci"],
                  *e["win_at"].values()]:
            assert 0 <= v <= 1
    for row in board["pairwise"]["win_rate"]:
        assert all(v is None or 0 <= v <= 1 for v in row)
    assert all(0 <= s["share"] <= 1 for s in board["position_bias"]["slots"])


def test_excluded_annotators_leave_the_figures_but_stay_listed():
    board = leaderboard(EXAMPLE, rounds=20, exclude={"a2"})
    by = {e["system"]: e for e in board["systems"]}
    # Without a2's ranking (C first): A 2.5 / 3, B 0.5 / 3, C 0
    assert by["A"]["win1"] == approx(2.5 / 3) and by["C"]["win1"] == 0.0
    assert board["n_annotations"] == 3 and board["n_annotators"] == 2
    listed = {a["annotator"]: a["excluded"] for a in board["annotators"]}
    assert listed == {"a1": False, "a2": True, "a3": False}


def test_rounds_zero_skips_the_bootstrap():
    board = leaderboard(EXAMPLE, rounds=0)
    assert all(e["win1_ci"] is None and e["rank_ci"] is None for e in board["systems"])
    assert board["systems"][0]["win1"] == 0.625


# ---------------------------------------------------------------------------------------------
# Degenerate data


def assert_defined(board):
    assert plain(board)
    json.dumps(board, allow_nan=False)


def test_no_annotations():
    board = leaderboard([], rounds=10)
    assert_defined(board)
    assert board["systems"] == [] and board["chance_win1"] is None
    assert board["agreement"]["krippendorff_alpha"] is None


def test_one_annotation():
    board = leaderboard([ann("p", "x", "A", "B")], rounds=10)
    assert_defined(board)
    by = {e["system"]: e for e in board["systems"]}
    assert by["A"]["win1"] == 1.0 and by["A"]["win1_ci"] == [1.0, 1.0]
    assert by["A"]["bt"] > 0 > by["B"]["bt"]  # finite thanks to the prior
    assert board["agreement"]["kendalls_w"]["mean"] is None
    assert board["agreement"]["top1_agreement"] is None
    assert board["pairwise"]["tests"][0]["p"] == 1.0  # one item cannot be significant


def test_one_system():
    board = leaderboard([ann("p", "x", "A"), ann("q", "y", "A")], rounds=10)
    assert_defined(board)
    (only,) = board["systems"]
    assert only["win1"] == 1.0 and only["bt"] is None and only["bt_elo"] is None
    assert only["normalised_rank"] is None  # (a+b)/2 - 1 over k - 1 = 0 / 0
    assert board["pairwise"]["tests"] == [] and board["position_bias"]["p"] is None


def test_a_system_never_shown():
    board = leaderboard([ann("p", "x", "A", "B")], ["A", "B", "Z"], rounds=10)
    assert_defined(board)
    z = board["systems"][-1]
    assert z["system"] == "Z" and z["n"] == 0
    assert all(z[k] is None for k in ("win1", "win1_ci", "mean_rank", "bt", "bt_elo", "rank",
                                      "rank_ci", "group"))
    assert all(v is None for v in z["win_at"].values())


def test_all_ties():
    data = [ann("p", "x", "ABC"), ann("p", "y", "ABC"), ann("q", "x", "ABC")]
    for unit in ("annotation", "item"):
        board = leaderboard(data, unit=unit, rounds=10)
        assert_defined(board)
        assert [e["win1"] for e in board["systems"]] == [approx(1 / 3)] * 3
        assert [e["strict_win1"] for e in board["systems"]] == [0.0] * 3
        assert [e["bt"] for e in board["systems"]] == [approx(0, 1e-9)] * 3
        assert [e["rank"] for e in board["systems"]] == [1, 1, 1]
        assert board["agreement"]["kendalls_w"]["mean"] is None
        assert board["agreement"]["krippendorff_alpha"] is None


def test_disconnected_comparison_graph():
    data = [ann("p", "x", "A", "B"), ann("q", "x", "C", "D"), ann("q", "y", "D", "C")]
    board = leaderboard(data, rounds=20)
    assert_defined(board)
    assert board["pairwise"]["connected"] is False and board["pairwise"]["components"] == 2
    by = {e["system"]: e for e in board["systems"]}
    assert by["A"]["bt"] == approx(-by["B"]["bt"], 1e-9)  # each part centred on its own
    assert by["C"]["bt"] == approx(0, 1e-9)


# ---------------------------------------------------------------------------------------------
# Properties

FIELDS = ("n", "win1", "win1_ci", "strict_win1", "strict_win1_ci", "win_at", "win_at_ci",
          "mean_rank", "mean_rank_ci", "normalised_rank", "bt", "bt_ci", "pl", "pl_ci", "rank",
          "rank_ci", "chance_win1")


def close(a, b, tol=1e-6):
    """Equal up to tol, through the nested lists and dicts of a leaderboard entry."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, str):
        return a == b
    return abs(a - b) <= tol


@settings(max_examples=40, deadline=None)
@given(studies(), st.permutations(range(len(NAMES))), st.sampled_from(["annotation", "item"]))
def test_relabelling_systems_permutes_the_results(study, perm, unit):
    systems, data = study
    # New names sort in a different order, so the internal order really changes.
    rename = {s: f"t{perm[i]}" for i, s in enumerate(systems)}
    relabelled = [Annotation(a.item, a.annotator,
                             tuple(tuple(rename[s] for s in g) for g in a.ranking),
                             None if a.display_order is None else
                             tuple(rename[s] for s in a.display_order), a.seconds)
                  for a in data]
    before = leaderboard(data, unit=unit, rounds=30, seed=5)
    after = leaderboard(relabelled, unit=unit, rounds=30, seed=5)
    after_by = {e["system"]: e for e in after["systems"]}
    for entry in before["systems"]:
        other = after_by[rename[entry["system"]]]
        for key in FIELDS:
            assert close(other[key], entry[key]), key
    p_before = {frozenset((rename[t["a"]], rename[t["b"]])): t["p_holm"]
                for t in before["pairwise"]["tests"]}
    assert p_before == {frozenset((t["a"], t["b"])): t["p_holm"]
                        for t in after["pairwise"]["tests"]}
    assert sorted(sorted(rename[s] for s in g) for g in before["pairwise"]["groups"]) == \
        sorted(sorted(g) for g in after["pairwise"]["groups"])
    assert close(before["agreement"], after["agreement"], 1e-12)
    assert close(before["position_bias"], after["position_bias"], 1e-12)


@settings(max_examples=40, deadline=None)
@given(studies(min_size=0), st.data(), st.sampled_from(["annotation", "item"]))
def test_adding_a_ranking_changes_n_by_at_most_one(study, data, unit):
    systems, rows = study
    extra = data.draw(rankings(systems))
    n_before = {e["system"]: e["n"] for e in leaderboard(rows, systems, unit=unit,
                                                          rounds=0)["systems"]}
    n_after = {e["system"]: e["n"] for e in leaderboard(rows + [extra], systems, unit=unit,
                                                         rounds=0)["systems"]}
    shown = {s for g in extra.ranking for s in g}
    for s in systems:
        assert 0 <= n_after[s] - n_before[s] <= 1
        if unit == "annotation":
            assert n_after[s] - n_before[s] == (s in shown)


# ---------------------------------------------------------------------------------------------
# Robustness and the tie model beside the existing figures


def test_robustness_and_tie_model_sit_beside_the_scores():
    from annotations.metrics import plackett_luce_ties, robustness, simulate_pl_ties

    data = simulate_pl_ties([0.6, 0.2, 0.0, -0.3], {2: 0.5}, 400, per_item=2, seed=9)
    board = leaderboard(data, rounds=20)
    assert plain(board)
    rob, alone = board["robustness"], robustness(data)
    assert rob["method"] == board["robustness_method"] == alone["method"]
    for key in ("leader", "challenger", "count", "share", "confirmed", "new_leader"):
        assert rob[key] == alone[key], key
    assert rob["confirmed"] and rob["unit"] == "annotation"
    # The first ROBUSTNESS_LISTED removed rankings, named by item and annotator.
    assert rob["n_listed"] == len(rob["removed"]) == min(rob["count"], 50)
    assert rob["removed"] == [{"item": r["item"], "annotator": r["annotator"]}
                              for r in alone["removed_rankings"][:50]]
    ties = plackett_luce_ties(data)
    assert board["tie_model"] == ties["method"]
    assert board["tie_parameters"] == ties["tie_parameters"] and "2" in ties["tie_parameters"]
    assert board["tie_parameters_se_log"] == ties["log_tie_se"]
    for entry in board["systems"]:
        s = ties["systems"].index(entry["system"])
        assert entry["pl_ties_worth"] == ties["worth"][s]
        assert entry["pl_ties_worth_se"] == ties["worth_se"][s]
    # Same order of systems as the Plackett-Luce score without tie parameters.
    by_pl = sorted(board["systems"], key=lambda e: -e["pl"])
    assert [e["system"] for e in by_pl] == [e["system"] for e in
                                            sorted(board["systems"],
                                                   key=lambda e: -e["pl_ties_worth"])]


def test_robustness_leaves_out_excluded_annotators():
    data = [ann(f"p{i}", "good", "A", "B") for i in range(5)]
    data += [ann(f"q{i}", "bad", "B", "A") for i in range(4)]
    board = leaderboard(data, rounds=0, exclude={"bad"})
    # Without "bad", A wins all 5: removing all five leaves no ranking of A at all.
    assert board["robustness"]["n_rankings"] == 5
    assert all(r["annotator"] == "good" for r in board["robustness"]["removed"])
