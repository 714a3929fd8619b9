"""How a leaderboard is computed: the options a researcher chooses, the bootstrap's settings, and
every figure for every criterion of a study, with its stop signal and forecast (annotations.metrics
does the statistics).
"""
import statistics
import time
from dataclasses import dataclass

import numpy as np

from annotations import metrics
from annotations.metrics.sequential import METHOD as CS_METHOD
from annotations.studies.selectors import systems_with_responses

from .selectors import attention_rates, figures_state, load_annotations

SEED = 2025  # fixed and reported with every leaderboard, so that its intervals can be reproduced
ROUNDS = 1000
ALPHA = 0.05
# The stop signal's confidence sequence is evaluated on a grid of candidate means; the grid
# shrinks for long studies so that items x grid stays about this size (memory and time).
CS_CELLS = 2_000_000
CS_GRID = 801
CS_PATH_POINTS = 120  # points of the sequence kept for the page's plot
FORECAST_SIMS = 200
FORECAST_MAX_MORE = 2000
CS_NAME = ("anytime-valid confidence sequence (betting, Waudby-Smith & Ramdas 2024): you may look "
           "as often as you like")
QUESTION = "is #1 separated from #2?"
UNIT_LABELS = {"annotation": "per annotation", "item": "per item"}
UNIT_HELP = {
    "annotation": "each ranking counts once",
    "item": "each item counts once: its rankings are first combined by mean position",
}


@dataclass(frozen=True)
class Options:
    """How a leaderboard is computed; `key` names its snapshot."""

    unit: str = "annotation"
    exclude_attention: bool = True

    @property
    def key(self):
        return f"unit={self.unit};exclude={'attention' if self.exclude_attention else 'none'}"

    @property
    def query(self):
        return {"unit": self.unit, "exclude": "attention" if self.exclude_attention else "none"}

    @classmethod
    def from_query(cls, params):
        """From request parameters (`unit`, `exclude`); anything unknown falls back to the default."""
        unit = params.get("unit") or cls.unit
        exclude = params.get("exclude") or "attention"
        return cls(unit=unit if unit in metrics.UNITS else cls.unit, exclude_attention=exclude != "none")

    @classmethod
    def from_key(cls, key):
        parts = dict(part.split("=", 1) for part in key.split(";") if "=" in part)
        return cls.from_query(parts)


DEFAULT = Options()


def planned_chance(study):
    """Before any ranking: (systems, responses per screen k, chance Win@1 = 1/k), the Win@1 a system
    would get if annotators placed responses at random; k is the study's responses per screen, or
    fewer when it has fewer systems. None while it has fewer than two systems. A computed
    leaderboard measures the chance level on the screens actually shown (chance_win1)."""
    systems = systems_with_responses(study).count()
    k = min(study.responses_per_screen, systems)
    return {"systems": systems, "screen": k, "win1": 1 / k} if k >= 2 else None


def _thinned(values, points=CS_PATH_POINTS):
    """Indices of at most `points` places along a path, always the last."""
    n = len(values)
    if n <= points:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, points).round().astype(int).tolist()))


def stop_signal(annotations, board, *, per_item, alpha=ALPHA, seed=SEED):
    """The default question of one criterion (is the current #1 separated from #2?), answered by
    the anytime-valid confidence sequence of the per-item Win@1 difference (items in the order of
    their first ranking), and the forecast of how many more items it is likely to need.

    `board` is the criterion's leaderboard (its order names #1 and #2); `annotations` the
    rankings it used, in the order they were stored. JSON-ready; `available` is False (with a
    `reason`) when there is no #2 or no item showed both.
    """
    shown = [s["system"] for s in board["systems"] if s["n"]]
    out = {"question": QUESTION, "name": CS_NAME, "method": CS_METHOD,
           "alpha": alpha, "available": False, "reason": None, "first": None, "second": None,
           "separated": False}
    if len(shown) < 2:
        out["reason"] = "fewer than two systems have been ranked"
        return out
    first, second = shown[0], shown[1]
    out.update(first=first, second=second)
    diffs = metrics.pair_differences(annotations, first, second, [s["system"] for s in board["systems"]])
    if len(diffs) == 0:
        out["reason"] = f"no item has shown {first} and {second} together yet"
        return out
    grid = int(max(41, min(CS_GRID, CS_CELLS // len(diffs))))
    sequence = metrics.confidence_sequence(diffs, alpha=alpha, grid=grid)
    seconds = [a.seconds for a in annotations if a.seconds is not None and a.seconds > 0]
    median_seconds = statistics.median(seconds) if seconds else None
    forecast = metrics.forecast(diffs, alpha=alpha, per_item=per_item, seconds_per_screen=median_seconds,
                                n_sims=FORECAST_SIMS, max_more=FORECAST_MAX_MORE, seed=seed)
    keep = _thinned(sequence["mean"])
    separated = sequence["stopped_at"] is not None
    out.update(
        available=True,
        n_items=sequence["n_items"],
        mean=sequence["mean"][-1],
        lower=sequence["lower"][-1],
        upper=sequence["upper"][-1],
        grid=grid,
        separated=separated,
        # The sequence excludes 0 on one side; below 0 the paired items favour #2.
        direction=None if not separated else ("first" if sequence["lower"][-1] > 0 else "second"),
        stopped_at=sequence["stopped_at"],
        path={"items": [i + 1 for i in keep], "mean": [sequence["mean"][i] for i in keep],
              "lower": [sequence["lower"][i] for i in keep],
              "upper": [sequence["upper"][i] for i in keep]},
        median_seconds=median_seconds,
        forecast={key: forecast.get(key) for key in (
            "more_items", "more_items_range", "share_separated", "projection", "rankings", "hours",
            "per_item", "n_sims", "max_more")},
    )
    return out


def answered(criteria):
    """The study's question is answered when every criterion with rankings has separated its #1
    from its #2 (and one has rankings): leasing may stop then, if the study says so."""
    signals = [c["stop_signal"] for c in criteria if c["leaderboard"]["n_annotations"]]
    return bool(signals) and all(s["separated"] for s in signals)


def compute(study, options=DEFAULT):
    """Every figure for every criterion of the study, as the JSON-ready dict a snapshot stores."""
    started = time.perf_counter()
    # Read before the rankings: a change while they load leaves this leaderboard stale, never
    # fresh and wrong.
    version = figures_state(study)[2]
    study.refresh_from_db(fields=["attention_min_pass_rate", "annotations_per_item"])
    by_criterion, labels, count, last = load_annotations(study)
    # Rates of annotators whose rankings this snapshot saw (one may have arrived since the load).
    position = {label: i for i, label in enumerate(labels)}
    rates = {label: rate for label, rate in attention_rates(study).items() if label in position}
    minimum = study.attention_min_pass_rate
    failed = sorted((label for label, rate in rates.items() if rate < minimum), key=position.get)
    excluded = failed if options.exclude_attention else []
    # A system without responses (its generation job failed) is one nobody can rank: left out.
    systems = sorted(systems_with_responses(study).values_list("name", flat=True))
    criteria = []
    for criterion in study.criteria.all():
        annotations = by_criterion.get(criterion.pk, [])
        board = metrics.leaderboard(
            annotations, systems, unit=options.unit, rounds=ROUNDS, seed=SEED, alpha=ALPHA,
            attention=rates, exclude=excluded)
        left_out = set(excluded)
        kept = [a for a in annotations if a.annotator not in left_out] if left_out else annotations
        criteria.append({
            "name": criterion.name,
            "label": criterion.label or criterion.name,
            "description": criterion.description,
            "leaderboard": board,
            "stop_signal": stop_signal(kept, board, per_item=study.annotations_per_item),
        })
    return {
        "unit": options.unit,
        "exclude_failed_attention": options.exclude_attention,
        "attention_min_pass_rate": minimum,
        "failed_attention": failed,
        "excluded_annotators": excluded,
        "seed": SEED,
        "bootstrap_rounds": ROUNDS,
        "alpha": ALPHA,
        "rankings_count": count,
        "last_ranking_id": last,
        "figures_version": version,
        "annotators": labels,
        "criteria": criteria,
        # Read by the leasing check (studies.selectors.question_answered): only the default
        # options decide whether a study that stops when answered stops.
        "question_answered": options == DEFAULT and answered(criteria),
        "seconds": time.perf_counter() - started,
    }
