"""Background work of the results area: refreshing cached leaderboards, and the file jobs of large
rankings imports and prepared rankings exports (file_jobs sends `file_job_queued`).

services.schedule_refresh sends `refresh_wanted` once its transaction commits; the receiver here
enqueues the task (without REDIS_URL the task runs in process). The app loads this module when it
starts (annotations/apps.py), so the receiver is always connected.
"""
from celery import shared_task
from django.dispatch import receiver

from annotations.models import FileJob, Study
from annotations.studies import file_jobs

from . import services
from .figures import Options


@shared_task(ignore_result=True)
def refresh_leaderboard(study_id, options_key=None, force=False):
    """Bring one snapshot (or, without options_key, every snapshot of the study) up to date.

    Without `force` a snapshot that already saw every ranking is left alone, so a burst of
    changes that each enqueued a refresh costs one computation, not one each.
    """
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return
    keys = [options_key] if options_key else services.options_to_refresh(study)
    for key in keys:
        options = Options.from_key(key)
        if force:
            services.refresh(study, options)
        else:
            services.fresh(study, options)


@receiver(services.refresh_wanted)
def _enqueue_refresh(sender, *, study_id, options_key, **kwargs):
    refresh_leaderboard.delay(study_id, options_key)


@shared_task(acks_late=True, ignore_result=True)
def run_rankings_import(job_id):
    """Safe to deliver twice, or again after a worker was killed: see file_jobs.run."""
    services.run_rankings_import(job_id)


@shared_task(acks_late=True, ignore_result=True)
def run_rankings_export(job_id):
    services.run_rankings_export(job_id)


@receiver(file_jobs.file_job_queued)
def _enqueue_file_job(sender, *, job_id, kind, **kwargs):
    task = {FileJob.Kind.RANKINGS_IMPORT: run_rankings_import,
            FileJob.Kind.RANKINGS_EXPORT: run_rankings_export}.get(kind)
    if task is not None:
        task.delay(job_id)
