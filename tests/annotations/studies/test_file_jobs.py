"""Large uploads of outputs run as file jobs: the request answers at once (202, or the job's page),
a worker stores exactly what the synchronous path would, progress shows while it reads, a refusal
keeps its located problems, and a rerun after a crash mid-import stores every row once."""
import json
import os

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from kombu.exceptions import OperationalError

from annotations.models import FileJob, Item, OutputUpload, Response, System
from annotations.studies import file_jobs, services, tasks
from tests.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_threshold(settings, tmp_path):
    """Files over 200 bytes go to a worker; the stored files go to a folder of the test's own."""
    settings.EVALSITE_BACKGROUND_BYTES = 200
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


def rows(n_items=12, systems=("alpha", "beta", "gamma")):
    return [{"item_id": f"p{i}", "prompt": f"Post {i}: 我睡不着。\n  keep spaces ", "system": s,
             "response": f"{s} answers {i}\twith a tab", "metadata": {"language": "zh"}}
            for i in range(n_items) for s in systems]


def jsonl(records):
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode()


def post(api, study, content, name="outputs.jsonl", **data):
    return api.post(f"/api/studies/{study.slug}/outputs/", {"file": SimpleUploadedFile(name, content), **data},
                    format="multipart")


def stored(study):
    """Everything an upload writes, without keys: items with prompts and metadata, responses."""
    return (sorted(Item.objects.filter(study=study).values_list("external_id", "prompt", "metadata")),
            sorted(Response.objects.filter(item__study=study).values_list(
                "item__external_id", "system__name", "text", "reasoning", "source")))


def the_job(study):
    return FileJob.objects.get(study=study)


def test_a_large_upload_answers_202_with_a_queued_job_and_the_worker_stores_what_the_request_would(
        api, study, researcher, settings):
    content = jsonl(rows())
    reply = post(api, study, content)
    assert reply.status_code == 202, reply.content
    job = the_job(study)
    body = reply.json()
    assert (body["id"], body["kind"], body["status"], body["progress"]) == (job.pk, "outputs_upload", "queued", 0)
    assert reply["Location"] == f"http://testserver/api/studies/{study.slug}/jobs/{job.pk}/"
    assert body["url"] == reply["Location"]
    # Stored as uploaded, nothing loaded yet (the task is enqueued once the request commits).
    assert (job.filename, job.size, job.created_by) == ("outputs.jsonl", len(content), researcher)
    with job.file.open("rb") as f:
        assert f.read() == content
    assert not Item.objects.filter(study=study).exists()

    tasks.run_outputs_upload(job.pk)

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 1)
    # The same file through the synchronous path, into a second study.
    settings.EVALSITE_BACKGROUND_BYTES = 10 ** 9
    twin = StudyFactory(owner=researcher, slug="twin")
    direct = post(api, twin, content)
    assert direct.status_code == 201
    assert job.result | {"upload_id": None} == direct.json() | {"upload_id": None}
    assert stored(study) == stored(twin)
    assert OutputUpload.objects.get(study=study).pk == job.result["upload_id"]

    resource = api.get(reply["Location"]).json()
    assert (resource["status"], resource["progress"], resource["result"]) == ("done", 1.0, job.result)


def test_a_file_at_the_threshold_is_still_loaded_in_the_request(api, study, settings):
    content = jsonl(rows(1, ("alpha",)))
    settings.EVALSITE_BACKGROUND_BYTES = len(content)
    assert post(api, study, content).status_code == 201
    assert not FileJob.objects.exists()


def test_the_input_file_is_deleted_once_the_job_is_done(api, study, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post(api, study, jsonl(rows()))  # eager: the task runs once the request commits
    job = the_job(study)
    assert job.status == "done"
    assert not os.path.exists(job.file.path)
    assert Response.objects.filter(item__study=study).count() == 36


def test_a_refused_large_file_ends_failed_with_its_located_problems_and_writes_nothing(api, web, study):
    bad = rows()
    bad[7] = {**bad[7], "response": ""}
    bad[20] = {k: v for k, v in bad[20].items() if k != "system"}
    reply = post(api, study, jsonl(bad))
    assert reply.status_code == 202
    job = the_job(study)
    tasks.run_outputs_upload(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    errors = job.result["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(8, "response"), (21, "system")]
    assert job.result["http_status"] == 400
    assert not Item.objects.filter(study=study).exists() and not System.objects.filter(study=study).exists()
    resource = api.get(reply["Location"]).json()
    assert resource["status"] == "failed" and resource["result"]["errors"][0]["text"].startswith("line 8")
    # The job's page lists the same located problems as a refused small upload does.
    page = web.get(f"/studies/{study.slug}/uploads/{job.pk}/").content.decode()
    assert "The upload was refused; nothing was written." in page
    assert "line 8, field &#x27;response&#x27;" in page and "line 21, field &#x27;system&#x27;" in page
    assert "hx-trigger" not in page


def test_too_large_a_file_is_refused_in_the_request_without_a_job(api, study, settings):
    settings.EVALSITE_MAX_UPLOAD_BYTES = 500
    reply = post(api, study, jsonl(rows()))
    assert reply.status_code == 413
    assert not FileJob.objects.exists()


def test_the_web_upload_goes_to_the_job_page_which_shows_progress_then_the_summary(web, study):
    reply = web.post(f"/studies/{study.slug}/upload/", {"file": SimpleUploadedFile("o.jsonl", jsonl(rows()))})
    job = the_job(study)
    assert reply.status_code == 302 and reply["Location"] == f"/studies/{study.slug}/uploads/{job.pk}/"
    page = web.get(reply["Location"]).content.decode()
    assert "Queued" in page and 'hx-trigger="every 1s"' in page and "<progress" in page

    # While a worker reads the file, the bar follows the bytes read (published in the cache).
    FileJob.objects.filter(pk=job.pk).update(status="running", attempts=1)
    job.refresh_from_db()
    file_jobs.report(job, 0.42)
    page = web.get(reply["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'value="42"' in page and "reading the file: 42 %" in page and "hx-trigger" in page
    FileJob.objects.filter(pk=job.pk).update(status="queued", attempts=0)

    tasks.run_outputs_upload(job.pk)
    page = web.get(reply["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "Loaded 36 rows." in page
    assert "hx-trigger" not in page and "<progress" not in page  # polling stops


def test_an_htmx_upload_shows_the_job_in_place_and_refreshes_coverage_when_done(web, study):
    reply = web.post(f"/studies/{study.slug}/upload/", {"file": SimpleUploadedFile("o.jsonl", jsonl(rows()))},
                     HTTP_HX_REQUEST="true")
    job = the_job(study)
    body = reply.content.decode()
    assert reply.status_code == 200
    assert f'hx-get="/studies/{study.slug}/uploads/{job.pk}/?in=study"' in body
    tasks.run_outputs_upload(job.pk)
    done = web.get(f"/studies/{study.slug}/uploads/{job.pk}/?in=study", HTTP_HX_REQUEST="true").content.decode()
    assert "Loaded 36 rows." in done
    assert 'id="coverage" hx-swap-oob="true"' in done and 'id="uploads" hx-swap-oob="true"' in done


def test_the_file_inputs_of_the_study_page_have_labels(web, study):
    page = web.get(f"/studies/{study.slug}/").content.decode()
    assert '<label>File of outputs <input type="file" name="file"' in page


def test_only_the_studys_researchers_see_a_job(api, web, study, client):
    post(api, study, jsonl(rows()))
    job = the_job(study)
    outsider = UserFactory(username="eve")
    StudyFactory(owner=outsider, slug="eves")
    client.force_login(outsider)
    assert client.get(f"/studies/{study.slug}/uploads/{job.pk}/").status_code == 404
    api.force_authenticate(outsider)
    assert api.get(f"/api/studies/{study.slug}/jobs/{job.pk}/").status_code == 404
    # Nor through a study of their own.
    assert api.get(f"/api/studies/eves/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/studies/eves/uploads/{job.pk}/").status_code == 404


class Killed(BaseException):
    """A worker killed mid-import: no handler of the job runs (SIGKILL runs none either)."""


@pytest.mark.postgres  # a running job is taken again only under PostgreSQL's lock
def test_a_rerun_after_a_crash_mid_import_stores_every_row_exactly_once(api, study, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 5)  # several chunks written before the crash
    write = services._OutputWriter.write
    calls = []

    def crash_on_the_fourth_chunk(self, chunk, dry_run=False):
        calls.append(len(chunk))
        if len(calls) == 4:
            assert Response.objects.filter(item__study=study).count() == 15  # written, uncommitted
            raise Killed()
        return write(self, chunk, dry_run)

    monkeypatch.setattr(services._OutputWriter, "write", crash_on_the_fourth_chunk)
    post(api, study, jsonl(rows()))
    job = the_job(study)
    with pytest.raises(Killed):
        tasks.run_outputs_upload(job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("running", 1)
    assert file_jobs.progress(job) > 0  # how far it had read (the reader runs ahead of the writes)
    assert not Response.objects.filter(item__study=study).exists()  # its transaction rolled back

    tasks.run_outputs_upload(job.pk)  # the redelivered task

    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 2)
    assert job.result["responses_created"] == 36
    assert Response.objects.filter(item__study=study).count() == 36
    assert Item.objects.filter(study=study).count() == 12
    assert OutputUpload.objects.filter(study=study).count() == 1
    # Delivered once more after it is done: nothing happens.
    tasks.run_outputs_upload(job.pk)
    job.refresh_from_db()
    assert job.attempts == 2 and Response.objects.filter(item__study=study).count() == 36


@pytest.mark.postgres  # a running job is taken again only under PostgreSQL's lock
def test_a_job_that_never_finishes_is_failed_after_three_attempts(api, study):
    post(api, study, jsonl(rows()))
    FileJob.objects.filter(study=study).update(status="running", attempts=3)
    tasks.run_outputs_upload(the_job(study).pk)
    job = the_job(study)
    assert job.status == "failed" and "started 3 times" in job.result["errors"][0]["message"]
    assert not Response.objects.filter(item__study=study).exists()


@pytest.mark.postgres
def test_a_second_worker_leaves_a_job_alone_while_one_runs_it(api, study):
    post(api, study, jsonl(rows()))
    job = the_job(study)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**{k: v for k, v in params.items() if k in (
            "dbname", "user", "password", "host", "port")}, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [file_jobs._LOCK_BASE + job.pk])  # "a worker runs it"
        assert file_jobs.is_running_somewhere(job.pk)
        assert services.run_outputs_upload(job.pk) is None
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("queued", 0)
        other.execute("SELECT pg_advisory_unlock(%s)", [file_jobs._LOCK_BASE + job.pk])
    assert not file_jobs.is_running_somewhere(job.pk)
    assert services.run_outputs_upload(job.pk).status == "done"


def as_with_a_broker(monkeypatch):
    """Pages hand over waiting and stalled jobs as they do with a real broker, while the tasks
    still run in process here."""
    monkeypatch.setattr(file_jobs, "_runs_in_process", lambda: False)


def test_a_job_whose_task_could_not_be_enqueued_waits_and_its_page_hands_it_over(
        web, study, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise OperationalError("Redis is down")

    monkeypatch.setattr(tasks.run_outputs_upload, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        reply = web.post(f"/studies/{study.slug}/upload/", {"file": SimpleUploadedFile("o.jsonl", jsonl(rows()))})
    job = the_job(study)
    assert job.status == "queued" and job.result == {"waiting": file_jobs.WAITING_FOR_QUEUE}
    assert "Redis did not answer" in web.get(reply["Location"]).content.decode()

    monkeypatch.undo()  # Redis is back: the next look at the page hands the job over
    as_with_a_broker(monkeypatch)
    page = web.get(reply["Location"]).content.decode()
    assert "Loaded 36 rows." in page
    assert the_job(study).status == "done"


@pytest.mark.postgres  # a running job is taken again only under PostgreSQL's lock
def test_a_running_job_whose_worker_died_is_handed_over_when_looked_at(api, study, monkeypatch):
    post(api, study, jsonl(rows()))
    FileJob.objects.filter(study=study).update(status="running", attempts=1)
    as_with_a_broker(monkeypatch)
    resource = api.get(f"/api/studies/{study.slug}/jobs/{the_job(study).pk}/").json()
    assert (resource["status"], resource["attempts"]) == ("done", 2)
    assert Response.objects.filter(item__study=study).count() == 36
