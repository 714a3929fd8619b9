"""Reads shared by pages, the API and commands: what a study holds and what is missing."""
from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from .models import Item, Response, System

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
    def complete(self):
        return self.items > 0 and self.responses == self.expected

    @property
    def share(self):
        return self.responses / self.expected if self.expected else 0.0


def study_overview(study):
    items = study.items.count()
    systems = list(study.systems.annotate(n=Count("responses")).order_by("name"))
    coverage = [
        SystemCoverage(s, s.n, items - s.n, s.n / items if items else 0.0) for s in systems
    ]
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
