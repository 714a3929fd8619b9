"""A killed worker's chunk comes back within minutes with the default settings (not after an hour),
and a chunk whose time box is spent hands its pending items to a continuation chunk; on real
Celery workers and the real Redis, every item ends with exactly one response.
"""
import time

import pytest

from annotations.models import Response
from generation.selectors import job_progress

from tests.generation.standin import StandIn
from tests.generation.test_worker_e2e import (  # noqa: F401 (the broker fixture)
    Worker, assert_exactly_once, broker, make_job, status, wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The settings under test keep their defaults in the workers here.
DEFAULTS = ("CELERY_VISIBILITY_TIMEOUT", "CELERY_UNACKED_RESTORE_INTERVAL",
            "CELERY_UNACKED_RESTORE_THROTTLE", "CELERY_TASK_SOFT_TIME_LIMIT",
            "CELERY_TASK_TIME_LIMIT", "GENERATION_CHUNK_SECONDS")
# README "Generation": a killed worker's chunk comes back within the visibility timeout (180 s)
# plus one sweep for unacknowledged tasks (10 s) of its delivery.
RECOVERY_BOUND = 180 + 10 + 30


def worker(redis_url, standin, log_dir, name, **env):
    made = Worker(redis_url, standin, log_dir, name)
    for key in DEFAULTS:
        made.env.pop(key, None)
    made.env.update(env)
    return made


def test_a_killed_worker_is_recovered_within_minutes_with_the_default_settings(
        researcher, broker, tmp_path):
    with StandIn(delay=0.5, template="<answer>{text}</answer>") as standin:
        first = worker(broker, standin, tmp_path, "gen-rec-a1", GENERATION_CHUNK_SIZE="10",
                       GENERATION_MAX_IN_FLIGHT="1").start()
        second = worker(broker, standin, tmp_path, "gen-rec-a2", GENERATION_CHUNK_SIZE="10",
                        GENERATION_MAX_IN_FLIGHT="1")
        try:
            # Two chunks of 10 items at 0.5 s each: both are mid-flight on the first worker.
            job = make_job(researcher, 20, "rec-a")
            wait_for(lambda: job_progress(job).done >= 4, 60, "some progress", first)
            first.kill()  # SIGKILL: both chunks stay unacknowledged in Redis
            killed = time.monotonic()
            assert status(job) == "running" and job_progress(job).pending > 0
            second.start()
            wait_for(lambda: status(job) == "completed", RECOVERY_BOUND, "the job to complete",
                     second)
            assert time.monotonic() - killed < RECOVERY_BOUND
            assert_exactly_once(job)
            assert Response.objects.filter(system=job.system).count() == 20
        finally:
            first.kill()
            second.kill()


def test_a_chunk_whose_time_box_is_spent_continues_in_a_new_chunk(researcher, broker, tmp_path):
    # A visibility timeout of 6 s and a time box of 2 s: one chunk of 30 items, one request at a
    # time, is about 9 s of work, so a chunk that ignored its box would be handed to the second
    # pool process while still running, and its pending items asked for twice.
    with StandIn(delay=0.3, template="<answer>{text}</answer>") as standin:
        one = worker(broker, standin, tmp_path, "gen-rec-b", GENERATION_CHUNK_SIZE="30",
                     GENERATION_MAX_IN_FLIGHT="1", GENERATION_CHUNK_SECONDS="2",
                     CELERY_VISIBILITY_TIMEOUT="6", CELERY_UNACKED_RESTORE_INTERVAL="1",
                     CELERY_UNACKED_RESTORE_THROTTLE="1").start()
        try:
            job = make_job(researcher, 30, "rec-b")
            seen = set()

            def finished():
                seen.add(job_progress(job).done)
                return status(job) == "completed"

            wait_for(finished, 60, "the job to complete", one)
            assert_exactly_once(job)
            assert any(0 < done < 30 for done in seen), f"progress never moved: {sorted(seen)}"
            # Each item was asked for once: continuations took over, nothing ran twice.
            assert standin.count == 30, f"{standin.count} requests for 30 items"
            assert job.items.filter(attempts=1).count() == 30
        finally:
            one.kill()


def test_a_request_that_never_fits_the_time_box_fails_its_item_instead_of_looping(
        study_with_items, researcher, gen_settings, django_capture_on_commit_callbacks,
        monkeypatch):
    from generation import services, tasks

    monkeypatch.setattr(tasks.run_chunk, "max_retries", 1)
    gen_settings.GENERATION_CHUNK_SECONDS = 0.2
    gen_settings.GENERATION_CHUNK_HARD_SECONDS = 0.5
    with StandIn(delay=3, template="<answer>{text}</answer>") as server:
        gen_settings.VLLM_BASE_URLS = [server.url]
        with django_capture_on_commit_callbacks(execute=True):
            job = services.start_job(study_with_items, user=researcher, system_name="slow",
                                     model="standin-model", strategy="coe-cbt", seed=3,
                                     max_tokens=64)
    job.refresh_from_db()
    assert job.status == "completed"
    assert sorted(job.items.values_list("status", flat=True)) == ["failed"] * 10
    assert "time box" in job.items.first().error
    assert not Response.objects.filter(system=job.system).exists()
