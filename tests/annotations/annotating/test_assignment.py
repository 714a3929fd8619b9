"""Handing out items and taking rankings back: quota, order, never twice, resume, leases, double
submit, skip and flag, attention checks, and what a stored ranking holds."""
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotations.annotating import services as assigning
from annotations.models import Assignment, Item, Ranking, Response, Study, System
from annotations.annotating.selectors import has_work, study_progress
from tests.factories import annotators, full_ranking, open_study

pytestmark = pytest.mark.django_db

HANDLE = re.compile(r"^[A-Za-z0-9_-]{12}$")


def rank_all(study, users, now=None):
    """Each annotator takes and submits items until nothing is left for them."""
    for user in users:
        while (a := assigning.next_assignment(study, user, now=now)) is not None:
            assigning.submit_ranking(a, full_ranking(a), now=now)


def test_each_item_gets_exactly_its_quota_from_different_annotators(researcher):
    study = open_study(researcher, items=3, annotations_per_item=2)
    users = annotators(study, 7)
    rank_all(study, users)
    for item in study.items.all():
        done = Assignment.objects.filter(item=item, status=Assignment.Status.SUBMITTED)
        assert done.count() == 2
        assert len(set(done.values_list("annotator", flat=True))) == 2
        # one ranking per criterion per annotation, nothing more
        assert Ranking.objects.filter(item=item).count() == 2 * 2
    # 3 items x 2 = 6 slots for 7 annotators: the last one found nothing
    assert assigning.next_assignment(study, users[-1]) is None
    assert Assignment.objects.filter(annotator=users[-1]).count() == 0


def test_items_with_fewest_completed_rankings_go_first(researcher):
    study = open_study(researcher, items=3, annotations_per_item=3)
    first, second, third = annotators(study, 3)
    a = assigning.next_assignment(study, first)
    assigning.submit_ranking(a, full_ranking(a))
    # p0 has one ranking now: the next annotator starts on p1
    b = assigning.next_assignment(study, second)
    assert (a.item.external_id, b.item.external_id) == ("p0", "p1")
    assigning.submit_ranking(b, full_ranking(b))
    assert assigning.next_assignment(study, third).item.external_id == "p2"


def test_imported_rankings_do_not_consume_the_quota(researcher):
    study = open_study(researcher, items=1, annotations_per_item=1)
    item = study.items.get()
    system_ids = list(System.objects.filter(study=study).values_list("pk", flat=True))
    for n in range(3):
        Ranking.objects.create(study=study, item=item, criterion=study.criteria.first(), annotator_label=f"ext-{n}",
                               ranking=[[s] for s in system_ids], source=Ranking.Source.IMPORTED)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    assert a is not None and a.item_id == item.pk


def test_an_annotator_never_gets_an_item_twice(researcher):
    study = open_study(researcher, items=2, annotations_per_item=5)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    assigning.submit_ranking(a, full_ranking(a))
    b = assigning.next_assignment(study, user)
    assert b.item_id != a.item_id
    assigning.flag_assignment(b, "broken")
    # submitted one item and flagged the other: nothing is left for them, though quota remains
    assert assigning.next_assignment(study, user) is None
    assert has_work(study, user) is False


def test_resume_returns_the_same_assignment_in_the_same_order(researcher):
    study = open_study(researcher, items=3, systems=7, responses_per_screen=4)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    again = assigning.next_assignment(study, user)
    assert again.pk == a.pk
    assert again.shown_handles == a.shown_handles and again.handles == a.handles
    assert Assignment.objects.filter(annotator=user).count() == 1


def test_display_is_a_random_subset_in_a_random_order_with_opaque_handles(researcher):
    study = open_study(researcher, items=1, systems=7, responses_per_screen=4, annotations_per_item=60)
    users = annotators(study, 60)
    item = study.items.get()
    item_responses = set(Response.objects.filter(item=item).values_list("pk", flat=True))
    orders, firsts, all_handles = set(), set(), []
    for user in users:
        a = assigning.next_assignment(study, user)
        assert len(a.shown_handles) == 4 and set(a.handles) == set(a.shown_handles)
        assert set(a.handles.values()) <= item_responses and len(set(a.handles.values())) == 4
        assert all(HANDLE.match(h) for h in a.shown_handles)
        orders.add(tuple(a.handles[h] for h in a.shown_handles))
        firsts.add(a.handles[a.shown_handles[0]])
        all_handles += a.shown_handles
    # 60 draws of 4 from 7 in order: a fixed or key-sorted order would give one or a few
    assert len(orders) > 40
    assert len(firsts) == 7
    assert len(set(all_handles)) == len(all_handles)  # never reused across assignments
    ids = {str(pk) for pk in item_responses} | {str(pk) for pk in System.objects.values_list("pk", flat=True)}
    assert not any(h in ids for h in all_handles)


def test_lease_expiry_returns_the_item_and_a_late_submission_is_refused_when_full(researcher):
    study = open_study(researcher, items=1, annotations_per_item=1, lease_minutes=10)
    slow, quick = annotators(study, 2)
    now = timezone.now()
    a = assigning.next_assignment(study, slow, now=now)
    assert assigning.next_assignment(study, quick, now=now + timedelta(minutes=9)) is None
    b = assigning.next_assignment(study, quick, now=now + timedelta(minutes=11))
    assert b is not None and b.item_id == a.item_id
    assigning.submit_ranking(b, full_ranking(b), now=now + timedelta(minutes=12))
    with pytest.raises(assigning.AssignmentRefused) as refused:
        assigning.submit_ranking(a, full_ranking(a), now=now + timedelta(minutes=13))
    assert refused.value.code == "late" and "not stored" in refused.value.message
    a.refresh_from_db()
    assert a.status == Assignment.Status.EXPIRED
    # nothing overwritten: only the quick annotator's rankings exist
    assert set(Ranking.objects.values_list("annotator", flat=True)) == {quick.pk}


def test_a_late_submission_is_kept_while_the_quota_allows(researcher):
    study = open_study(researcher, items=1, annotations_per_item=2, lease_minutes=5)
    slow, other = annotators(study, 2)
    now = timezone.now()
    a = assigning.next_assignment(study, slow, now=now)
    b = assigning.next_assignment(study, other, now=now + timedelta(minutes=6))  # the item went back
    assert b.item_id == a.item_id
    result = assigning.submit_ranking(a, full_ranking(a), now=now + timedelta(minutes=30))
    assert result.created
    a.refresh_from_db()
    assert a.status == Assignment.Status.SUBMITTED and a.seconds == pytest.approx(30 * 60)


def test_an_expired_lease_is_renewed_when_its_annotator_returns_and_the_quota_allows(researcher):
    study = open_study(researcher, items=2, annotations_per_item=1, lease_minutes=5)
    (user,) = annotators(study, 1)
    now = timezone.now()
    a = assigning.next_assignment(study, user, now=now)
    back = assigning.next_assignment(study, user, now=now + timedelta(minutes=20))
    assert back.pk == a.pk and back.shown_handles == a.shown_handles
    assert back.expires_at == now + timedelta(minutes=25)


def test_an_expired_lease_whose_item_filled_up_gives_way_to_a_new_item(researcher):
    study = open_study(researcher, items=2, annotations_per_item=1, lease_minutes=5)
    away, other = annotators(study, 2)
    now = timezone.now()
    a = assigning.next_assignment(study, away, now=now)
    b = assigning.next_assignment(study, other, now=now + timedelta(minutes=6))
    assert b.item_id == a.item_id  # the expired lease's item went back to the pool, first in line
    assigning.submit_ranking(b, full_ranking(b), now=now + timedelta(minutes=7))
    fresh = assigning.next_assignment(study, away, now=now + timedelta(minutes=8))
    a.refresh_from_db()
    assert a.status == Assignment.Status.EXPIRED
    assert fresh.item_id != a.item_id and fresh.item.external_id == "p1"


def test_submitting_twice_stores_one_ranking(researcher):
    study = open_study(researcher, items=1)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    first = assigning.submit_ranking(a, full_ranking(a))
    second = assigning.submit_ranking(a, full_ranking(a))
    assert first.created and not second.created
    assert Ranking.objects.filter(assignment=a).count() == 2  # one per criterion


@pytest.mark.parametrize("change,code", [
    (lambda order: [[h] for h in order[:-1]], "incomplete"),
    (lambda order: [[h] for h in order] + [["zzzzzzzzzzzz"]], "mismatch"),
    (lambda order: [[h] for h in order] + [[order[0]]], "mismatch"),
    (lambda order: [order[:2]] + [[h] for h in order[2:]], "ties"),
    (lambda order: "not a list", "incomplete"),
])
def test_incomplete_or_foreign_rankings_are_refused_and_nothing_is_stored(researcher, change, code):
    study = open_study(researcher, items=1, allow_ties=False)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    rankings = full_ranking(a)
    rankings["comforting"] = change(list(a.shown_handles))
    with pytest.raises(assigning.RankingInvalid) as refused:
        assigning.submit_ranking(a, rankings)
    assert refused.value.code == code
    assert Ranking.objects.count() == 0
    a.refresh_from_db()
    assert a.status == Assignment.Status.ACTIVE


def test_the_incomplete_message_names_the_missing_letters(researcher):
    study = open_study(researcher, items=1)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    rankings = full_ranking(a)
    rankings["overall"] = [[a.shown_handles[0]], [a.shown_handles[2]]]
    with pytest.raises(assigning.RankingInvalid, match="Response B, Response D, Response E not placed yet"):
        assigning.submit_ranking(a, rankings)


def test_ties_are_stored_as_tie_groups_where_allowed(researcher):
    study = open_study(researcher, items=1, allow_ties=True)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    assigning.submit_ranking(a, full_ranking(a, ties=True))
    ranking = Ranking.objects.filter(assignment=a).first()
    assert [len(g) for g in ranking.ranking] == [2, 1, 1, 1]


def test_a_stored_ranking_holds_systems_in_tie_groups_the_display_order_label_and_time(researcher):
    study = open_study(researcher, items=1, systems=5)
    (user,) = annotators(study, 1)
    now = timezone.now()
    a = assigning.next_assignment(study, user, now=now)
    assert a.first_shown_at == now
    rankings = full_ranking(a)
    rankings["overall"] = [[h] for h in reversed(a.shown_handles)]
    assigning.submit_ranking(a, rankings, rationale="  B was kind  ", now=now + timedelta(seconds=42))
    system_of = dict(Response.objects.values_list("pk", "system_id"))
    shown = [system_of[a.handles[h]] for h in a.shown_handles]
    overall = Ranking.objects.get(assignment=a, criterion__name="overall")
    assert overall.ranking == [[s] for s in reversed(shown)]
    assert overall.display_order == shown
    assert overall.annotator_label == f"user-{user.pk}" and overall.annotator == user
    assert overall.source == Ranking.Source.ANNOTATED and overall.seconds == pytest.approx(42)
    assert overall.attention_passed is None
    a.refresh_from_db()
    assert (a.status, a.seconds, a.rationale) == (Assignment.Status.SUBMITTED, pytest.approx(42), "B was kind")


def test_skip_returns_the_item_to_others_and_to_the_skipper_only_when_its_quota_allows(researcher):
    study = open_study(researcher, items=1, annotations_per_item=1)
    skipper, other = annotators(study, 2)
    a = assigning.next_assignment(study, skipper)
    assert assigning.next_assignment(study, other) is None
    assigning.skip_assignment(a)
    assigning.skip_assignment(a)  # repeated: no error, no change
    taken = assigning.next_assignment(study, other)
    assert taken.item_id == a.item_id
    assert assigning.next_assignment(study, skipper) is None  # the other annotator holds its one place
    assert has_work(study, skipper) is False
    with pytest.raises(assigning.AssignmentRefused):
        assigning.submit_ranking(a, full_ranking(a))


def test_flag_needs_a_reason_releases_the_item_and_shows_on_the_progress_page(researcher):
    study = open_study(researcher, items=1, annotations_per_item=1)
    flagger, other = annotators(study, 2)
    a = assigning.next_assignment(study, flagger)
    with pytest.raises(assigning.AssignmentRefused, match="Say briefly"):
        assigning.flag_assignment(a, "   ")
    assigning.flag_assignment(a, "Response C tells the person to hurt themselves")
    assert assigning.next_assignment(study, other).item_id == a.item_id
    progress = study_progress(study)
    assert [f.flag_reason for f in progress.flagged] == ["Response C tells the person to hurt themselves"]
    submitted = assigning.next_assignment(study, other)
    assigning.submit_ranking(submitted, full_ranking(submitted))
    with pytest.raises(assigning.AssignmentRefused, match="already sent"):
        assigning.skip_assignment(submitted)


def test_a_study_that_is_not_open_hands_out_nothing(researcher):
    study = open_study(researcher, items=2)
    (user,) = annotators(study, 1)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    study.refresh_from_db()
    assert assigning.next_assignment(study, user) is None


def test_items_with_fewer_than_two_responses_are_not_handed_out(researcher):
    study = open_study(researcher, items=2)
    Response.objects.filter(item__external_id="p0").exclude(system__name="sys-0").delete()
    (user,) = annotators(study, 1)
    assert assigning.next_assignment(study, user).item.external_id == "p1"


def test_a_non_member_gets_no_assignment(researcher):
    study = open_study(researcher, items=1)
    with pytest.raises(assigning.NotAnnotator):
        assigning.next_assignment(study, researcher)


@pytest.mark.parametrize("rule,groups,expected", [
    ("not_first", [[9], [1], [2]], False),
    ("not_first", [[1, 9], [2]], False),
    ("not_first", [[1], [9], [2]], True),
    ("first", [[9], [1]], True),
    ("first", [[9, 1], [2]], False),
    ("last", [[1], [2], [9]], True),
    ("last", [[1], [2, 9]], False),
    ("last", [[1], [2]], None),
])
def test_attention_rules(rule, groups, expected):
    assert assigning.attention_passed(Item(attention_system_id=9, attention_rule=rule), groups) is expected


def test_attention_checks_are_shown_scored_per_ranking_and_summed_per_annotator(researcher):
    study = open_study(researcher, items=1, systems=6, responses_per_screen=3, annotations_per_item=10)
    call_command("mark_attention_check", study.slug, "p0", "--system", "sys-4", "--rule", "not_first")
    item = Item.objects.get(study=study)
    assert (item.attention_system.name, item.attention_rule) == ("sys-4", "not_first")
    planted = Response.objects.get(item=item, system__name="sys-4").pk
    careless, careful = annotators(study, 2)
    results = {}
    for user, planted_first in ((careless, True), (careful, False)):
        a = assigning.next_assignment(study, user)
        assert planted in a.handles.values()  # 3 of 6 shown, the planted one always among them
        handle = next(h for h, pk in a.handles.items() if pk == planted)
        others = [h for h in a.shown_handles if h != handle]
        order = [handle] + others if planted_first else others + [handle]
        assigning.submit_ranking(a, {c: [[h] for h in order] for c in ("overall", "comforting")})
        results[user.pk] = set(Ranking.objects.filter(annotator=user).values_list("attention_passed", flat=True))
    assert results == {careless.pk: {False}, careful.pk: {True}}
    rows = {row.username: row for row in study_progress(study).annotators}
    assert rows[careless.username].attention_rate == 0.0 and rows[careless.username].attention_checked == 2
    assert rows[careful.username].attention_rate == 1.0
    # changing the rule scores the stored rankings again; clearing it forgets the results
    call_command("mark_attention_check", study.slug, "p0", "--system", "sys-4", "--rule", "first")
    assert set(Ranking.objects.filter(annotator=careless).values_list("attention_passed", flat=True)) == {True}
    call_command("mark_attention_check", study.slug, "p0", "--clear")
    assert set(Ranking.objects.values_list("attention_passed", flat=True)) == {None}


@pytest.mark.parametrize("args,message", [
    (["nope", "p0", "--system", "sys-1"], "no study 'nope'"),
    (["rank", "p9", "--system", "sys-1"], "has no item 'p9'"),
    (["rank", "p0", "--system", "GHOST"], "no system 'GHOST'"),
    (["rank", "p0"], "give --system"),
])
def test_mark_attention_check_errors_say_what_to_fix(researcher, args, message):
    open_study(researcher, items=1)
    with pytest.raises(CommandError, match=message):
        call_command("mark_attention_check", *args)
