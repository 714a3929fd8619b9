"""Crowd links (/join/<token>/?PROLIFIC_PID=...): whom they log in, how many they admit, how fast,
and that a participant's id alone does not take over their work from another browser."""
import itertools

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from annotations.models import Assignment, CrowdParticipant, Membership, Study
from tests.factories import open_study

pytestmark = pytest.mark.django_db
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def browser():
    """A fresh browser from its own address, so that tests do not share a rate-limit window."""
    return Client(REMOTE_ADDR=next(_addresses))


@pytest.fixture
def study(researcher):
    study = open_study(researcher, slug="crowd", items=2, annotations_per_item=2)
    Study.objects.filter(pk=study.pk).update(crowd_platform="prolific")
    study.refresh_from_db()
    return study


def link(study, pid, session="s1"):
    return f"/join/{study.invite_token}/?PROLIFIC_PID={pid}&STUDY_ID=st&SESSION_ID={session}"


def user_of(client):
    return client.session.get("_auth_user_id")


def test_a_superuser_named_like_a_crowd_account_is_never_logged_in_by_the_link(study):
    boss = get_user_model().objects.create_superuser("prolific-boss", "boss@example.org", "a-long-pass-phrase-9")
    client = browser()
    reply = client.get(link(study, "boss"))
    assert reply.status_code == 302 and reply["Location"] == f"/annotate/{study.slug}/"
    assert user_of(client) != str(boss.pk)
    assert client.get("/admin/").status_code == 302  # the admin sends the crowd account to its login
    participant = CrowdParticipant.objects.get(study=study, participant_id="boss")
    assert participant.user != boss and not participant.user.is_staff
    assert not participant.user.has_usable_password()


def test_a_logged_in_researcher_is_asked_before_being_switched_to_a_crowd_account(study, researcher):
    client = browser()
    client.force_login(researcher)
    url = link(study, "5f1a2b3c4d5e6f7a8b9c0d1e")
    page = client.get(url)
    text = page.content.decode()
    assert page.status_code == 200 and "You are logged in as rita" in text
    assert "Log out and continue as the participant" in text and 'href="/"' in text
    assert user_of(client) == str(researcher.pk)
    assert not CrowdParticipant.objects.exists()  # opening the page made nothing
    reply = client.post(url, {"continue": "1"})
    assert reply.status_code == 302 and reply["Location"] == f"/annotate/{study.slug}/"
    participant = CrowdParticipant.objects.get(participant_id="5f1a2b3c4d5e6f7a8b9c0d1e")
    assert user_of(client) == str(participant.user_id)


def test_a_crowd_annotator_opening_someone_elses_link_is_asked_too(study):
    client = browser()
    client.get(link(study, "first0001"))
    assert "You are logged in as" in client.get(link(study, "second0002")).content.decode()
    assert CrowdParticipant.objects.count() == 1


def test_another_browser_with_the_same_id_cannot_take_over_the_work(study):
    first = browser()
    reply = first.get(link(study, "p0a1b2c3"))
    assert first.get(f"/annotate/{study.slug}/work/").status_code == 200
    lease = Assignment.objects.get(status="active")
    second = browser()
    refused = second.get(link(study, "p0a1b2c3"))
    assert refused.status_code == 403
    assert "continue in the browser where you started" in refused.content.decode()
    assert user_of(second) is None
    cookie = reply.cookies[f"crowd_{study.slug}"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/join/"
    assert second.get(f"/annotate/{study.slug}/work/").status_code == 302  # to the login page
    # the first browser comes back as before
    assert first.get(link(study, "p0a1b2c3", session="s2")).status_code == 302
    assert Assignment.objects.get(pk=lease.pk).status == "active"
    assert CrowdParticipant.objects.get().session_id == "s2"


def test_the_researcher_releases_a_participant_to_continue_in_another_browser(study, web):
    first = browser()
    first.get(link(study, "p0a1b2c3"))
    first.get(f"/annotate/{study.slug}/work/")
    lease = Assignment.objects.get(status="active")
    page = web.get(f"/studies/{study.slug}/progress/").content.decode()
    assert "<code>p0a1b2c3</code>" in page and "Release</button>" in page
    participant = CrowdParticipant.objects.get()
    reply = web.post(f"/studies/{study.slug}/progress/crowd-participants/{participant.pk}/release/")
    assert reply.status_code == 302
    second = browser()
    assert second.get(link(study, "p0a1b2c3")).status_code == 302
    work = second.get(f"/annotate/{study.slug}/work/")
    assert work.status_code == 200 and lease.public_id in work.content.decode()  # the same item, kept
    # now the second browser holds it, and the first is the one refused
    assert first.get(link(study, "p0a1b2c3")).status_code == 403
    # only the study's researchers may release
    assert first.post(f"/studies/{study.slug}/progress/crowd-participants/{participant.pk}/release/",
                      ).status_code == 404


def test_the_study_admits_no_more_participants_than_the_researcher_set(study, web):
    reply = web.post(f"/studies/{study.slug}/progress/settings/", {
        "crowd_platform": "prolific", "completion_code": "", "completion_url": "", "crowd_max_participants": "2"})
    assert reply.status_code == 302
    assert "of at most 2" in web.get(f"/studies/{study.slug}/progress/").content.decode()
    a, b = browser(), browser()
    assert a.get(link(study, "aaaa1")).status_code == 302
    assert b.get(link(study, "bbbb2")).status_code == 302
    full = browser().get(link(study, "cccc3"))
    assert full.status_code == 403 and "all the participants it needs" in full.content.decode()
    chinese = browser().get(link(study, "dddd4"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert chinese.status_code == 403 and "本研究的参与者已满" in chinese.content.decode()
    assert CrowdParticipant.objects.count() == 2
    assert not get_user_model().objects.filter(username__in=["prolific-cccc3", "prolific-dddd4"]).exists()
    assert a.get(link(study, "aaaa1")).status_code == 302  # who is in stays in
    # empty: no limit
    web.post(f"/studies/{study.slug}/progress/settings/", {
        "crowd_platform": "prolific", "completion_code": "", "completion_url": "", "crowd_max_participants": ""})
    assert browser().get(link(study, "cccc3")).status_code == 302


@override_settings(CROWD_JOIN_PER_ADDRESS=3, CROWD_JOIN_PER_STUDY=4)
def test_new_crowd_accounts_are_rate_limited_per_address(study):
    address = "203.0.113.77"
    for n in range(3):
        assert Client(REMOTE_ADDR=address).get(link(study, f"flood{n}")).status_code == 302
    refused = Client(REMOTE_ADDR=address).get(link(study, "flood3"))
    assert refused.status_code == 429 and "Too many people are joining at once" in refused.content.decode()
    for n in range(4, 8):  # an address over its limit does not use up the study's allowance
        assert Client(REMOTE_ADDR=address).get(link(study, f"flood{n}")).status_code == 429
    assert CrowdParticipant.objects.count() == 3
    assert get_user_model().objects.filter(crowd_participants__isnull=False).distinct().count() == 3
    assert Client(REMOTE_ADDR="203.0.113.78").get(link(study, "flood3")).status_code == 302


@override_settings(CROWD_JOIN_PER_STUDY=2)
def test_new_crowd_accounts_are_rate_limited_per_study(study, researcher):
    assert browser().get(link(study, "s0")).status_code == 302
    assert browser().get(link(study, "s1")).status_code == 302
    assert browser().get(link(study, "s2")).status_code == 429
    other = open_study(researcher, slug="other", items=1)
    Study.objects.filter(pk=other.pk).update(crowd_platform="prolific")
    assert browser().get(link(other, "s2")).status_code == 302


def test_a_prolific_id_keeps_its_account_across_studies_and_the_csv_lists_participants(study, researcher, web):
    browser().get(link(study, "same0001", session="sess-a"))
    other = open_study(researcher, slug="second", items=1)
    Study.objects.filter(pk=other.pk).update(crowd_platform="prolific")
    browser().get(link(other, "same0001"))
    users = set(CrowdParticipant.objects.values_list("user", flat=True))
    assert len(users) == 1 and Membership.objects.filter(user__in=users).count() == 2
    csv = web.get(f"/studies/{study.slug}/progress/crowd-participants.csv")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("platform,participant_id,session_id,started_at")
    assert lines[1].startswith("prolific,same0001,sess-a,") and len(lines) == 2
    assert browser().get(f"/studies/{study.slug}/progress/crowd-participants.csv").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_crowd_memberships_into_records_but_not_other_accounts():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("annotations", "0006_attention_check_by_key_figures_version_shown_handles")], \
        [("annotations", "0007_crowd_participants")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    User, Study_, Membership_ = (apps.get_model("auth", "User"), apps.get_model("annotations", "Study"),
                                 apps.get_model("annotations", "Membership"))
    owner = User.objects.create(username="owner", password="pbkdf2_sha256$x")
    study = Study_.objects.create(slug="old", title="Old", owner=owner, crowd_platform="prolific")
    worker = User.objects.create(username="prolific-w1", password="!unusable")
    boss = User.objects.create(username="prolific-boss", password="pbkdf2_sha256$x", is_superuser=True, is_staff=True)
    Membership_.objects.create(study=study, user=owner, role="researcher")
    Membership_.objects.create(study=study, user=worker, role="annotator", external_id="w1", external_session="s9")
    Membership_.objects.create(study=study, user=boss, role="annotator", external_id="boss")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    apps = executor.loader.project_state(after).apps
    rows = list(apps.get_model("annotations", "CrowdParticipant").objects.values_list(
        "platform", "participant_id", "session_id", "user__username", "secret_hash"))
    assert rows == [("prolific", "w1", "s9", "prolific-w1", "")]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_cap_and_the_first_browser_hold_when_many_arrive_at_once(researcher):
    from annotations.annotating import services
    from tests.annotations.annotating.test_assignment_concurrency import run_at_once

    study = open_study(researcher, slug="rush", items=1)
    Study.objects.filter(pk=study.pk).update(crowd_platform="prolific", crowd_max_participants=4)
    study.refresh_from_db()
    secrets_given, refusals = [], []

    def enter(argument):
        pid, address = argument
        try:
            secrets_given.append(services.crowd_enter(study, pid, address=address).new_secret)
        except services.JoinRefused as exc:
            refusals.append(exc.status)

    # the same id from eight browsers: one claims it, the others are refused
    assert run_at_once(enter, [("same1", f"192.0.2.{n}") for n in range(8)]) == []
    assert len([s for s in secrets_given if s]) == 1 and refusals == [403] * 7
    # twelve new ids for the three places left
    secrets_given.clear(), refusals.clear()
    assert run_at_once(enter, [(f"rush{n}", f"192.0.2.{20 + n}") for n in range(12)]) == []
    assert CrowdParticipant.objects.filter(study=study).count() == 4
    assert len(secrets_given) == 3 and refusals == [403] * 9
