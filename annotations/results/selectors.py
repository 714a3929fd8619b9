"""Reads of the results area: a study's rankings as the statistics take them, attention-check pass
rates, and the state a cached leaderboard must match to be fresh.
"""
import orjson

from django.db.models import Count, Max, Q, TextField
from django.db.models.functions import Cast

from annotations import metrics
from annotations.models import LeaderboardSnapshot, Ranking, Study, System


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


def figures_state(study):
    """(how many rankings, newest ranking id, the study's figures_version): a cached leaderboard is
    fresh only while all three are what it was computed from (see Study.figures_changed)."""
    state = Ranking.objects.filter(study=study).aggregate(n=Count("id"), last=Max("id"))
    version = Study.objects.filter(pk=study.pk).values_list("figures_version", flat=True).first() or 0
    return state["n"], state["last"] or 0, version


def snapshot(study, options):
    return LeaderboardSnapshot.objects.filter(study=study, options=options.key).first()


def snapshot_keys(study):
    """The option sets someone has looked at for this study."""
    return set(LeaderboardSnapshot.objects.filter(study=study).values_list("options", flat=True))
