"""Background work for annotations: refreshing cached leaderboards after rankings change.

Enqueued with transaction.on_commit (leaderboard.schedule_refresh); without REDIS_URL it runs in process.
"""
from celery import shared_task

from . import leaderboard
from .models import Study


@shared_task(ignore_result=True)
def refresh_leaderboard(study_id, options_key=None, force=False):
    """Bring one snapshot (or, without options_key, every snapshot of the study) up to date.

    Without `force` a snapshot that already saw every ranking is left alone, so a burst of
    submissions that each enqueued a refresh costs one computation, not one each.
    """
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return
    keys = [options_key] if options_key else leaderboard.options_to_refresh(study)
    for key in keys:
        options = leaderboard.Options.from_key(key)
        if force:
            leaderboard.refresh(study, options)
        else:
            leaderboard.fresh(study, options)
