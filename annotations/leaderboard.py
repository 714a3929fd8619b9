"""The leaderboard of a study: its rankings loaded as metrics.Annotation, computed per criterion,
and cached in LeaderboardSnapshot so that no page waits on the bootstrap (refreshed by a task).
"""
import logging
import time
from dataclasses import dataclass

import orjson

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from . import metrics, rankings_io
from .models import LeaderboardSnapshot, Ranking, System

log = logging.getLogger(__name__)

SEED = 2025  # fixed and reported with every leaderboard, so that its intervals can be reproduced
ROUNDS = 1000
ALPHA = 0.05
# Up to this many rankings the page computes a missing leaderboard while it renders (well under a
# second); above, it shows progress and a task computes it.
COMPUTE_INLINE_MAX = 20_000
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


# ---------------------------------------------------------------------------------------------
# Reading rankings


def load_annotations(study):
    """The study's rankings in the order they were stored, as
    ({criterion id: [metrics.Annotation]}, labels by first ranking, count, newest id).

    One query for the rankings (values_list, no model instances) and one for the system names.
    The JSON columns come as text and each distinct text is decoded once: a study has few
    distinct orderings (at most the weak orders of its systems), so 100,000 rankings decode
    in a few thousand steps and share their tuples.
    """
    names = dict(System.objects.filter(study=study).values_list("id", "name"))
    rows = (Ranking.objects.filter(study=study).order_by("id")
            .values_list("id", "criterion_id", "item__external_id", "annotator_label",
                         Cast("ranking", TextField()), Cast("display_order", TextField()), "seconds"))
    by_criterion = {}
    labels = {}
    orders = {}
    displays = {None: None, "null": None}
    last = count = 0
    Annotation = metrics.Annotation
    for pk, criterion_id, item, label, ranking, display, seconds in rows.iterator(chunk_size=10_000):
        order = orders.get(ranking)
        if order is None:
            order = orders[ranking] = tuple(tuple(names[s] for s in group) for group in orjson.loads(ranking))
        shown = displays.get(display, False)
        if shown is False:
            shown = displays[display] = tuple(names[s] for s in orjson.loads(display))
        by_criterion.setdefault(criterion_id, []).append(Annotation(item, label, order, shown, seconds))
        labels.setdefault(label, len(labels))
        last = pk
        count += 1
    return by_criterion, list(labels), count, last


def attention_rates(study):
    """{annotator label: share of their attention-checked rankings that passed} (checked only)."""
    rows = (Ranking.objects.filter(study=study, attention_passed__isnull=False)
            .values("annotator_label")
            .annotate(n=Count("id"), passed=Count("id", filter=Q(attention_passed=True))))
    return {row["annotator_label"]: row["passed"] / row["n"] for row in rows}


def ranking_state(study):
    """(how many rankings, newest id): a snapshot is stale when either changed."""
    state = Ranking.objects.filter(study=study).aggregate(n=Count("id"), last=Max("id"))
    return state["n"], state["last"] or 0


def pseudonyms(labels):
    """Annotator labels -> 'annotator-1', ... in order of their first ranking (stable over time,
    since rankings are only ever added)."""
    return {label: f"annotator-{i}" for i, label in enumerate(labels, start=1)}


def export_rankings(study):
    """The study's rankings as JSONL lines (bytes), in stored order, annotators pseudonymised:
    the import format, so that importing them into a study with the same items and systems
    reproduces the leaderboard exactly."""
    names = dict(System.objects.filter(study=study).values_list("id", "name"))
    rows = (Ranking.objects.filter(study=study).order_by("id")
            .values_list("item__external_id", "annotator_label", "criterion__name", "ranking",
                         "display_order", "seconds", "attention_passed"))
    aliases = {}
    for item, label, criterion, ranking, display, seconds, attention in rows.iterator(chunk_size=10_000):
        alias = aliases.setdefault(label, f"annotator-{len(aliases) + 1}")
        yield rankings_io.dumps(rankings_io.RankingRow(
            0, item, alias, criterion, tuple(tuple(names[s] for s in group) for group in ranking),
            None if display is None else tuple(names[s] for s in display), seconds, attention))


# ---------------------------------------------------------------------------------------------
# Computing


def compute(study, options=DEFAULT):
    """Every figure for every criterion of the study, as the JSON-ready dict a snapshot stores."""
    started = time.perf_counter()
    by_criterion, labels, count, last = load_annotations(study)
    # Rates of annotators whose rankings this snapshot saw (one may have arrived since the load).
    position = {label: i for i, label in enumerate(labels)}
    rates = {label: rate for label, rate in attention_rates(study).items() if label in position}
    minimum = study.attention_min_pass_rate
    failed = sorted((label for label, rate in rates.items() if rate < minimum), key=position.get)
    excluded = failed if options.exclude_attention else []
    systems = sorted(System.objects.filter(study=study).values_list("name", flat=True))
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
        "annotators": labels,
        "criteria": criteria,
        "seconds": time.perf_counter() - started,
    }


def refresh(study, options=DEFAULT):
    """Compute and store the snapshot for these options; returns it.

    A computation that saw fewer rankings than the stored one never replaces it (two refreshes
    may race; the newer data wins).
    """
    data = compute(study, options)
    values = {"data": data, "rankings_count": data["rankings_count"],
              "last_ranking_id": data["last_ranking_id"], "seconds": data["seconds"]}
    updated = LeaderboardSnapshot.objects.filter(
        study=study, options=options.key, rankings_count__lte=data["rankings_count"],
    ).update(computed_at=timezone.now(), **values)
    if not updated:
        try:
            with transaction.atomic():
                LeaderboardSnapshot.objects.create(study=study, options=options.key, **values)
        except IntegrityError:
            pass  # a newer snapshot is already there
    log.info("leaderboard of %s (%s): %d rankings in %.2f s", study.slug, options.key,
             data["rankings_count"], data["seconds"])
    return LeaderboardSnapshot.objects.get(study=study, options=options.key)


def is_fresh(snapshot, state):
    return snapshot is not None and (snapshot.rankings_count, snapshot.last_ranking_id) == tuple(state)


def fresh(study, options=DEFAULT):
    """The up-to-date snapshot, computing it now only when missing or stale (downloads, API, CLI,
    and the refresh task)."""
    snapshot = LeaderboardSnapshot.objects.filter(study=study, options=options.key).first()
    if is_fresh(snapshot, ranking_state(study)):
        return snapshot
    return refresh(study, options)


def options_to_refresh(study):
    """The default options plus every option set someone has looked at for this study."""
    keys = set(LeaderboardSnapshot.objects.filter(study=study).values_list("options", flat=True))
    keys.add(DEFAULT.key)
    return sorted(keys)


def schedule_refresh(study, options=None, state=None, *, force=False):
    """Enqueue a refresh once the current transaction commits (a worker must see the rankings).

    With options, only that snapshot, at most once per ranking state (pages poll while they
    wait, and must not enqueue one task per poll); without, every snapshot of the study.
    `force` recomputes even where the rankings' count and newest id are unchanged.
    """
    from .tasks import refresh_leaderboard

    key = options.key if options else None
    if key is not None:
        count, last = state or (0, 0)
        guard = f"leaderboard-refresh:{study.pk}:{key}:{count}:{last}"
        if not cache.add(guard, True, timeout=300):
            return False
    study_id = study.pk
    # robust: a failing refresh is logged; it must not undo or fail the write that caused it.
    transaction.on_commit(lambda: refresh_leaderboard.delay(study_id, key, force), robust=True)
    return True


def rankings_changed(study, *, rescored=False):
    """Call after writing rankings (imports, annotators' submissions): refreshes the leaderboards.

    Pass rescored=True after changing stored rankings' attention_passed: the count and newest
    id do not change then, so only a forced refresh sees it.
    """
    schedule_refresh(study, force=rescored)


@dataclass
class Board:
    """What a page shows: a snapshot (maybe stale, then `refreshing`), or nothing yet."""

    snapshot: LeaderboardSnapshot | None
    rankings_count: int
    fresh: bool = False
    refreshing: bool = False

    @property
    def data(self):
        return self.snapshot.data if self.snapshot else None

    @property
    def empty(self):
        return self.rankings_count == 0


def current(study, options=DEFAULT):
    """For pages: never wait on a long computation when a snapshot exists.

    Fresh snapshot: shown. Stale: shown as it is while a task refreshes it. None: computed now
    when small, else a task computes it while the page shows progress.
    """
    state = ranking_state(study)
    if state[0] == 0:
        return Board(None, 0, fresh=True)
    snapshot = LeaderboardSnapshot.objects.filter(study=study, options=options.key).first()
    if is_fresh(snapshot, state):
        return Board(snapshot, state[0], fresh=True)
    if snapshot is None and state[0] <= COMPUTE_INLINE_MAX:
        return Board(refresh(study, options), state[0], fresh=True)
    schedule_refresh(study, options, state)
    return Board(snapshot, state[0], refreshing=True)
