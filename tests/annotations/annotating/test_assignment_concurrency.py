"""Many annotators asking at once, on PostgreSQL: no item is ever over-assigned, nobody gets an item
twice, and late submissions racing new leases never push an item past its quota."""
import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from annotations.annotating import services as assigning
from annotations.models import Assignment, Item
from tests.factories import annotators, full_ranking, open_study

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 50  # each holds a database connection; PostgreSQL's default limit is 100 for everyone
ROUNDS = 6


def run_at_once(work, arguments):
    """Start one thread per argument, release them together, and return what they raised."""
    barrier = threading.Barrier(len(arguments))
    errors = []

    def target(argument):
        try:
            barrier.wait(timeout=60)
            work(argument)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the assertion
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(a,)) for a in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (a deadlock?)"
    return errors


def live_per_item(study, now):
    return dict(Assignment.objects.live(now).filter(study=study).values("item")
                .annotate(n=Count("pk")).values_list("item", "n"))


def assert_within_quota(study, now, exactly=False):
    live = live_per_item(study, now)
    item_ids = Item.objects.filter(study=study).values_list("pk", flat=True)
    counts = [live.get(pk, 0) for pk in item_ids]
    assert max(counts) <= study.annotations_per_item, f"over-assigned: {counts}"
    if exactly:
        assert counts == [study.annotations_per_item] * len(counts), counts
    pairs = Assignment.objects.filter(study=study).values("item", "annotator").annotate(n=Count("pk"))
    assert all(p["n"] == 1 for p in pairs), "an annotator got the same item twice"


def test_many_annotators_asking_at_once_never_over_assign(researcher):
    rng = random.Random(11)
    for round_number in range(ROUNDS):
        # Fewer slots (5 items x 3) than annotators asking, so every request fights for them.
        study = open_study(researcher, slug=f"race-{round_number}", items=5, annotations_per_item=3)
        users = annotators(study, THREADS)
        plans = {user.pk: rng.choice(["submit", "submit", "skip", "keep"]) for user in users}

        def work(user):
            for _ in range(4):
                current = assigning.next_assignment(study, user)
                if current is None:
                    return
                if plans[user.pk] == "submit":
                    assigning.submit_ranking(current, full_ranking(current))
                elif plans[user.pk] == "skip":
                    assigning.skip_assignment(current)
                else:
                    return

        errors = run_at_once(work, users)
        assert errors == []
        # Enough demand for every slot: each item ends with exactly its quota, never more.
        assert_within_quota(study, timezone.now(), exactly=True)


def test_late_submissions_racing_new_leases_never_exceed_the_quota(researcher):
    for round_number in range(ROUNDS):
        study = open_study(researcher, slug=f"late-{round_number}", items=4, annotations_per_item=2, lease_minutes=1)
        late_ones = annotators(study, 8, prefix="late")
        newcomers = annotators(study, THREADS - 8, prefix="new")
        earlier = timezone.now() - timedelta(minutes=5)
        # Two expired leases per item, both still able to submit while the quota allows.
        leases = [assigning.next_assignment(study, user, now=earlier) for user in late_ones]
        assert all(lease is not None for lease in leases)
        refused = []

        def work(who):
            kind, payload = who
            if kind == "late":
                try:
                    assigning.submit_ranking(payload, full_ranking(payload))
                except assigning.AssignmentRefused as exc:
                    assert exc.code == "late"
                    refused.append(payload.pk)
            else:
                current = assigning.next_assignment(study, payload)
                if current is not None:
                    assigning.submit_ranking(current, full_ranking(current))

        errors = run_at_once(work, [("late", lease) for lease in leases] + [("new", u) for u in newcomers])
        assert errors == []
        assert_within_quota(study, timezone.now(), exactly=True)
        # A refused late submission left its lease expired and stored nothing.
        for lease in Assignment.objects.filter(pk__in=refused):
            assert lease.status == Assignment.Status.EXPIRED and not lease.rankings.exists()
