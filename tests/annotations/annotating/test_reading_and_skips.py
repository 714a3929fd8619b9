"""How a screen was read (validated, stored by system, exported, counted on the progress page), and
skipped items coming back after the rest, with the end page and the home page agreeing."""
import json

import pytest
from django.test import Client

from annotations.annotating import services as assigning
from annotations.annotating.selectors import annotator_studies, has_work, study_progress
from annotations.models import Assignment, Response, Study
from annotations.results.exports import export_rankings
from tests.factories import annotators, full_ranking, open_study

pytestmark = pytest.mark.django_db


def systems_of(a):
    system = dict(Response.objects.filter(pk__in=a.handles.values()).values_list("pk", "system_id"))
    return {h: str(system[pk]) for h, pk in a.handles.items()}


def test_reading_is_stored_by_system_with_garbage_and_unknown_handles_dropped(researcher):
    study = open_study(researcher, items=1)
    (user,) = annotators(study, 1)
    a = assigning.next_assignment(study, user)
    first, second, *rest = a.shown_handles
    reading = {first: {"seconds": 12.34, "opened": True, "read_to_end": True},
               second: {"seconds": "lots", "opened": True},  # not a number: dropped
               "not-a-handle": {"seconds": 3, "opened": True},
               rest[0]: {"seconds": 1e12, "opened": "yes"}}  # bounded; only true is true
    assigning.submit_ranking(a, full_ranking(a), reading=reading)
    a.refresh_from_db()
    system = systems_of(a)
    assert a.reading[system[first]] == {"seconds": 12.3, "opened": True, "read_to_end": True}
    assert a.reading[system[second]] == {"seconds": 0.0, "opened": False, "read_to_end": False}
    assert a.reading[system[rest[0]]] == {"seconds": 86400.0, "opened": False, "read_to_end": False}
    assert set(a.reading) == set(system.values())  # every shown response, nothing else


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '"text"', "{" * 30000])
def test_an_unreadable_reading_field_stores_nothing_and_never_fails(raw):
    assert assigning.reading_from_form({"reading": raw}) == {}


def test_a_garbage_reading_field_over_http_is_no_500(researcher):
    study = open_study(researcher, items=1)
    (user,) = annotators(study, 1)
    client = Client()
    client.force_login(user)
    client.get(f"/annotate/{study.slug}/work/")
    a = Assignment.objects.get(annotator=user)
    data = {f"rank-{name}": json.dumps(groups) for name, groups in full_ranking(a).items()}
    data["reading"] = '{"x": [1, 2], "' + a.shown_handles[0] + '": {"seconds": NaN}}'
    reply = client.post(f"/annotate/{study.slug}/{a.public_id}/submit/", data)
    assert reply.status_code == 302
    a.refresh_from_db()
    assert a.status == "submitted" and a.reading == {}


def test_reading_is_exported_and_unopened_screens_are_counted(researcher):
    study = open_study(researcher, items=2, annotations_per_item=1)
    (user,) = annotators(study, 1)
    for opened_every in (True, False):
        a = assigning.next_assignment(study, user)
        reading = {h: {"seconds": 5, "opened": opened_every or i == 0, "read_to_end": False}
                   for i, h in enumerate(a.shown_handles)}
        assigning.submit_ranking(a, full_ranking(a), reading=reading)
    progress = study_progress(study)
    assert (progress.unopened, progress.reported_reading) == (1, 2)
    assert [row.unopened for row in progress.annotators] == [1]
    lines = [json.loads(line) for line in export_rankings(study)]
    assert len(lines) == 4 and all(set(line["reading"]) == {f"sys-{i}" for i in range(5)} for line in lines)


def test_a_skipped_item_comes_back_after_the_rest_as_the_same_assignment(researcher):
    study = open_study(researcher, items=3, annotations_per_item=2)
    (user,) = annotators(study, 1)
    skipped = assigning.next_assignment(study, user)
    assigning.skip_assignment(skipped)
    order = []
    while (a := assigning.next_assignment(study, user)) is not None:
        order.append(a.pk)
        assigning.submit_ranking(a, full_ranking(a))
    assert order[-1] == skipped.pk and len(order) == 3  # the other two first, then the skipped one
    assert Assignment.objects.filter(annotator=user).count() == 3


def test_after_a_skip_and_a_flag_the_end_page_and_home_agree(researcher):
    study = open_study(researcher, items=3, annotations_per_item=1)
    (user,) = annotators(study, 1)
    client = Client()
    client.force_login(user)
    flagged = assigning.next_assignment(study, user)
    assigning.flag_assignment(flagged, "broken")
    skipped = assigning.next_assignment(study, user)
    assigning.skip_assignment(skipped)
    done = assigning.next_assignment(study, user)
    assigning.submit_ranking(done, full_ranking(done))
    # The skipped one is still to do: both pages offer to continue.
    assert has_work(study, user) and annotator_studies(user)[0].remaining
    end = client.get(f"/annotate/{study.slug}/done/").content.decode()
    assert "Continue" in end and "All done" not in end
    home = client.get("/").content.decode()
    assert "Continue" in home
    back = assigning.next_assignment(study, user)
    assert back.pk == skipped.pk
    assigning.submit_ranking(back, full_ranking(back))
    end = client.get(f"/annotate/{study.slug}/done/").content.decode()
    assert "All done" in end and "2 of 3 done, 1 reported as a problem" in end
    home = client.get("/").content.decode()
    assert "Continue" not in home and "All done" in home


def test_render_markdown_renders_sanitised_texts_and_plain_is_shown_as_uploaded(researcher):
    study = open_study(researcher, items=1)
    Response.objects.update(text="## Part 1\n\n**Move** <script>alert(1)</script>")
    (user,) = annotators(study, 1)
    client = Client()
    client.force_login(user)
    plain = client.get(f"/annotate/{study.slug}/work/").content.decode()
    assert "## Part 1" in plain and "&lt;script&gt;" in plain
    Study.objects.filter(pk=study.pk).update(render_markdown=True)
    rendered = client.get(f"/annotate/{study.slug}/work/").content.decode()
    assert "<h2>Part 1</h2>" in rendered and "<strong>Move</strong>" in rendered and "<script>alert" not in rendered
