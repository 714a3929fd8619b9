"""Large rankings imports and prepared rankings exports run as file jobs: the import stores what the
synchronous one would (or fails with its located problems); the export's file holds the same bytes
as the streamed download, and only the study's researchers can fetch it."""
import io
import os
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from annotations.models import FileJob, Ranking, System
from annotations.results import exports, services, tasks
from annotations.studies import file_jobs
from tests.factories import StudyFactory, UserFactory, jsonl, outputs, random_rankings

pytestmark = pytest.mark.django_db

ITEMS = [f"p{i}" for i in range(1, 9)]


@pytest.fixture(autouse=True)
def small_threshold(settings, tmp_path):
    settings.EVALSITE_BACKGROUND_BYTES = 300
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


@pytest.fixture
def loaded(study):
    outputs(study, items=ITEMS)
    return study


def rankings_file(seed=0):
    return jsonl(*random_rankings(ITEMS, ["a1", "a2", "a3"], seed=seed))


def post_rankings(api, study, content):
    return api.post(f"/api/studies/{study.slug}/rankings/",
                    {"file": SimpleUploadedFile("rankings.jsonl", content)}, format="multipart")


def stored(study):
    """The study's rankings with system names in place of ids."""
    names = dict(System.objects.filter(study=study).values_list("id", "name"))
    return sorted(((item, label, criterion, [[names[s] for s in group] for group in ranking],
                    [names[s] for s in display], seconds, source)
                   for item, label, criterion, ranking, display, seconds, source in
                   Ranking.objects.filter(study=study).values_list(
                       "item__external_id", "annotator_label", "criterion__name", "ranking", "display_order",
                       "seconds", "source")), key=repr)


def test_a_large_rankings_import_is_a_job_that_stores_what_the_request_would(api, loaded, researcher, settings):
    content = rankings_file()
    reply = post_rankings(api, loaded, content)
    assert reply.status_code == 202, reply.content
    job = FileJob.objects.get(study=loaded)
    assert job.kind == "rankings_import" and reply["Location"].endswith(f"/api/studies/pilot/jobs/{job.pk}/")
    assert not Ranking.objects.filter(study=loaded).exists()

    tasks.run_rankings_import(job.pk)

    job.refresh_from_db()
    assert job.status == "done"
    settings.EVALSITE_BACKGROUND_BYTES = 10 ** 9
    twin = StudyFactory(owner=researcher, slug="twin")
    outputs(twin, items=ITEMS)
    direct = post_rankings(api, twin, content)
    assert direct.status_code == 201
    assert job.result == direct.json() == {"rows": 24, "rankings_created": 24, "rankings_unchanged": 0,
                                          "annotators": 3}
    assert stored(loaded) == stored(twin)
    assert api.get(reply["Location"]).json()["result"] == job.result


def test_a_refused_rankings_import_job_keeps_the_located_problems_and_writes_nothing(api, web, loaded):
    records = random_rankings(ITEMS, ["a1", "a2", "a3"])
    records[4]["item_id"] = "p404"
    post_rankings(api, loaded, jsonl(*records))
    job = FileJob.objects.get(study=loaded)
    tasks.run_rankings_import(job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert [(e["line"], e["field"]) for e in job.result["errors"]] == [(5, "item_id")]
    assert not Ranking.objects.filter(study=loaded).exists()
    page = web.get(f"/studies/pilot/rankings/jobs/{job.pk}/").content.decode()
    assert "The import was refused; nothing was written." in page and "line 5, field &#x27;item_id&#x27;" in page


def test_the_web_import_shows_the_job_in_place_then_the_summary(web, loaded):
    reply = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", rankings_file())},
                     HTTP_HX_REQUEST="true")
    job = FileJob.objects.get(study=loaded)
    assert f'hx-get="/studies/pilot/rankings/jobs/{job.pk}/" hx-trigger="every 1s"' in reply.content.decode()
    tasks.run_rankings_import(job.pk)
    done = web.get(f"/studies/pilot/rankings/jobs/{job.pk}/", HTTP_HX_REQUEST="true")
    assert "Imported 24 rankings" in done.content.decode() and "hx-trigger" not in done.content.decode()
    assert "rankings-imported" in done["HX-Trigger"]  # the leaderboard refreshes, as after a small import


@pytest.fixture
def ranked(loaded):
    services.import_rankings(loaded, io.BytesIO(rankings_file()))
    return loaded


def test_an_export_job_writes_the_same_bytes_as_the_direct_export(api, ranked):
    reply = api.post("/api/studies/pilot/rankings/export/")
    assert reply.status_code == 202 and reply["Content-Type"] == "application/json"
    job = FileJob.objects.get(study=ranked)
    assert reply.json()["kind"] == "rankings_export" and reply.json()["download"] is None

    tasks.run_rankings_export(job.pk)

    resource = api.get(reply["Location"]).json()
    assert (resource["status"], resource["progress"], resource["result"]["rows"]) == ("done", 1.0, 24)
    download = api.get(resource["download"])
    direct = api.get("/api/studies/pilot/rankings/export")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="pilot-rankings.jsonl"'
    body = b"".join(download.streaming_content)
    assert body == b"".join(direct.streaming_content) == b"".join(exports.export_rankings(ranked))
    assert resource["size"] == len(body)


def test_the_export_is_offered_on_the_leaderboard_and_its_download_is_for_researchers_only(web, ranked, client):
    page = web.get("/studies/pilot/leaderboard/").content.decode()
    assert "Prepare the export as a file" in page and '<label>File of rankings <input type="file"' in page
    reply = web.post("/studies/pilot/rankings/export/prepare/")
    job = FileJob.objects.get(study=ranked)
    assert reply.status_code == 302 and reply["Location"] == f"/studies/pilot/rankings/jobs/{job.pk}/"
    tasks.run_rankings_export(job.pk)
    page = web.get(reply["Location"]).content.decode()
    download_url = f"/studies/pilot/rankings/jobs/{job.pk}/download/"
    assert download_url in page and "The export is ready" in page
    assert b"".join(web.get(download_url).streaming_content) == b"".join(exports.export_rankings(ranked))

    outsider = UserFactory(username="eve")
    client.force_login(outsider)
    for url in (download_url, reply["Location"], f"/api/studies/pilot/jobs/{job.pk}/file/",
                f"/api/studies/pilot/jobs/{job.pk}/"):
        assert client.get(url).status_code == 404, url
    client.logout()
    assert client.get(download_url).status_code == 302  # to the login page


def test_a_newer_export_replaces_the_older_file_and_an_old_one_expires(web, ranked, settings):
    first = services.start_rankings_export(ranked, user=None)
    tasks.run_rankings_export(first.pk)
    first.refresh_from_db()
    path = first.file.path
    assert os.path.exists(path)
    FileJob.objects.filter(pk=first.pk).update(finished_at=timezone.now() - timedelta(minutes=5))
    second = services.start_rankings_export(ranked, user=None)
    tasks.run_rankings_export(second.pk)
    first.refresh_from_db()
    assert not first.file and not os.path.exists(path)
    assert web.get(f"/studies/pilot/rankings/jobs/{first.pk}/download/").status_code == 404
    assert "replaced by a newer one" in web.get(f"/studies/pilot/rankings/jobs/{first.pk}/").content.decode()

    FileJob.objects.filter(pk=second.pk).update(finished_at=timezone.now() - timedelta(hours=25))
    assert web.get(f"/studies/pilot/rankings/jobs/{second.pk}/download/").status_code == 404
    second.refresh_from_db()
    name = second.file.path
    file_jobs.sweep_files()
    assert not os.path.exists(name)


def test_export_progress_counts_rows_written(ranked, monkeypatch):
    seen = []
    monkeypatch.setattr(file_jobs, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(file_jobs, "report", lambda job, fraction: seen.append(fraction))
    job = services.start_rankings_export(ranked, user=None)
    tasks.run_rankings_export(job.pk)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) > 10 and seen == sorted(seen)
