"""Shared fixtures. Under CI a test that needs PostgreSQL or Redis fails when it is missing."""
import os

import pytest
import redis as redis_lib
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import StudyFactory, UserFactory

IN_CI = bool(os.environ.get("CI"))
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


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
