"""How a leaderboard is computed: the options a researcher chooses, the bootstrap's settings, and
every figure for every criterion of a study (annotations.metrics does the statistics).
"""
import time
from dataclasses import dataclass

from annotations import metrics
from annotations.studies.selectors import systems_with_responses

from .selectors import attention_rates, figures_state, load_annotations

SEED = 2025  # fixed and reported with every leaderboard, so that its intervals can be reproduced
ROUNDS = 1000
ALPHA = 0.05
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


def compute(study, options=DEFAULT):
    """Every figure for every criterion of the study, as the JSON-ready dict a snapshot stores."""
    started = time.perf_counter()
    # Read before the rankings: a change while they load leaves this leaderboard stale, never
    # fresh and wrong.
    version = figures_state(study)[2]
    study.refresh_from_db(fields=["attention_min_pass_rate"])
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
        criteria.append({
            "name": criterion.name,
            "label": criterion.label or criterion.name,
            "description": criterion.description,
            "leaderboard": metrics.leaderboard(
                annotations, systems, unit=options.unit, rounds=ROUNDS, seed=SEED, alpha=ALPHA,
                attention=rates, exclude=excluded),
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
        "seconds": time.perf_counter() - started,
    }
