"""Generation jobs in eager mode (tasks run in process) against the stand-in vLLM server over real
HTTP: validation, stored responses, parse failures, 4xx and 5xx, cancel, resume, retry, reruns.
"""
import threading
import time

import pytest
from django.db import connection

from annotations.models import Response, System
from generation import services, tasks
from generation.models import GenerationJob
from generation.selectors import job_failures, job_progress
from generation.strategies import get_strategy

from .standin import StandIn, reply_text

pytestmark = pytest.mark.postgres


def start(study, user, capture, **changes):
    options = dict(system_name="coe-cbt-standin", backend="vllm", model="standin-model",
                   strategy="coe-cbt", strategy_options={}, temperature=0.5, top_p=0.9,
                   max_tokens=64, seed=3)
    options.update(changes)
    with capture(execute=True):
        job = services.start_job(study, user=user, **options)
    job.refresh_from_db()
    return job


def statuses(job):
    return sorted(job.items.values_list("status", flat=True))


# --- validation -----------------------------------------------------------------------------

def test_invalid_settings_are_reported_by_field_and_nothing_is_created(study_with_items,
                                                                       researcher):
    with pytest.raises(services.JobInvalid) as caught:
        services.start_job(study_with_items, user=researcher, system_name=" ", backend="gpt",
                           model="", strategy="custom",
                           strategy_options={"template": "Reply to {Post}"}, temperature=-1,
                           top_p=0, max_tokens=0, seed=None)
    errors = caught.value.errors
    assert set(errors) >= {"system_name", "backend", "model", "template"}
    assert "{Post}" in errors["template"]
    # One sampling problem is reported at a time, with its field.
    assert errors.get("temperature", "").startswith("temperature must be 0 or more")
    assert not System.objects.filter(study=study_with_items).exists()
    assert not GenerationJob.objects.exists()


def test_unknown_strategy_and_bad_top_p(study_with_items, researcher):
    with pytest.raises(services.JobInvalid) as caught:
        services.start_job(study_with_items, user=researcher, system_name="x", model="m",
                           strategy="telepathy", top_p=1.5)
    assert "telepathy" in caught.value.errors["strategy"]
    assert caught.value.errors["top_p"].startswith("top_p must be above 0 and at most 1")


def test_start_creates_system_job_and_one_pending_item_per_item(study_with_items, researcher,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.start_job(study_with_items, user=researcher, system_name="base-standin",
                                 model="standin-model", strategy="base")
    assert len(callbacks) == 1  # the fan-out waits for the commit
    assert job.status == "queued" and job.items.count() == 10
    assert set(job.items.values_list("status", flat=True)) == {"pending"}
    system = System.objects.get(study=study_with_items, name="base-standin")
    assert "standin-model" in system.description and "Direct answer" in system.description


# --- runs against the stand-in --------------------------------------------------------------

def test_job_generates_one_generated_response_per_item_with_reasoning(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    assert job.status == "completed" and job.finished_at and job.started_at
    responses = Response.objects.filter(system=job.system).select_related("item")
    assert responses.count() == 10 and standin.count == 10
    strategy = get_strategy("coe-cbt")
    for response in responses:
        expected = reply_text(strategy.messages(response.item.prompt), seed=3)
        assert response.source == "generated"
        assert response.text == expected
        assert response.reasoning == f"She feels alone; {expected}"
    body = standin.calls[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == \
        (0.5, 0.9, 64, 3)
    progress = job_progress(job)
    assert (progress.done, progress.pending, progress.failed) == (10, 0, 0)
    assert progress.tokens_per_s > 0 and progress.responses_per_s > 0


def test_unparsed_output_is_flagged_with_raw_output_and_never_a_response(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    standin.template = "<think>only thinking, never an answer tag</think> {text}"
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    assert job.status == "completed"
    assert statuses(job) == ["unparsed"] * 10
    assert not Response.objects.filter(system=job.system).exists()
    failure = job_failures(job)[0]
    assert failure.error == "no <answer> tag"
    assert failure.raw_output.startswith("<think>only thinking")


def test_truncated_output_is_unparsed_with_the_reason(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks, max_tokens=3)
    assert statuses(job) == ["unparsed"] * 10
    assert "truncated" in job.items.first().error


def test_4xx_is_a_clear_failure_without_retry(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    standin.script(400)
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    assert job.status == "completed"
    assert statuses(job).count("failed") == 1 and statuses(job).count("done") == 9
    failed = job.items.get(status="failed")
    assert "HTTP 400" in failed.error and "stand-in failure 400" in failed.error
    assert failed.attempts == 1
    assert standin.count == 10  # no second request for the 4xx item
    assert Response.objects.filter(system=job.system).count() == 9


def test_model_not_served_fails_the_job_with_the_reason(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks,
                model="no-such-model")
    assert job.status == "failed"
    assert "do not serve model 'no-such-model'" in job.error and "standin-model" in job.error
    # One one-token request asked the server (a server may serve what /v1/models leaves out);
    # no item was tried.
    assert standin.count == 1 and standin.calls[0].body["max_tokens"] == 1


def test_unreachable_server_fails_the_job(study_with_items, researcher, gen_settings,
                                          django_capture_on_commit_callbacks):
    gen_settings.VLLM_BASE_URLS = ["http://127.0.0.1:9/v1"]
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    assert job.status == "failed" and "not ready" in job.error and "unreachable" in job.error


def test_500_and_503_are_retried_then_done(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    standin.script(500, 503)
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    assert job.status == "completed" and statuses(job) == ["done"] * 10
    assert standin.count == 12
    retried = job.items.filter(attempts__gt=1)
    assert retried.count() == 2 and all(g.error == "" or "HTTP 50" in g.error for g in retried)
    assert Response.objects.filter(system=job.system).count() == 10


def test_persistent_5xx_fails_the_item_after_the_task_retries(
        study_with_items, researcher, gen_settings, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(tasks.run_chunk, "max_retries", 2)
    with StandIn(template="<answer>{text}</answer>", fail_fraction=0.3,
                 fail_attempts=100) as server:
        gen_settings.VLLM_BASE_URLS = [server.url]
        job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    failed = list(job.items.filter(status="failed"))
    assert failed, "the stand-in fails about 30% of the prompts"
    assert job.status == "completed"
    for g in failed:
        assert "HTTP 503" in g.error and g.attempts == 3  # the first try and two retries
    assert Response.objects.filter(system=job.system).count() == 10 - len(failed)


def test_retry_failed_runs_only_failed_and_unparsed_items_again(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    standin.script(400, 404)
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    assert statuses(job).count("failed") == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_failed(job) == 2
    job.refresh_from_db()
    assert job.status == "completed" and statuses(job) == ["done"] * 10
    assert standin.count == 12
    with pytest.raises(services.JobStateError):
        services.retry_failed(job)


def test_idempotent_rerun_creates_nothing_twice(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks)
    first = dict(Response.objects.filter(system=job.system).values_list("item_id", "id"))
    # A redelivered chunk: the same ids again, even with items forced back to pending.
    ids = list(job.items.values_list("id", flat=True))
    job.items.update(status="pending")
    GenerationJob.objects.filter(id=job.id).update(status="running")
    tasks.run_chunk.apply(args=[job.id, ids])
    assert standin.count == 10  # every response exists, so no request is sent again
    assert dict(Response.objects.filter(system=job.system).values_list("item_id", "id")) == first
    job.refresh_from_db()
    assert job.status == "completed" and statuses(job) == ["done"] * 10


def test_existing_system_gets_only_its_missing_responses(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    system = System.objects.create(study=study_with_items, name="uploaded-one")
    items = list(study_with_items.items.order_by("id"))
    Response.objects.create(item=items[0], system=system, text="uploaded text")
    job = start(study_with_items, researcher, django_capture_on_commit_callbacks,
                system_name="uploaded-one")
    assert job.system == system and job.status == "completed"
    assert standin.count == 9
    assert Response.objects.get(item=items[0], system=system).text == "uploaded text"
    assert Response.objects.filter(system=system).count() == 10


def test_a_cancelled_job_sends_nothing_more(
        study_with_items, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.start_job(study_with_items, user=researcher, system_name="s",
                                 model="standin-model", strategy="base")
    services.cancel_job(job)
    for callback in callbacks:
        callback()
    job.refresh_from_db()
    assert job.status == "cancelled" and standin.count == 0
    with pytest.raises(services.JobStateError):
        services.cancel_job(job)


@pytest.mark.django_db(transaction=True)
def test_cancel_mid_job_stops_new_requests_and_resume_finishes(researcher, gen_settings,
                                                               monkeypatch):
    """The job runs in a thread (eager tasks) while the test cancels it from here."""
    from tests.factories import ItemFactory, StudyFactory
    study = StudyFactory(owner=researcher, slug="gen-cancel")
    for i in range(40):
        ItemFactory(study=study, external_id=f"c{i}", prompt=f"Post {i}")
    gen_settings.GENERATION_CHUNK_SIZE = 40
    gen_settings.GENERATION_MAX_IN_FLIGHT = 2
    with StandIn(delay=0.2, template="{text}") as server:
        gen_settings.VLLM_BASE_URLS = [server.url]
        # No fan-out on commit here: the chunk runs in a thread, to be cancelled while it streams.
        with monkeypatch.context() as patched:
            patched.setattr(tasks.run_job, "delay", lambda job_id: None)
            job = services.start_job(study, user=researcher, system_name="slow",
                                     model="standin-model", strategy="base")
        GenerationJob.objects.filter(id=job.id).update(status="running")
        ids = list(job.items.values_list("id", flat=True))

        def run():
            try:
                tasks.run_chunk.apply(args=[job.id, ids])
            finally:
                connection.close()

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 10
        while server.count < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        services.cancel_job(job)
        worker.join(timeout=15)
        assert not worker.is_alive()
        sent = server.count
        time.sleep(0.6)
        assert server.count == sent < 30  # nothing new after the cancel landed
        job.refresh_from_db()
        assert job.status == "cancelled"
        pending = job.items.filter(status="pending").count()
        assert pending >= 10
        with_response = Response.objects.filter(system=job.system).count()
        assert with_response == job.items.filter(status="done").count()

        services.resume_job(job)  # eager: runs to the end on commit (transactional test)
        job.refresh_from_db()
        assert job.status == "completed"
        assert Response.objects.filter(system=job.system).count() == 40
        assert job.items.filter(status="done").count() == 40
