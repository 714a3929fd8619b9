"""PostgreSQL dropping the request's connection, for real: a second connection terminates the
request's own backend (pg_terminate_backend) at a chosen moment. Users get a clear 503 saying what
was saved; resending stores everything exactly once; the next request works.
"""
import io
import json

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from annotations.annotating import services as annotating
from annotations.middleware import connection_lost
from annotations.models import Assignment, Ranking, Response, Study
from annotations.studies import selectors as studies_selectors
from annotations.studies import services as studies
from tests.factories import annotators, full_ranking, open_study

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DROPPED = "The database connection dropped"
NOTHING_SAVED = "Nothing from this request was saved"
CHECK = "may or may not have been stored"


def terminate_own_backend():
    """What a restart or failover does to this process's connection, done from a second one."""
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.settings_dict
    with psycopg.connect(dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"] or None,
                         host=params["HOST"] or None, port=params["PORT"] or None, autocommit=True) as other:
        # The timeout makes it wait until the backend is gone, so the next statement finds it so.
        assert other.execute("select pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]


def dropping_before(module, name, monkeypatch):
    """Replace module.name with one that, the first time, terminates the backend before calling it."""
    original = getattr(module, name)
    fired = []

    def wrapper(*args, **kwargs):
        if not fired:
            fired.append(True)
            terminate_own_backend()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return fired


def dropping_after(module, name, monkeypatch):
    """module.name runs (its rows written, uncommitted), then the backend is terminated."""
    original = getattr(module, name)
    fired = []

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if not fired:
            fired.append(True)
            terminate_own_backend()
        return result

    monkeypatch.setattr(module, name, wrapper)
    return fired


def dropping_at_commit(monkeypatch):
    """The backend goes just before the next COMMIT: the server rolls back, the client cannot know."""
    original = connection._commit
    fired = []

    def wrapper():
        if not fired:
            fired.append(True)
            terminate_own_backend()
        return original()

    monkeypatch.setattr(connection, "_commit", wrapper)
    return fired


def browser(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def annotator_at_work(researcher):
    study = open_study(researcher, items=3, annotations_per_item=2)
    (annotator,) = annotators(study, 1)
    client = browser(annotator)
    assert client.get(reverse("annotate_work", args=[study.slug])).status_code == 200
    lease = Assignment.objects.get(annotator=annotator, status=Assignment.Status.ACTIVE)
    submit = reverse("annotate_submit", args=[study.slug, lease.public_id])
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
    return study, client, submit, data


def assert_retry_after(response):
    assert int(response["Retry-After"]) > 0


def test_a_ranking_submitted_as_the_connection_drops_is_refused_clearly_and_stored_once_when_resent(
        researcher, monkeypatch):
    study, client, submit, data = annotator_at_work(researcher)
    fired = dropping_before(annotating, "_store_rankings", monkeypatch)

    reply = client.post(submit, data)

    assert fired
    assert reply.status_code == 503
    assert_retry_after(reply)
    page = reply.content.decode()
    assert DROPPED in page and NOTHING_SAVED in page
    assert "Server Error" not in page
    assert not Ranking.objects.filter(study=study).exists()

    # The annotator sends it again: stored once per criterion, and a third send adds nothing.
    assert client.post(submit, data).status_code == 302
    assert client.post(submit, data).status_code == 302
    assert Ranking.objects.filter(study=study).count() == 2
    assert Assignment.objects.get(public_id=submit.rstrip("/").split("/")[-2]).status == Assignment.Status.SUBMITTED


def test_an_htmx_submit_shows_the_message_in_the_ranking_panel(researcher, monkeypatch):
    study, client, submit, data = annotator_at_work(researcher)
    dropping_before(annotating, "_store_rankings", monkeypatch)

    reply = client.post(submit, data, headers={"HX-Request": "true", "HX-Target": "work"})

    # htmx swaps only 2xx bodies: the message comes as 200, retargeted at the panel's message area.
    assert reply.status_code == 200
    assert reply["HX-Retarget"] == "#rank-message"
    assert reply["HX-Reswap"] == "innerHTML"
    assert_retry_after(reply)
    fragment = reply.content.decode()
    assert DROPPED in fragment and NOTHING_SAVED in fragment
    assert "<html" not in fragment
    assert not Ranking.objects.filter(study=study).exists()

    screen = client.post(submit, data, headers={"HX-Request": "true", "HX-Target": "work"})
    assert screen.status_code == 200 and "HX-Retarget" not in screen
    assert Ranking.objects.filter(study=study).count() == 2


def test_a_drop_at_commit_says_to_check_and_the_resend_stores_once(researcher, monkeypatch):
    study, client, submit, data = annotator_at_work(researcher)
    fired = dropping_at_commit(monkeypatch)

    reply = client.post(submit, data)

    assert fired
    assert reply.status_code == 503
    assert_retry_after(reply)
    page = reply.content.decode()
    assert DROPPED in page and CHECK in page and NOTHING_SAVED not in page
    # The server never saw the COMMIT: nothing is there, and sending again stores it once.
    assert not Ranking.objects.filter(study=study).exists()
    assert client.post(submit, data).status_code == 302
    assert client.post(submit, data).status_code == 302
    assert Ranking.objects.filter(study=study).count() == 2


def outputs_file(items=("p1", "p2", "p3"), systems=("sysA", "sysB")):
    lines = [json.dumps({"item_id": item, "prompt": f"Post {item}", "system": system,
                         "response": f"{system} answers {item}"}) for item in items for system in systems]
    upload = io.BytesIO("\n".join(lines).encode())
    upload.name = "outputs.jsonl"
    return upload


def test_an_upload_cut_off_mid_request_saves_nothing_and_the_retry_stores_everything_once(
        researcher, study, monkeypatch):
    client = browser(researcher)
    url = reverse("study_upload", args=[study.slug])
    # The rows are written in the request's transaction, then the connection goes before it commits.
    fired = dropping_after(studies, "import_outputs", monkeypatch)

    reply = client.post(url, {"file": outputs_file()})

    assert fired
    assert reply.status_code == 503
    assert_retry_after(reply)
    page = reply.content.decode()
    assert DROPPED in page and NOTHING_SAVED in page
    assert not Response.objects.filter(item__study=study).exists()
    assert not study.uploads.exists()

    assert client.post(url, {"file": outputs_file()}).status_code == 200
    assert client.post(url, {"file": outputs_file()}).status_code == 200
    assert Response.objects.filter(item__study=study).count() == 6
    assert Study.objects.get(pk=study.pk).items.count() == 3


def test_the_api_answers_json_and_the_retried_upload_stores_once(researcher, study, monkeypatch):
    client = browser(researcher)
    url = f"/api/studies/{study.slug}/outputs/"
    dropping_after(studies, "import_outputs", monkeypatch)

    reply = client.post(url, {"file": outputs_file()})

    # The API has nothing left to read after the import, so the drop shows at the COMMIT: unsure.
    assert reply.status_code == 503
    assert_retry_after(reply)
    assert DROPPED in reply.json()["detail"] and CHECK in reply.json()["detail"]
    assert reply.json()["saved"] == "unknown"
    assert not Response.objects.filter(item__study=study).exists()

    assert client.post(url, {"file": outputs_file()}).status_code == 201
    assert client.post(url, {"file": outputs_file()}).status_code == 200  # nothing changed
    assert Response.objects.filter(item__study=study).count() == 6


def test_a_page_read_as_the_connection_drops_gets_a_503_page_and_the_next_request_works(
        researcher, study, monkeypatch):
    client = browser(researcher)
    page_url = reverse("study_detail", args=[study.slug])
    dropping_before(studies_selectors, "study_overview", monkeypatch)

    reply = client.get(page_url)

    assert reply.status_code == 503
    assert_retry_after(reply)
    assert reply["Content-Type"].startswith("text/html")
    page = reply.content.decode()
    assert DROPPED in page and "Try again" in page
    assert "Server Error" not in page

    # Every kind of next request gets a fresh connection.
    assert client.get(page_url).status_code == 200
    assert client.get(f"/api/studies/{study.slug}/").status_code == 200
    assert client.post(reverse("study_upload", args=[study.slug]), {"file": outputs_file()}).status_code == 200


def test_other_database_errors_are_not_taken_for_a_dropped_connection():
    with pytest.raises(OperationalError) as timeout:
        with connection.cursor() as cursor:
            cursor.execute("set statement_timeout = 10")
            try:
                cursor.execute("select pg_sleep(1)")
            finally:
                cursor.execute("set statement_timeout = 0")
    assert not connection_lost(timeout.value)
