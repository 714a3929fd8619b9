"""Reads of the loading area, shared by pages, the API, commands and other areas: which studies a
researcher may see, what a study holds and what is missing.
"""
from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from annotations.models import Item, LeaderboardSnapshot, Response, Study, System


def researcher_study(user, slug):
    """The study if this user is one of its researchers; 404 otherwise, so that whether a study
    exists stays private. Every researcher page, API view and generation page looks studies up here."""
    return get_object_or_404(Study.objects.for_researcher(user), slug=slug)


def researcher_studies(user):
    """The studies this user researches, with their item and system counts."""
    return (Study.objects.for_researcher(user)
            .annotate(n_items=count_per_study(Item), n_systems=count_per_study(System))
            .select_related("owner"))


def question_answered(study):
    """True when the study stops when its question is answered and its leaderboard says it is:
    with the default options, every criterion separated its #1 from its #2 (results.figures
    writes `question_answered` into the snapshot). A snapshot from before the newest rankings
    counts too: the stop signal is anytime-valid, so stopping at any look is honest. Leasing asks
    this before it hands out a new item."""
    if not study.stop_when_answered:
        return False
    return LeaderboardSnapshot.objects.filter(study=study, data__question_answered=True).exists()


def systems_with_responses(study):
    """The study's systems that have at least one response, the ones annotators can rank. A system
    with none (its generation job is still running, or failed or was cancelled) stays out of the
    study's coverage totals and its leaderboard until its first response is stored."""
    return System.objects.filter(study=study).filter(Exists(Response.objects.filter(system=OuterRef("pk"))))


def answered_item_ids(system_id, item_ids):
    """Which of these items already have a response from the system."""
    return set(Response.objects.filter(system_id=system_id, item_id__in=item_ids).values_list("item_id", flat=True))

MISSING_LIST_LIMIT = 50


@dataclass
class SystemCoverage:
    system: System
    responses: int
    missing: int
    share: float  # fraction of the study's items this system answered


@dataclass
class Overview:
    items: int
    systems: list
    responses: int
    expected: int
    incomplete_items: int
    incomplete: list  # [(item, [missing system names])], at most MISSING_LIST_LIMIT

    @property
    def counted(self):
        """The systems the totals count: those with responses (see systems_with_responses)."""
        return [row for row in self.systems if row.responses]

    @property
    def complete(self):
        return self.items > 0 and self.responses == self.expected

    @property
    def share(self):
        return self.responses / self.expected if self.expected else 0.0


def study_overview(study):
    items = study.items.count()
    every = list(study.systems.annotate(n=Count("responses")).order_by("name"))
    coverage = [
        SystemCoverage(s, s.n, items - s.n, s.n / items if items else 0.0) for s in every
    ]
    # Shown in the table with a note, but a system without responses expects none yet.
    systems = [s for s in every if s.n]
    responses = sum(s.n for s in systems)
    incomplete_qs = (
        Item.objects.filter(study=study).annotate(n=Count("responses")).filter(n__lt=len(systems))
    )
    incomplete_count = incomplete_qs.count() if systems else 0
    incomplete = []
    if incomplete_count:
        page = list(incomplete_qs.order_by("id")[:MISSING_LIST_LIMIT])
        answered = {}
        for item_id, system_id in Response.objects.filter(item__in=page).values_list("item_id", "system_id"):
            answered.setdefault(item_id, set()).add(system_id)
        for item in page:
            have = answered.get(item.pk, set())
            incomplete.append((item, [s.name for s in systems if s.pk not in have]))
    return Overview(
        items=items, systems=coverage, responses=responses, expected=items * len(systems),
        incomplete_items=incomplete_count, incomplete=incomplete,
    )


def count_per_study(model):
    """An annotation counting `model` rows per study without multiplying joins."""
    return Coalesce(
        Subquery(
            model.objects.filter(study=OuterRef("pk")).order_by().values("study")
            .annotate(n=Count("pk")).values("n"),
            output_field=IntegerField(),
        ),
        0,
    )
