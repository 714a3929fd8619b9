"""End to end on a real Celery worker (a subprocess consuming the generation queue) and the real
Redis, not eager: the job runs, the stand-in fails some requests, a worker is killed and
restarted, a job is cancelled; every item ends with exactly one response or stays pending.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count

from annotations.models import Response
from generation import services
from generation.selectors import job_progress
from tests.celery_broker import publishing_to
from tests.factories import ItemFactory, StudyFactory

from .standin import StandIn

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


@pytest.fixture
def broker(redis_url):
    """Point this process's Celery app at Redis, so start_job enqueues for the worker."""
    with publishing_to(redis_url) as url:
        yield url


class Worker:
    """`celery worker` in its own process group, so a kill reaches the pool processes too."""

    def __init__(self, redis_url, standin, log_dir, name):
        db = settings.DATABASES["default"]
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}"
                            f":{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": redis_url, "DB_CONN_MAX_AGE": "0", "LOG_LEVEL": "WARNING",
            "VLLM_BASE_URLS": standin.url, "VLLM_API_KEY": "",
            "GENERATION_CHUNK_SIZE": "5", "GENERATION_MAX_IN_FLIGHT": "2",
            "GENERATION_REQUEST_TIMEOUT": "5", "GENERATION_BACKEND_RETRIES": "0",
            "GENERATION_RETRY_BACKOFF": "1", "GENERATION_RETRY_BACKOFF_MAX": "2",
            # A killed worker's tasks come back within seconds rather than an hour.
            "CELERY_VISIBILITY_TIMEOUT": "4", "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        }
        self.log = open(log_dir / f"{name}.log", "w")
        self.name = name
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [CELERY, "-A", "evalsite", "worker", "-Q", "generation,celery", "--pool=prefork",
             "-c", "2", "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self):
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]


def wait_for(condition, timeout, what, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    log = f"\nworker log:\n{worker.output()}" if worker else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{log}")


def make_job(researcher, count, slug):
    study = StudyFactory(owner=researcher, slug=slug)
    for i in range(count):
        ItemFactory(study=study, external_id=f"{slug}-{i}", prompt=f"Post {i}: I feel lost.")
    job = services.start_job(study, user=researcher, system_name="worker-made",
                             model="standin-model", strategy="coe-dbt", seed=1, max_tokens=64)
    return job


def status(job):
    job.refresh_from_db()
    return job.status


def assert_exactly_once(job):
    per_item = Response.objects.filter(system=job.system).values("item").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in per_item)
    assert len(per_item) == job.items.count() == job.items.filter(status="done").count()
    assert set(Response.objects.filter(system=job.system).values_list("source", flat=True)) == \
        {"generated"}


def test_a_job_runs_on_a_real_worker_despite_failing_requests(researcher, broker, tmp_path):
    with StandIn(delay=0.1, template="<think>t</think><answer>{text}</answer>",
                 fail_fraction=0.3, fail_status=503) as standin:
        worker = Worker(broker, standin, tmp_path, "gen-e2e-a").start()
        try:
            job = make_job(researcher, 40, "e2e-a")
            seen = set()

            def finished():
                seen.add(job_progress(job).done)
                return status(job) in ("completed", "failed")

            wait_for(finished, 60, "the job to finish", worker)
            assert job.status == "completed", job.error
            assert any(0 < done < 40 for done in seen), f"progress never moved: {sorted(seen)}"
            assert_exactly_once(job)
            # The failed requests were retried by the chunk tasks, not lost.
            assert job.items.filter(attempts__gt=1).exists()
            failing = sum(1 for call in standin.calls if call.action == 503)
            assert failing >= 3 and standin.count == 40 + failing
        finally:
            worker.kill()


def test_a_killed_worker_is_replaced_and_the_job_finishes_exactly_once(researcher, broker,
                                                                       tmp_path):
    with StandIn(delay=0.3, template="<answer>{text}</answer>") as standin:
        first = Worker(broker, standin, tmp_path, "gen-e2e-b1").start()
        second = Worker(broker, standin, tmp_path, "gen-e2e-b2")
        try:
            job = make_job(researcher, 60, "e2e-b")
            wait_for(lambda: job_progress(job).done >= 8, 60, "some progress", first)
            first.kill()  # SIGKILL to the worker and its pool: tasks stay unacknowledged
            progress = job_progress(job)
            assert status(job) == "running" and progress.pending > 0
            second.start()
            wait_for(lambda: status(job) == "completed", 90, "the job to complete", second)
            assert_exactly_once(job)
            assert Response.objects.filter(system=job.system).count() == 60
        finally:
            first.kill()
            second.kill()


def test_cancel_stops_new_requests_on_a_real_worker(researcher, broker, tmp_path):
    with StandIn(delay=0.3, template="<answer>{text}</answer>") as standin:
        worker = Worker(broker, standin, tmp_path, "gen-e2e-c").start()
        try:
            job = make_job(researcher, 60, "e2e-c")
            wait_for(lambda: job_progress(job).done >= 4, 60, "some progress", worker)
            services.cancel_job(job)
            # In-flight requests finish (at most 2 per chunk, 2 chunks at once); then nothing.
            time.sleep(1.5)
            sent = standin.count
            time.sleep(2)
            assert standin.count == sent < 60
            assert status(job) == "cancelled"
            done = job.items.filter(status="done").count()
            assert job.items.filter(status="pending").count() == 60 - done > 0
            assert Response.objects.filter(system=job.system).count() == done
        finally:
            worker.kill()
