"""Reads for generation pages: a job's progress, computed from its items' rows every time, and
the failures to list; nothing here writes.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from .models import GenerationItem, GenerationJob

# Rates while a job runs come from this recent window, so a job resumed after a pause, or slowed
# by a busy server, shows its speed now rather than its average since it started.
RATE_WINDOW = timedelta(seconds=30)
FAILURE_LIST_LIMIT = 200


@dataclass
class Progress:
    total: int
    done: int
    failed: int
    unparsed: int
    pending: int
    responses_per_s: float | None
    tokens_per_s: float | None
    seconds_left: float | None

    @property
    def finished(self):
        return self.total - self.pending

    def percent(self, count):
        return 100.0 * count / self.total if self.total else 0.0

    @property
    def done_percent(self):
        return self.percent(self.done)

    @property
    def failed_percent(self):
        return self.percent(self.failed + self.unparsed)


def job_progress(job, now=None):
    now = now or timezone.now()
    S = GenerationItem.Status
    counts = job.items.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(status=S.DONE)),
        failed=Count("id", filter=Q(status=S.FAILED)),
        unparsed=Count("id", filter=Q(status=S.UNPARSED)),
        pending=Count("id", filter=Q(status=S.PENDING)),
    )
    responses_per_s = tokens_per_s = seconds_left = None
    if job.started_at:
        running = job.status == GenerationJob.Status.RUNNING
        end = now if running else (job.finished_at or now)
        start = max(job.started_at, end - RATE_WINDOW) if running else job.started_at
        elapsed = (end - start).total_seconds()
        window = job.items.filter(finished_at__gt=start, finished_at__lte=end).exclude(
            status=S.PENDING).aggregate(n=Count("id", filter=Q(status=S.DONE)),
                                        tokens=Sum("completion_tokens"))
        if elapsed > 0:
            responses_per_s = window["n"] / elapsed
            tokens_per_s = (window["tokens"] or 0) / elapsed
        if running and counts["pending"]:
            # Every finished item costs time, failed or not, so they all count towards the pace.
            finished = job.items.filter(finished_at__gt=start, finished_at__lte=end).count()
            if finished and elapsed > 0:
                seconds_left = counts["pending"] / (finished / elapsed)
    return Progress(responses_per_s=responses_per_s, tokens_per_s=tokens_per_s,
                    seconds_left=seconds_left, **counts)


def job_failures(job, limit=FAILURE_LIST_LIMIT):
    """Failed and unparsed items with their reasons (and raw output), first ones first."""
    return (job.items.filter(status__in=[GenerationItem.Status.FAILED,
                                         GenerationItem.Status.UNPARSED])
            .select_related("item").order_by("id")[:limit])


def study_jobs(study):
    return study.generation_jobs.select_related("system", "created_by")
