"""Background work of the loading area: large uploads of outputs (file jobs).

services.upload_outputs stores a large file as a FileJob; file_jobs sends `file_job_queued` once
that commits, and the receiver here enqueues the task (without REDIS_URL it runs in process). The
app loads this module when it starts (annotations/apps.py), so the receiver is always connected.
"""
from celery import shared_task
from django.dispatch import receiver

from annotations.models import FileJob

from . import file_jobs, services


@shared_task(acks_late=True, ignore_result=True)
def run_outputs_upload(job_id):
    """Safe to deliver twice, or again after a worker was killed: see file_jobs.run."""
    services.run_outputs_upload(job_id)


@receiver(file_jobs.file_job_queued)
def _enqueue_file_job(sender, *, job_id, kind, **kwargs):
    if kind == FileJob.Kind.OUTPUTS_UPLOAD:
        run_outputs_upload.delay(job_id)
