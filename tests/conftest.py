"""Every fixture the tests share, annotations and generation alike. Under CI a test that needs
PostgreSQL or Redis fails when it is missing."""
import os

import pytest
import redis as redis_lib
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from evalsite.celery import app
from tests.factories import ItemFactory, StudyFactory, UserFactory
from tests.generation.standin import StandIn

IN_CI = bool(os.environ.get("CI"))
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TAGGED = "<think>She feels alone; {text}</think><answer>{text}</answer>"


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (CI must run every test against the real service)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _require_services(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _unavailable(f"needs PostgreSQL, but DATABASE_URL points at {connection.vendor}")
    if request.node.get_closest_marker("redis"):
        try:
            redis_lib.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
        except redis_lib.RedisError as exc:
            _unavailable(f"needs Redis at {TEST_REDIS_URL}: {exc}")


@pytest.fixture
def redis_url():
    return TEST_REDIS_URL


@pytest.fixture
def researcher(db):
    user = UserFactory(username="rita")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="annotations", codename="add_study"))
    return user


@pytest.fixture
def study(researcher):
    return StudyFactory(owner=researcher, slug="pilot")


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


@pytest.fixture
def web(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def other_researcher(db):
    return UserFactory(username="otto")


@pytest.fixture
def study_with_items(researcher):
    study = StudyFactory(owner=researcher, slug="gen")
    for i in range(10):
        ItemFactory(study=study, external_id=f"p{i}", prompt=f"Post {i}: I feel lost at work.")
    return study


@pytest.fixture
def standin():
    """The stand-in vLLM server (tests/generation/standin.py) on loopback, answering in tags."""
    with StandIn(template=TAGGED) as server:
        yield server


@pytest.fixture
def eager_retries():
    """Eager tasks that propagate errors raise celery's Retry instead of running the retry; not
    propagating makes apply() run each retry at once, as a worker would after the backoff."""
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = propagates


@pytest.fixture
def gen_settings(settings, standin, eager_retries):
    """Settings that point the vllm backend at the stand-in."""
    settings.VLLM_BASE_URLS = [standin.url]
    settings.VLLM_API_KEY = ""
    settings.GENERATION_CHUNK_SIZE = 4
    settings.GENERATION_MAX_IN_FLIGHT = 4
    settings.GENERATION_REQUEST_TIMEOUT = 5
    # Per-request retries off, so the chunk task's own retries are what is exercised.
    settings.GENERATION_BACKEND_RETRIES = 0
    return settings
