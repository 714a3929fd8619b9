"""The researcher's view of annotation: progress, who is working, time, flags, attention checks,
the invitation and crowd links, and marking an item as an attention check from its page."""
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.annotating import services as assigning
from annotations.models import Item, Study
from tests.factories import UserFactory, annotators, open_study

pytestmark = pytest.mark.django_db


def flat(html):
    return " ".join(html.split())


def test_progress_page_shows_done_working_time_flags_and_attention(web, researcher):
    study = open_study(researcher, slug="prog", items=3, annotations_per_item=1, systems=4, responses_per_screen=4)
    for item in Item.objects.filter(study=study):
        assigning.set_attention_check(item, "sys-3", "not_first")
    ana, ben, cleo = annotators(study, 3)
    now = timezone.now()
    for user, seconds in ((ana, 30), (ben, 90)):
        a = assigning.next_assignment(study, user, now=now)
        planted = next(h for h, pk in a.handles.items() if pk == a.item.responses.get(system__name="sys-3").pk)
        order = [planted] + [h for h in a.shown_handles if h != planted]
        if user == ben:
            order = order[1:] + order[:1]
        assigning.submit_ranking(a, {c: [[h] for h in order] for c in ("overall", "comforting")},
                                 now=now + timedelta(seconds=seconds))
    flagged = assigning.next_assignment(study, ana, now=now)
    assigning.flag_assignment(flagged, "Response B is gibberish")
    working = assigning.next_assignment(study, cleo, now=now)
    page = flat(web.get(f"/studies/{study.slug}/progress/").content.decode())
    assert "<strong>2</strong> of 3" in page  # p0 and p1 have their one ranking each
    assert "<strong>2</strong> of 3 required" in page
    assert "Median time per item</dt><dd>60 s" in page
    assert f"<td>{cleo.username}</td> <td><a href=\"/studies/prog/items/{working.item.external_id}/\">" in page
    assert "Response B is gibberish" in page
    assert "0 % <small class=\"muted\">(0/2)</small>" in page  # ana ranked the planted response first
    assert "100 % <small class=\"muted\">(2/2)</small>" in page
    assert f"/join/{study.invite_token}/" in page
    assert "Annotation progress" in web.get(f"/studies/{study.slug}/").content.decode()


def test_crowd_settings_links_and_a_new_invitation(web, researcher):
    study = open_study(researcher, slug="crowd", items=1)
    reply = web.post(f"/studies/{study.slug}/progress/settings/", {
        "crowd_platform": "prolific", "completion_code": " CODE1 ",
        "completion_url": "https://app.prolific.com/submissions/complete?cc=CODE1"})
    assert reply.status_code == 302
    study.refresh_from_db()
    assert (study.crowd_platform, study.completion_code) == ("prolific", "CODE1")
    page = web.get(f"/studies/{study.slug}/progress/").content.decode()
    assert "?PROLIFIC_PID={{%PROLIFIC_PID%}}&amp;STUDY_ID={{%STUDY_ID%}}&amp;SESSION_ID={{%SESSION_ID%}}" in page
    old_token = study.invite_token
    web.post(f"/studies/{study.slug}/progress/invite/")
    study.refresh_from_db()
    assert study.invite_token != old_token
    assert web.get(f"/join/{old_token}/").status_code == 404


def test_marking_an_attention_check_from_the_item_page(web, researcher):
    study = open_study(researcher, slug="check", items=1)
    page = web.get(f"/studies/{study.slug}/items/p0/").content.decode()
    assert "Mark as a check" in page
    reply = web.post(f"/studies/{study.slug}/attention-check/p0/", {"system": "sys-2", "rule": "last"}, follow=True)
    assert "is now an attention check" in reply.content.decode()
    item = Item.objects.get(study=study)
    assert (item.attention_system.name, item.attention_rule) == ("sys-2", "last")
    page = reply.content.decode()
    assert "must be ranked last, alone" in page and "Clear" in page
    web.post(f"/studies/{study.slug}/attention-check/p0/", {"clear": "1"})
    assert not Item.objects.get(study=study).is_attention_check
    bad = web.post(f"/studies/{study.slug}/attention-check/p0/", {"system": "nope", "rule": "last"}, follow=True)
    assert "Choose a system and a rule" in bad.content.decode()


def test_other_researchers_get_404_on_progress_pages(client, researcher):
    study = open_study(researcher, slug="private", items=1)
    client.force_login(UserFactory(username="mallory"))
    assert client.get(f"/studies/{study.slug}/progress/").status_code == 404
    assert client.post(f"/studies/{study.slug}/progress/settings/", {"crowd_platform": "mturk"}).status_code == 404
    assert Study.objects.get(pk=study.pk).crowd_platform == "none"
