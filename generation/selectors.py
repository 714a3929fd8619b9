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


@dataclass
class JobStats:
    """What the model did on a job's items: how many outputs it gave, how many parsed, tokens in
    and out, and seconds (request time summed; wall time from start to finish)."""
    outputs: int  # items with an output from the model: parsed (done) or kept raw (unparsed)
    parsed: int
    failed: int  # requests that got no output at all
    prompt_tokens: int
    completion_tokens: int
    request_seconds: float
    wall_seconds: float | None

    @property
    def parse_rate(self):
        return self.parsed / self.outputs if self.outputs else None

    @property
    def mean_completion_tokens(self):
        return self.completion_tokens / self.outputs if self.outputs else None

    @property
    def tokens_per_s(self):
        return self.completion_tokens / self.wall_seconds if self.wall_seconds else None


def job_stats(job):
    S = GenerationItem.Status
    # Items marked done without a request (their response existed already) have no attempts.
    answered = job.items.filter(attempts__gt=0)
    totals = answered.aggregate(
        outputs=Count("id", filter=Q(status__in=[S.DONE, S.UNPARSED])),
        parsed=Count("id", filter=Q(status=S.DONE)),
        failed=Count("id", filter=Q(status=S.FAILED)),
        prompt_tokens=Sum("prompt_tokens"), completion_tokens=Sum("completion_tokens"),
        request_seconds=Sum("seconds"),
    )
    wall = None
    if job.started_at and job.finished_at:
        wall = (job.finished_at - job.started_at).total_seconds()
    return JobStats(outputs=totals["outputs"], parsed=totals["parsed"], failed=totals["failed"],
                    prompt_tokens=totals["prompt_tokens"] or 0,
                    completion_tokens=totals["completion_tokens"] or 0,
                    request_seconds=totals["request_seconds"] or 0.0, wall_seconds=wall)
