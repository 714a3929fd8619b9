"""Pointing this process's Celery app at a Redis of a test's choosing, for tests that run real
workers (or a real broker) instead of eager tasks."""
from contextlib import contextmanager

import redis as redis_lib
from kombu import pools

from evalsite.celery import app


def forget_connections():
    """The Celery app caches its connection and producer pools; drop them so that the next
    publish uses the broker set now."""
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(url):
    """Tasks are published to the Redis at `url` (not run eagerly) inside the block; the Redis
    database is emptied before and after, so no other test's tasks or workers meet these."""
    redis_lib.Redis.from_url(url).flushdb()
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    app.conf.task_always_eager = False
    app.conf.broker_url = url
    forget_connections()
    try:
        yield url
    finally:
        app.conf.update(saved)
        forget_connections()
        redis_lib.Redis.from_url(url).flushdb()
