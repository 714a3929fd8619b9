"""Background work of the results area: refreshing cached leaderboards.

services.schedule_refresh sends `refresh_wanted` once its transaction commits; the receiver here
enqueues the task (without REDIS_URL the task runs in process). The app loads this module when it
starts (annotations/apps.py), so the receiver is always connected.
"""
from celery import shared_task
from django.dispatch import receiver

from annotations.models import Study

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
