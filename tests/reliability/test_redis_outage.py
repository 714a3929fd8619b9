"""A Redis outage, for real: the site configured as production configures it (REDIS_URL set), on a
redis-server of the test's own that is stopped mid-test. Annotators keep working and submitting,
researchers log in and read pages, /healthz names Redis, and what was deferred happens once it is back.
"""
import json
import os
import runpy
import socket
import subprocess
import time
from unittest import mock

import evalsite.settings as settings_module
import pytest
import redis as redis_lib
from django.test import Client
from django.urls import reverse

from annotations.annotating import services as assigning
from annotations.models import Assignment, LeaderboardSnapshot, Ranking
from evalsite.celery import app
from tests.celery_broker import forget_connections
from generation import services as generation
from generation.models import GenerationJob
from tests.factories import annotators, full_ranking, open_study

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-researcher-password-11"


class OwnRedis:
    """A redis-server on a free port, keeping nothing on disk: stopping it loses every key, as a
    crashed or replaced Redis does. Never the shared one."""

    def __init__(self, tmp_path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.5)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis_lib.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self):
        if self.process and self.process.poll() is None:
            subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
                           capture_output=True, timeout=10)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def queue(self, name):
        return redis_lib.Redis(port=self.port).llen(name)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def production(own_redis, settings):
    """The settings evalsite/settings.py derives from REDIS_URL pointing at own_redis: cache,
    sessions and Celery (not eager: tasks are published to that Redis)."""
    with mock.patch.dict(os.environ, {"REDIS_URL": own_redis.url}):
        derived = runpy.run_path(settings_module.__file__)
    for name, value in derived.items():
        if name.startswith(("REDIS_", "CACHES", "SESSION_", "DJANGO_REDIS_")):
            setattr(settings, name, value)
    celery = {name[len("CELERY_"):].lower(): value for name, value in derived.items()
              if name.startswith("CELERY_")}
    saved = {key: app.conf[key] for key in celery}
    app.conf.update(celery)
    forget_connections()
    yield own_redis
    app.conf.update(saved)
    forget_connections()


def take_task(queue):
    """Take one task message off a queue of the test's Redis: (task name, args, kwargs)."""
    with app.connection_for_write() as connection:
        simple = connection.SimpleQueue(queue)
        try:
            message = simple.get(timeout=5)
            args, kwargs, _ = message.decode()
            message.ack()
        finally:
            simple.close()
    return message.headers["task"], args, kwargs


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_annotators_and_researchers_carry_on_while_redis_is_down(production, researcher):
    researcher.set_password(PASSWORD)
    researcher.save()
    study = open_study(researcher, items=3, annotations_per_item=2)
    first, second = annotators(study, 2)
    work = reverse("annotate_work", args=[study.slug])
    leaderboard = reverse("leaderboard", args=[study.slug])

    # Before the outage: one ranking in, the leaderboard computed, and two annotators logged in.
    done = logged_in(first)
    assert done.get(work).status_code == 200
    lease = Assignment.objects.get(annotator=first, status=Assignment.Status.ACTIVE)
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
    done.post(reverse("annotate_submit", args=[study.slug, lease.public_id]), data)
    assert logged_in(researcher).get(leaderboard).status_code == 200
    assert LeaderboardSnapshot.objects.get(study=study).rankings_count == 2
    annotator = logged_in(second)

    production.stop()

    # The annotator gets a screen and submits it: stored once, a second submit stores nothing more.
    screen = annotator.get(work)
    assert screen.status_code == 200
    lease = Assignment.objects.get(annotator=second, status=Assignment.Status.ACTIVE)
    assert f"/{lease.public_id}/submit/" in screen.content.decode()
    submit = reverse("annotate_submit", args=[study.slug, lease.public_id])
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(lease).items()}
    assert annotator.post(submit, data).status_code < 400
    assert annotator.post(submit, data).status_code < 400
    assert Ranking.objects.filter(study=study, annotator_label=f"user-{second.pk}").count() == 2
    assert Ranking.objects.filter(study=study).count() == 4

    # A researcher logs in and reads the study page and the leaderboard: its last figures, marked.
    desk = Client()
    assert desk.post(reverse("login"), {"username": researcher.username, "password": PASSWORD}).status_code == 302
    assert desk.get(reverse("study_detail", args=[study.slug])).status_code == 200
    page = desk.get(leaderboard)
    assert page.status_code == 200
    assert "refreshing: 4 rankings now" in page.content.decode()

    # The health check says what is down, quickly.
    started = time.monotonic()
    health = desk.get("/healthz")
    assert time.monotonic() - started < 3
    assert health.status_code == 503
    assert health.json()["database"] == "ok"
    assert health.json()["redis"].startswith("error")

    production.start()

    # Back: the next look at the stale leaderboard schedules its refresh; a worker runs it.
    assert desk.get(leaderboard).status_code == 200
    assert production.queue("celery") == 1
    task, args, kwargs = take_task("celery")
    assert task == "annotations.results.tasks.refresh_leaderboard"
    app.tasks[task].apply(args, kwargs)  # as the worker does
    assert LeaderboardSnapshot.objects.get(study=study).rankings_count == 4
    page = desk.get(leaderboard).content.decode()
    assert "refreshing" not in page
    assert desk.get("/healthz").json()["redis"] == "ok"


def test_a_generation_job_started_while_redis_is_down_is_kept_and_enqueued_once_it_is_back(
        production, researcher):
    study = open_study(researcher, items=3)
    desk = logged_in(researcher)
    production.stop()

    job = generation.start_job(study, user=researcher, system_name="later", model="tiny", strategy="base")

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.QUEUED
    assert job.items.count() == 3
    page = desk.get(reverse("generation_job", args=[study.slug, job.id]))
    assert page.status_code == 200
    assert "Waiting for the task queue" in page.content.decode()

    production.start()

    page = desk.get(reverse("generation_job", args=[study.slug, job.id]))
    assert "Waiting for the task queue" not in page.content.decode()
    assert production.queue("generation") == 1
    # Watching the page further hands nothing over twice.
    desk.get(reverse("generation_job", args=[study.slug, job.id]))
    assert production.queue("generation") == 1
    assert take_task("generation")[:2] == ("generation.tasks.run_job", [job.id])


def test_a_refresh_that_could_not_be_enqueued_is_scheduled_again_by_the_next_look(production, researcher):
    study = open_study(researcher, items=3, annotations_per_item=2)
    first, second = annotators(study, 2)
    leaderboard = reverse("leaderboard", args=[study.slug])
    desk = logged_in(researcher)
    lease = assigning.next_assignment(study, first)
    assigning.submit_ranking(lease, full_ranking(lease))
    assert desk.get(leaderboard).status_code == 200  # computed now, fresh
    lease = assigning.next_assignment(study, second)
    assigning.submit_ranking(lease, full_ranking(lease))

    # Redis took the page's "refresh scheduled" mark, then went away before the publish.
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    forget_connections()
    assert "refreshing" in desk.get(leaderboard).content.decode()
    app.conf.broker_url = production.url
    forget_connections()

    assert "refreshing" in desk.get(leaderboard).content.decode()
    assert production.queue("celery") == 1
