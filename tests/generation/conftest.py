"""Fixtures for generation tests: a study with items, and settings pointing the vllm backend at
the stand-in server (tests/generation/standin.py) on loopback."""
import pytest

from evalsite.celery import app

from tests.factories import ItemFactory, StudyFactory, UserFactory

from .standin import StandIn

TAGGED = "<think>She feels alone; {text}</think><answer>{text}</answer>"


@pytest.fixture
def study_with_items(researcher):
    study = StudyFactory(owner=researcher, slug="gen")
    for i in range(10):
        ItemFactory(study=study, external_id=f"p{i}", prompt=f"Post {i}: I feel lost at work.")
    return study


@pytest.fixture
def standin():
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
    settings.VLLM_BASE_URLS = [standin.url]
    settings.VLLM_API_KEY = ""
    settings.GENERATION_CHUNK_SIZE = 4
    settings.GENERATION_MAX_IN_FLIGHT = 4
    settings.GENERATION_REQUEST_TIMEOUT = 5
    # Per-request retries off, so the chunk task's own retries are what is exercised.
    settings.GENERATION_BACKEND_RETRIES = 0
    return settings


@pytest.fixture
def other_researcher(db):
    return UserFactory(username="otto")
