"""The leaderboard of one criterion: every figure of metrics.md with its bootstrap interval,
pairwise tests, agreement, position bias and annotators, as one JSON-ready dict."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .agreement import _annotator_quality, _kendalls_w, _ranking_alpha, _top1_agreement
from .bias import _position_bias
from .bootstrap import _all_figures, _bootstrap_totals, _interval, _pair
from .features import _features
from .fits import BT_PRIOR, _plackett_luce_fit, to_elo
from .robustness import METHOD as ROBUSTNESS_METHOD
from .robustness import _robustness
from .significance import _pair_tests, significance_groups
from .tables import UNITS, Annotation, _combine_table, _div, _encode, _num
from .ties import _fit_ties

ROBUSTNESS_LISTED = 50  # removed rankings named on the leaderboard; the count is always exact


def leaderboard(
    annotations: Iterable[Annotation],
    systems: Sequence[str] | None = None,
    *,
    unit: str = "annotation",
    rounds: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    attention: Mapping[str, float] | None = None,
    exclude: Collection[str] = (),
    bt_prior: float = BT_PRIOR,
) -> dict[str, Any]:
    """Every figure of metrics.md for one criterion, as a JSON-ready dict.

    `systems` fixes the systems and may include ones never shown (default: every name ranked).
    Intervals are 1 - alpha percentile intervals from `rounds` item-resampling rounds drawn with
    `seed`; `alpha` is also the level of the Holm-corrected sign tests. `exclude` drops those
    annotators' rankings from every figure (they stay in `annotators`, marked excluded).
    `attention` maps annotator -> attention-check pass rate in [0, 1].

    `systems` entries (best Win@1 first; never-shown systems last): system, n (units that
    showed it), chance_win1, win1, win1_ci, strict_win1, strict_win1_ci, win_at {"1": ..},
    win_at_ci, mean_rank, mean_rank_ci, normalised_rank, normalised_rank_ci, bt (log scale),
    bt_ci, bt_elo, bt_elo_ci, pl (Plackett-Luce log scale), pl_ci, rank (by Win@1, ties share),
    rank_ci ([best, worst]), group (letters: systems sharing a letter are not separable),
    pl_ties_worth and pl_ties_worth_se (the tie model's log-worth, mean 0, and its standard
    error; `ties`).

    Also: `robustness` (per annotation, whatever the unit: the fewest rankings whose removal
    lets another system reach the Win@1 leader, `robustness.robustness`; keys method, unit,
    n_rankings, leader, challenger, count, share, confirmed, new_leader, removed (item and
    annotator of the first ROBUSTNESS_LISTED in removal order) and n_listed),
    `robustness_method`; the tie model's `tie_model` (its method), `tie_parameters`
    {"2": delta_2, ...}, `tie_parameters_se_log` and `tie_share_equal`.
    """
    if rounds < 0:
        raise ValueError("rounds must be >= 0")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    annotations = list(annotations)
    excluded = set(exclude)
    full = _encode(annotations, systems)
    dropped = np.array([name in excluded for name in full.annotators], bool)
    raw = full.subset(~dropped[full.annotator]) if dropped.any() else full
    t = _combine_table(raw) if unit == "item" else raw
    names = list(t.systems)
    n_sys = len(names)

    x, lay, extra = _features(t)
    point = _all_figures(x.sum(0, keepdims=True), lay, extra, bt_prior)
    if not lay.n_sets and len(extra["pl_sets_matrix"]):
        point["pl"] = _plackett_luce_fit(extra["pl_wins"][None], extra["pl_sets_matrix"],
                                         extra["pl_sets"][None], bt_prior)
    boot = _all_figures(_bootstrap_totals(x, rounds, seed), lay, extra, bt_prior)
    del x  # (items x features): freed before the passes over rankings below
    ci = {key: _interval(boot[key], alpha) for key in ("win1", "strict_win1", "win_at",
          "mean_rank", "normalised_rank", "win_rate", "bt", "pl")}
    # Ranks are integers: widen to the nearest attained ranks rather than interpolate.
    rank_ci = _interval(boot["rank"], alpha, integer=True)

    # Leaderboard order: Win@1 descending, never-shown systems last, names break ties.
    w1 = point["win1"][0]
    order = sorted(range(n_sys),
                   key=lambda s: (math.isnan(w1[s]), -np.nan_to_num(w1[s]), names[s]))

    tests, separable = _pair_tests(names, order, extra, w1, boot["win1"], alpha)
    ranked = [s for s in order if point["n"][0, s] > 0]
    letters, groups = significance_groups([names[s] for s in ranked],
                                          separable[np.ix_(ranked, ranked)])

    chance = _div((t.shown / np.maximum(t.k, 1)[:, None]).sum(0), t.shown.sum(0))
    entries = []
    for s in order:
        entry = {
            "system": names[s],
            "n": int(point["n"][0, s]),
            "chance_win1": _num(chance[s]),
            "rank": None if np.isnan(point["rank"][0, s]) else int(point["rank"][0, s]),
            "rank_ci": _pair(rank_ci, s),
            "group": letters.get(names[s]),
        }
        for key in ("win1", "strict_win1", "mean_rank", "normalised_rank", "bt", "pl"):
            entry[key] = _num(point[key][0, s])
            entry[key + "_ci"] = _pair(ci[key], s)
        if entry["rank_ci"] is not None:
            entry["rank_ci"] = [int(v) for v in entry["rank_ci"]]
        entry["bt_elo"] = _num(to_elo(point["bt"][0, s]))
        entry["bt_elo_ci"] = None if entry["bt_ci"] is None else [
            float(to_elo(v)) for v in entry["bt_ci"]]
        entry["win_at"] = {str(j + 1): _num(point["win_at"][0, j, s]) for j in range(lay.kmax)}
        entry["win_at_ci"] = {str(j + 1): _pair(ci["win_at"], j, s) for j in range(lay.kmax)}
        entries.append(entry)

    # Bradley-Terry scores are comparable only within a connected part of the comparison graph.
    played = point["count"][0] > 0
    compared = played.any(1)
    n_parts = connected_components(sparse.csr_matrix(played[np.ix_(compared, compared)]),
                                   directed=False)[0] if compared.any() else 0
    ties = _fit_ties(t)
    for entry in entries:
        s = names.index(entry["system"])
        entry["pl_ties_worth"], entry["pl_ties_worth_se"] = ties["worth"][s], ties["worth_se"][s]
    rob = _robustness(raw, list_limit=ROBUSTNESS_LISTED)
    robust = {key: rob[key] for key in ("method", "n_rankings", "leader", "challenger", "count",
                                        "share", "confirmed", "new_leader")}
    robust["unit"] = "annotation"
    robust["removed"] = [{"item": r["item"], "annotator": r["annotator"]}
                         for r in rob["removed_rankings"]]
    robust["n_listed"] = len(robust["removed"])

    idx = order
    w = _kendalls_w(raw)
    w_ok = w[~np.isnan(w)]
    agree, agree_chance, n_pairs = _top1_agreement(raw)
    return {
        "unit": unit,
        "seed": int(seed),
        "bootstrap_rounds": int(rounds),
        "alpha": float(alpha),
        "bt_prior": float(bt_prior),
        "n_annotations": int(len(raw.item)),
        "n_items": int(len(raw.items)),
        "n_annotators": int(len(raw.annotators)),
        "n_units": int(len(t.item)),
        "chance_win1": _num(np.mean(1 / t.k)) if len(t.item) else None,
        "systems": entries,
        "pairwise": {
            "systems": [names[s] for s in idx],
            "win_rate": [[_num(point["win_rate"][0, s, u]) for u in idx] for s in idx],
            "win_rate_ci": [[_pair(ci["win_rate"], s, u) for u in idx] for s in idx],
            "counts": [[int(point["count"][0, s, u]) for u in idx] for s in idx],
            "connected": bool(n_parts <= 1),
            "components": int(n_parts),
            "test": "exact sign test over items on the Win@1 difference, Holm-corrected",
            "tests": tests,
            "groups": groups,
        },
        "agreement": {
            "kendalls_w": _summary(w_ok),
            "krippendorff_alpha": _num(_ranking_alpha(raw)),
            "top1_agreement": _num(agree),
            "top1_chance": _num(agree_chance),
            "top1_pairs": n_pairs,
        },
        "position_bias": _position_bias(raw),
        "annotators": _annotator_quality(full, attention, excluded),
        "robustness": robust,
        "robustness_method": ROBUSTNESS_METHOD,
        "tie_model": ties["method"],
        "tie_parameters": ties["tie_parameters"],
        "tie_parameters_se_log": ties["log_tie_se"],
        "tie_share_equal": ties["tie_share_equal"],
    }


def _summary(values: np.ndarray) -> dict[str, Any]:
    """Mean, quartiles and a 10-bin histogram on [0, 1] of per-item values."""
    if values.size == 0:
        return {"n_items": 0, "mean": None, "min": None, "q25": None, "median": None,
                "q75": None, "max": None, "histogram": None}
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    counts, edges = np.histogram(np.clip(values, 0, 1), bins=10, range=(0, 1))
    return {
        "n_items": int(values.size),
        "mean": float(values.mean()),
        "min": float(q[0]),
        "q25": float(q[1]),
        "median": float(q[2]),
        "q75": float(q[3]),
        "max": float(q[4]),
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }
