"""A leaderboard is never fresh and wrong: whatever changes what it shows without adding a ranking
(an attention check set or cleared, the pass rate that leaves annotators out) marks it stale."""
import pytest

from annotations.annotating import services as assigning
from annotations.models import Response
from tests.factories import annotators, open_study

pytestmark = pytest.mark.django_db


def _rank(study, user, planted_first):
    """The annotator ranks every item they are given, putting sys-2 first or last."""
    while (assignment := assigning.next_assignment(study, user)) is not None:
        system_of = dict(Response.objects.filter(pk__in=assignment.handles.values())
                         .values_list("pk", "system__name"))
        handles = sorted(assignment.shown_handles,
                         key=lambda h: (system_of[assignment.handles[h]] != "sys-2") == planted_first)
        assigning.submit_ranking(assignment, {"overall": [[h] for h in handles]})


def _board(api):
    reply = api.get("/api/studies/checked/leaderboard/")
    assert reply.status_code == 200
    doc = reply.json()
    win1 = {s["system"]: s["win1"] for s in doc["criteria"]["overall"]["systems"]}
    return doc["excluded_annotators"], win1


def test_an_attention_check_set_after_rankings_exist_changes_the_leaderboard(researcher, api, web):
    study = open_study(researcher, slug="checked", items=2, systems=3, responses_per_screen=3,
                       annotations_per_item=2, criteria=("overall",))
    careful, careless = annotators(study, 2)
    _rank(study, careful, planted_first=False)
    _rank(study, careless, planted_first=True)
    excluded, win1 = _board(api)  # computed and cached
    assert excluded == [] and win1["sys-2"] == pytest.approx(0.5)

    # sys-2's answer to p0 becomes a planted poor response: the careless annotator fails the check.
    reply = web.post("/studies/checked/attention-check/p0/", {"system": "sys-2", "rule": "not_first"})
    assert reply.status_code == 302
    excluded, win1 = _board(api)
    assert excluded == ["annotator-2"] and win1["sys-2"] == 0.0
    page = web.get("/studies/checked/leaderboard/").content.decode()
    assert "1 annotator left out for failing attention checks" in page

    # Cleared again: everyone counts again.
    web.post("/studies/checked/attention-check/p0/", {"clear": "1"})
    excluded, win1 = _board(api)
    assert excluded == [] and win1["sys-2"] == pytest.approx(0.5)


def test_a_lower_pass_rate_on_the_settings_page_brings_annotators_back(researcher, api, web):
    study = open_study(researcher, slug="checked", items=2, systems=3, responses_per_screen=3,
                       annotations_per_item=2, criteria=("overall",))
    careful, careless = annotators(study, 2)
    _rank(study, careful, planted_first=False)
    _rank(study, careless, planted_first=True)
    web.post("/studies/checked/attention-check/p0/", {"system": "sys-2", "rule": "not_first"})
    assert _board(api)[0] == ["annotator-2"]
    settings = {"title": study.title, "instructions": "", "responses_per_screen": 3, "annotations_per_item": 2,
                "lease_minutes": 30, "attention_min_pass_rate": 0}
    assert web.post("/studies/checked/edit/", settings).status_code == 302
    assert _board(api)[0] == []


def test_the_pass_rate_must_be_a_share(researcher, api):
    open_study(researcher, slug="checked")
    reply = api.patch("/api/studies/checked/", {"attention_min_pass_rate": 2}, format="json")
    assert reply.status_code == 400 and "between 0 and 1" in reply.json()["attention_min_pass_rate"]
