"""Who reaches the annotators' pages: anonymous visitors, outsiders, annotators of other studies,
invited and crowd annotators; what annotators cannot reach; completion codes; the Chinese UI."""
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client

from annotations.annotating import services as assigning
from annotations.models import Assignment, CrowdParticipant, Membership, Ranking, Study
from tests.factories import UserFactory, annotators, full_ranking, open_study

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def study(researcher):
    return open_study(researcher, slug="pilot", items=2, annotations_per_item=2)


@pytest.fixture
def annotator(study):
    (user,) = annotators(study, 1)
    return user


@pytest.fixture
def lease(study, annotator):
    return assigning.next_assignment(study, annotator)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def annotator_urls(study, lease):
    base = f"/annotate/{study.slug}"
    return [("get", f"{base}/"), ("get", f"{base}/work/"), ("get", f"{base}/done/"),
            ("post", f"{base}/{lease.public_id}/submit/"), ("post", f"{base}/{lease.public_id}/skip/"),
            ("post", f"{base}/{lease.public_id}/flag/")]


def test_anonymous_visitors_are_sent_to_log_in(study, lease):
    client = Client()
    for method, url in annotator_urls(study, lease):
        reply = getattr(client, method)(url)
        assert reply.status_code == 302 and reply["Location"].startswith("/login/"), url
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.ACTIVE


def test_outsiders_and_annotators_of_other_studies_get_404(study, lease, researcher):
    other_study = open_study(researcher, slug="other", items=1)
    (other_annotator,) = annotators(other_study, 1, prefix="o")
    for user in [UserFactory(username="stranger"), other_annotator]:
        client = logged_in(user)
        for method, url in annotator_urls(study, lease):
            assert getattr(client, method)(url).status_code == 404, (user, url)
    assert not Ranking.objects.exists()


def test_a_fellow_annotator_cannot_act_on_someone_elses_assignment(study, lease):
    (colleague,) = annotators(study, 1, prefix="colleague")
    client = logged_in(colleague)
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
    base = f"/annotate/{study.slug}/{lease.public_id}"
    assert client.post(f"{base}/submit/", data).status_code == 404
    assert client.post(f"{base}/skip/").status_code == 404
    assert client.post(f"{base}/flag/", {"flag_reason": "x"}).status_code == 404
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.ACTIVE and not Ranking.objects.exists()


def test_researcher_pages_the_api_and_the_leaderboard_stay_closed_to_annotators(study, annotator):
    client = logged_in(annotator)
    s = study.slug
    for url in [f"/studies/{s}/", f"/studies/{s}/progress/", f"/studies/{s}/items/p0/", f"/studies/{s}/edit/",
                f"/studies/{s}/researchers/", f"/studies/{s}/leaderboard/", f"/api/studies/{s}/",
                f"/api/studies/{s}/systems/", f"/api/studies/{s}/responses/", f"/api/studies/{s}/items/"]:
        assert client.get(url).status_code == 404, url
    for url in [f"/studies/{s}/upload/", f"/studies/{s}/status/", f"/studies/{s}/progress/settings/",
                f"/studies/{s}/progress/invite/", f"/studies/{s}/attention-check/p0/"]:
        assert client.post(url, {"status": "closed", "system": "sys-0", "rule": "first"}).status_code == 404, url
    assert client.get("/api/studies/").json()["count"] == 0
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and not any(i.is_attention_check for i in study.items.all())


def test_the_ranking_screen_works_in_place_with_htmx(study, annotator):
    client = logged_in(annotator)
    page = client.get(f"/annotate/{study.slug}/work/")
    assert page.status_code == 200
    lease = Assignment.objects.get(annotator=annotator)
    text = page.content.decode()
    assert text.count('<article class="response"') == 5 and "0 of 2 done" in text
    base = f"/annotate/{study.slug}/{lease.public_id}"
    refused = client.post(f"{base}/submit/", {"rank-overall": "[]"}, **HTMX)
    assert refused.status_code == 200 and refused["HX-Retarget"] == "#rank-message"
    assert "Place every response for “overall”" in refused.content.decode()
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
    accepted = client.post(f"{base}/submit/", data, **HTMX)
    body = accepted.content.decode()
    assert accepted.status_code == 200 and body.startswith('<div id="work"') and "1 of 2 done" in body
    assert "<html" not in body  # a fragment: no full page reload
    following = Assignment.objects.get(annotator=annotator, status="active")
    assert f"/{following.public_id}/submit/" in body
    replayed = client.post(f"{base}/submit/", data, **HTMX)  # the same answer: the same next item
    assert replayed.status_code == 200 and f"/{following.public_id}/submit/" in replayed.content.decode()
    assert Ranking.objects.filter(annotator=annotator).count() == 2


def test_a_plain_post_without_javascript_still_works(study, annotator):
    client = logged_in(annotator)
    client.get(f"/annotate/{study.slug}/work/")
    lease = Assignment.objects.get(annotator=annotator)
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
    reply = client.post(f"/annotate/{study.slug}/{lease.public_id}/submit/", data)
    assert reply.status_code == 302 and reply["Location"] == f"/annotate/{study.slug}/work/"
    again = client.post(f"/annotate/{study.slug}/{lease.public_id}/submit/", data, follow=True)
    assert again.status_code == 200 and "1 of 2 done" in again.content.decode()
    assert Ranking.objects.filter(annotator=annotator).count() == 2


def test_skip_and_flag_from_the_screen(study, annotator):
    client = logged_in(annotator)
    client.get(f"/annotate/{study.slug}/work/")
    first = Assignment.objects.get(annotator=annotator)
    no_reason = client.post(f"/annotate/{study.slug}/{first.public_id}/flag/", {"flag_reason": " "}, **HTMX)
    assert "Say briefly what is wrong" in no_reason.content.decode()
    flagged = client.post(f"/annotate/{study.slug}/{first.public_id}/flag/", {"flag_reason": "offensive"}, **HTMX)
    assert flagged.status_code == 200 and 'id="work"' in flagged.content.decode()
    second = Assignment.objects.get(annotator=annotator, status="active")
    skipped = client.post(f"/annotate/{study.slug}/{second.public_id}/skip/", **HTMX)
    # Nothing new is left, so the skipped item comes straight back, and the screen says why.
    assert "comes back after the others" in skipped.content.decode()
    assert Assignment.objects.get(annotator=annotator, status="active").pk == second.pk
    first.refresh_from_db()
    assert (first.status, first.flag_reason) == ("flagged", "offensive")


def test_join_link_sign_up_and_log_in(study, researcher):
    url = f"/join/{study.invite_token}/"
    client = Client()
    page = client.get(url)
    assert page.status_code == 200 and study.title in page.content.decode()
    reply = client.post(url, {"username": "nadia", "password1": "a-long-pass-phrase-9",
                              "password2": "a-long-pass-phrase-9"})
    assert reply.status_code == 302 and reply["Location"] == f"/annotate/{study.slug}/"
    membership = Membership.objects.get(study=study, user__username="nadia")
    assert membership.role == "annotator"
    assert client.get(f"/annotate/{study.slug}/work/").status_code == 200
    # an existing account joins by opening the link while logged in
    existing = UserFactory(username="omar")
    assert logged_in(existing).get(url)["Location"] == f"/annotate/{study.slug}/"
    assert Membership.objects.get(study=study, user=existing).role == "annotator"
    # a researcher of the study stays a researcher (and blind annotators stay separate)
    assert logged_in(researcher).get(url)["Location"] == f"/studies/{study.slug}/"
    assert Membership.objects.get(study=study, user=researcher).role == "researcher"


def test_join_refuses_bad_tokens_reserved_names_and_closed_studies(study):
    assert Client().get("/join/not-the-token/").status_code == 404
    reply = Client().post(f"/join/{study.invite_token}/", {
        "username": "prolific-abc", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"})
    assert reply.status_code == 200 and "reserved" in reply.content.decode()
    assert not get_user_model().objects.filter(username="prolific-abc").exists()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    assert "closed" in Client().get(f"/join/{study.invite_token}/").content.decode()


def test_prolific_entry_logs_in_one_user_per_participant_id(study):
    Study.objects.filter(pk=study.pk).update(crowd_platform="prolific")
    url = f"/join/{study.invite_token}/?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=s1&SESSION_ID=sess-1"
    client = Client()
    reply = client.get(url)
    assert reply.status_code == 302 and reply["Location"] == f"/annotate/{study.slug}/"
    user = get_user_model().objects.get(username="prolific-5f1a2b3c4d5e6f7a8b9c0d1e")
    assert not user.has_usable_password()
    membership = Membership.objects.get(study=study, user=user)
    participant = CrowdParticipant.objects.get(study=study, user=user)
    assert (membership.role, participant.participant_id, participant.session_id) == (
        "annotator", "5f1a2b3c4d5e6f7a8b9c0d1e", "sess-1")
    assert client.get(f"/annotate/{study.slug}/work/").status_code == 200
    # the same participant comes back in a new session (same browser): same user, session updated
    client.get(url.replace("sess-1", "sess-2"))
    assert get_user_model().objects.filter(username__startswith="prolific-").count() == 1
    participant.refresh_from_db()
    assert participant.session_id == "sess-2"
    # someone else's id logs in someone else, once a browser already logged in says so (test_crowd_entry.py)
    other = url.replace("5f1a2b3c4d5e6f7a8b9c0d1e", "60aa11bb22cc33dd44ee55ff")
    client.post(other, {"continue": "1"})
    assert int(client.session["_auth_user_id"]) == get_user_model().objects.get(
        username="prolific-60aa11bb22cc33dd44ee55ff").pk
    # an id that is not one is refused
    assert Client().get(f"/join/{study.invite_token}/?PROLIFIC_PID=../../x").status_code == 400


def test_mturk_style_entry_and_platform_mismatch(study):
    Study.objects.filter(pk=study.pk).update(crowd_platform="mturk")
    client = Client()
    client.get(f"/join/{study.invite_token}/?worker_id=A1B2C3D4E5&assignment_id=ASG9")
    participant = CrowdParticipant.objects.get(study=study, participant_id="A1B2C3D4E5")
    assert participant.user.username == "mturk-A1B2C3D4E5" and participant.session_id == "ASG9"
    assert Membership.objects.get(study=study, user=participant.user).role == "annotator"
    # a Prolific id on an MTurk study logs nobody in: the ordinary join page shows
    page = Client().get(f"/join/{study.invite_token}/?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e")
    assert page.status_code == 200 and "Create account and join" in page.content.decode()


def test_crowd_annotators_get_the_completion_code_when_they_finish(study):
    Study.objects.filter(pk=study.pk).update(crowd_platform="prolific", completion_code="C0DE42",
                                             completion_url="https://app.prolific.com/submissions/complete?cc=C0DE42")
    client = Client()
    client.get(f"/join/{study.invite_token}/?PROLIFIC_PID=abcdef0123&SESSION_ID=s")
    early = client.get(f"/annotate/{study.slug}/done/").content.decode()
    assert "C0DE42" not in early  # nothing done yet: no code
    client.get(f"/annotate/{study.slug}/work/")
    user = get_user_model().objects.get(username="prolific-abcdef0123")
    last = None
    while (lease := Assignment.objects.filter(annotator=user, status="active").first()) is not None:
        data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
        last = client.post(f"/annotate/{study.slug}/{lease.public_id}/submit/", data, **HTMX)
    assert last["HX-Redirect"] == f"/annotate/{study.slug}/done/"
    done = client.get(f"/annotate/{study.slug}/done/").content.decode()
    assert '<code id="completion-code">C0DE42</code>' in done
    assert 'http-equiv="refresh" content="8;url=https://app.prolific.com/submissions/complete?cc=C0DE42"' in done
    assert Membership.objects.get(user=user).completed_at is not None


def test_home_shows_annotators_their_work_and_researchers_their_studies(study, annotator, researcher):
    page = logged_in(annotator).get("/").content.decode()
    assert "Your annotation work" in page and study.title in page
    assert f'href="/annotate/{study.slug}/"' in page and "Your studies" not in page
    assert "API token" not in page
    assigning.next_assignment(study, annotator)
    assert "Resume" in logged_in(annotator).get("/").content.decode()
    researcher_page = logged_in(researcher).get("/").content.decode()
    assert "Your studies" in researcher_page and "Your annotation work" not in researcher_page


def test_the_start_page_shows_instructions_and_the_state_of_the_study(study, annotator):
    Study.objects.filter(pk=study.pk).update(instructions="Rank **kindly**.<script>alert(1)</script>")
    page = logged_in(annotator).get(f"/annotate/{study.slug}/").content.decode()
    assert "<strong>kindly</strong>" in page and "<script>alert(1)" not in page
    assert f'href="/annotate/{study.slug}/work/"' in page
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    page = logged_in(annotator).get(f"/annotate/{study.slug}/").content.decode()
    assert "has not opened yet" in page and f'href="/annotate/{study.slug}/work/"' not in page
    assert logged_in(annotator).get(f"/annotate/{study.slug}/work/")["Location"] == f"/annotate/{study.slug}/done/"


def test_the_chinese_interface_renders(study, annotator):
    client = logged_in(annotator)
    reply = client.post("/i18n/setlang/", {"language": "zh-hans", "next": f"/annotate/{study.slug}/work/"})
    assert reply.status_code == 302
    page = client.get(f"/annotate/{study.slug}/work/").content.decode()
    assert '<html lang="zh-hans">' in page
    for text in ["为回复排序", "回复 A", "提交排序", "跳过这一条", "已完成 0 / 2", "你的排序"]:
        assert text in page, text
    assert "Submit ranking" not in page
    lease = Assignment.objects.get(annotator=annotator)
    refused = client.post(f"/annotate/{study.slug}/{lease.public_id}/submit/", {}, **HTMX).content.decode()
    assert "提交前请为“overall”排好每一条回复" in refused
    assert "English" in page  # the switch back


def test_the_demo_annotator_lands_on_a_working_queue():
    call_command("demo", "--force", verbosity=0)
    client = Client()
    assert client.login(request=HttpRequest(), username="annotator", password="annotator-demo")  # axes needs a request
    home = client.get("/").content.decode()
    assert "Your annotation work" in home and "Empathy in long support posts (demo)" in home
    page = client.get("/annotate/empathy-demo/work/").content.decode()
    assert page.count('<article class="response"') == 5 and "0 of 30 done" in page
    assert "Comforting" in page and 'data-ties="yes"' in page
