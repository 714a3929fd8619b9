"""/healthz answers for the load balancer: database and Redis."""
import pytest

pytestmark = pytest.mark.django_db


def test_health_without_redis(client, settings):
    settings.REDIS_URL = ""
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json()["database"] == "ok"
    assert reply.json()["redis"].startswith("not configured")


@pytest.mark.redis
@pytest.mark.postgres
def test_health_with_real_redis_and_postgres(client, settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": redis_url}}
    reply = client.get("/healthz")
    assert reply.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_health_reports_a_dead_redis(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    reply = client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json()["redis"].startswith("error")
