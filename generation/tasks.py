"""Celery tasks for generation jobs, routed to the `generation` queue: a fan-out per job, then one
task per chunk of items. Thin: they load by id and call generation.services.
"""
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.dispatch import receiver
from kombu.exceptions import OperationalError

from . import services
from .backends import BackendError
from .models import GenerationJob

log = logging.getLogger(__name__)


class RetryableChunk(Exception):
    """Some items hit a retryable error (timeout, 5xx) after the backend's own retries; the chunk
    runs again later for those items only, the others being stored already."""


@shared_task(acks_late=True)
def run_job(job_id):
    job = GenerationJob.objects.filter(id=job_id).first()
    if job is None:
        return
    try:
        backend = services.backend_for(job)
        chunks = services.begin_job(job, backend)
    except BackendError as exc:
        services.fail_job(job, str(exc))
        return
    try:
        for ids in chunks:
            run_chunk.delay(job_id, ids)
    except OperationalError:
        # The broker went away mid fan-out: the job waits, queued, until its page hands it over
        # again; then its pending items run (chunks already enqueued skip what they find done).
        services.mark_waiting(job_id)
        raise


@shared_task(
    bind=True, acks_late=True,
    autoretry_for=(RetryableChunk, SoftTimeLimitExceeded),
    retry_backoff=settings.GENERATION_RETRY_BACKOFF,
    retry_backoff_max=settings.GENERATION_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.GENERATION_TASK_RETRIES,
)
def run_chunk(self, job_id, generation_item_ids):
    job = GenerationJob.objects.filter(id=job_id).first()
    if job is None:
        return
    final = self.request.retries >= self.max_retries
    try:
        backend = services.backend_for(job)
        outcome = services.generate_chunk(job, generation_item_ids, backend,
                                          final_attempt=final)
    except BackendError as exc:
        # The backend as a whole cannot serve (no vllm installed, model path missing): the job
        # stops with the reason instead of every item failing one by one.
        services.fail_job(job, str(exc))
        return
    if outcome.retryable:
        first = next(iter(outcome.retryable.values()))
        raise RetryableChunk(f"{len(outcome.retryable)} of the items of job {job_id} will be retried; "
                             f"first error: {first}")
    if outcome.unfinished:
        if not outcome.progressed:
            # Nothing finished within the time box: a retry, so that it cannot loop forever.
            raise RetryableChunk(f"{len(outcome.unfinished)} items of job {job_id} found no time "
                                 f"to finish in the chunk's time box; they will be retried")
        # Time box spent: a continuation chunk (not a retry) takes the pending items, enqueued
        # before this one is acknowledged, so a kill in between loses nothing.
        log.info("job %s chunk: time box spent; %s items continue in a new chunk", job_id,
                 len(outcome.unfinished))
        try:
            run_chunk.delay(job_id, outcome.unfinished)
        except OperationalError:
            services.mark_waiting(job_id)
            raise
    log.info("job %s chunk: %s done, %s failed, %s unparsed, %s already answered%s", job_id,
             outcome.done, outcome.failed, outcome.unparsed, outcome.skipped,
             " (cancelled)" if outcome.cancelled else "")


@receiver(services.job_queued)
def _run_queued_job(sender, *, job_id, **kwargs):
    run_job.delay(job_id)
