"""A large upload on a real Celery worker (a subprocess, the real Redis and PostgreSQL, not eager):
the worker is SIGKILLed mid-import, a new one takes the redelivered task, and the job finishes with
every row stored exactly once."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count

from annotations.models import FileJob, Response
from tests.celery_broker import publishing_to

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
# A Redis database of its own, so that other tests' workers and queues never meet these.
REDIS_URL = os.environ.get("TEST_FILE_JOBS_REDIS_URL", "redis://127.0.0.1:6379/11")
ROWS = 60_000


@pytest.fixture
def broker():
    """This process's Celery app publishes to Redis, for the worker subprocess."""
    with publishing_to(REDIS_URL) as url:
        yield url


class Worker:
    def __init__(self, media_root, log_dir, name):
        db = settings.DATABASES["default"]
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}"
                            f":{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": REDIS_URL, "DB_CONN_MAX_AGE": "0", "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(media_root),
            # A killed worker's task comes back within seconds.
            "CELERY_VISIBILITY_TIMEOUT": "4", "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
        }
        self.log = open(log_dir / f"{name}.log", "w")
        self.name = name
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [CELERY, "-A", "evalsite", "worker", "-Q", "celery", "--pool=prefork", "-c", "1",
             "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self):
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]


def wait_for(condition, timeout, what, worker):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\nworker log:\n{worker.output()}")


def big_file():
    lines = [json.dumps({"item_id": f"p{i // 3}", "prompt": f"Post {i // 3}: I cannot sleep before exams.",
                         "system": f"sys{i % 3}", "response": f"Answer {i}: try a routine. " * 3})
             for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def test_a_worker_killed_mid_upload_is_replaced_and_every_row_is_stored_once(
        api, study, broker, tmp_path, settings):
    settings.EVALSITE_BACKGROUND_BYTES = 1000
    settings.MEDIA_ROOT = tmp_path / "media"
    first = Worker(settings.MEDIA_ROOT, tmp_path, "files-a").start()
    second = Worker(settings.MEDIA_ROOT, tmp_path, "files-b")
    try:
        started = time.monotonic()
        reply = api.post(f"/api/studies/{study.slug}/outputs/",
                         {"file": SimpleUploadedFile("big.jsonl", big_file())}, format="multipart")
        assert reply.status_code == 202, reply.content
        answered = time.monotonic() - started
        job = FileJob.objects.get(pk=reply.json()["id"])

        def status():
            job.refresh_from_db()
            return job.status

        wait_for(lambda: status() == "running", 60, "the first worker to start the job", first)
        time.sleep(0.3)
        first.kill()  # SIGKILL mid-import: its transaction is rolled back, its task unacknowledged
        assert status() == "running", "the import finished before the kill; make the file larger"
        assert not Response.objects.filter(item__study=study).exists()

        second.start()
        wait_for(lambda: status() in ("done", "failed"), 120, "the job to finish on the second worker", second)
        assert job.status == "done", job.result
        assert job.attempts == 2
        assert job.result["responses_created"] == ROWS
        per_pair = (Response.objects.filter(item__study=study).values("item", "system")
                    .annotate(n=Count("id")).filter(n__gt=1))
        assert not per_pair.exists()
        assert Response.objects.filter(item__study=study).count() == ROWS
        assert not os.path.exists(job.file.path)  # the stored upload is gone once done
        assert answered < 5, f"the request took {answered:.1f} s"
    finally:
        first.kill()
        second.kill()
