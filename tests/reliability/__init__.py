"""Reliability: each fault injected for real, and what users see through it.

- test_redis_outage: a redis-server of the test's own (never the shared one) stopped and started
  mid-test; annotators keep submitting, researchers log in and read pages, the leaderboard shows
  its last figures marked stale, /healthz names Redis, deferred work runs once it is back.
- test_worker_killed: a real Celery worker SIGKILLed mid-job with the default settings; its work
  comes back within minutes, every item ends with exactly one response.
- test_database_drop: the request's PostgreSQL connection terminated (pg_terminate_backend) before,
  during and after writes; a clear 503 says whether anything was saved, and resending stores each
  ranking and upload exactly once.
- test_file_jobs_worker: a worker SIGKILLed mid-upload of a large file; the job runs again from the
  stored file and stores every row once.

Every test asserts that no ranking (or row) is lost or duplicated.
"""
