"""File jobs (annotations.models.FileJob): large uploads, imports and exports run by a worker. The
lifecycle every kind shares lives here: start, hand to the queue, claim, progress, finish, files.

Each area says what its kinds do (studies.services: outputs uploads; results.services: rankings
imports and exports) and runs them through `run`, which makes a job safe to deliver twice:
  - a job that is done or failed is left alone;
  - on PostgreSQL a session advisory lock keeps a second worker off a job that one is running;
  - a job found "running" and unlocked by a new delivery (its worker was killed) runs again from
    its stored file, with `attempts` counted; the killed attempt's transaction was rolled back,
    and the work and the job's "done" commit together, so nothing is stored twice;
  - a job whose task never reached the queue (Redis down) is handed over again when its page or
    API resource is looked at (`hand_over`).
Progress cannot be read from the database (the import is one transaction), so it goes through
the cache: the bytes of the stored file read so far, or the rows written.
"""
import logging
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import PurePath

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F
from django.dispatch import Signal
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from kombu.exceptions import OperationalError

from annotations.models import FileJob

from .ingest import RowError, UploadRejected

log = logging.getLogger(__name__)

Kind = FileJob.Kind
Status = FileJob.Status
LIVE = (Status.QUEUED, Status.RUNNING)
INPUT_KINDS = (Kind.OUTPUTS_UPLOAD, Kind.RANKINGS_IMPORT)

# Sent once a job's creation commits (and when it is handed over again): the tasks modules of the
# areas turn it into their Celery task, so these services never import the tasks.
file_job_queued = Signal()

# In `result` of a queued job whose task could not be enqueued.
WAITING_FOR_QUEUE = ("Waiting for the task queue: Redis did not answer. Keep this page open: it "
                     "hands the job over again as soon as Redis does.")
# A job whose worker was killed this many times (a restart, or a file that exhausts its memory)
# is failed instead of being tried again.
MAX_ATTEMPTS = 3
# A queued job not started after this long (its message was lost, or the web process died before
# handing it over) is handed over again when looked at; at most once per this interval.
HAND_OVER_AFTER = timedelta(seconds=60)
PROGRESS_SECONDS = 0.25  # at most about four cache writes a second per job
_LOCK_BASE = 0x46494C45 << 32  # "FILE": advisory lock keys of file jobs, one per job id


def in_background(upload):
    """Whether an uploaded file is large enough to be handled by a worker instead of the request."""
    return (upload.size or 0) > settings.EVALSITE_BACKGROUND_BYTES


def _stored_name(filename):
    # A name of our own (the researcher's is kept in `filename`): nothing odd reaches the disk.
    suffix = "".join(PurePath(filename or "").suffixes[-2:])[:16]
    return f"{uuid.uuid4().hex}{suffix if suffix.replace('.', '').isalnum() else ''}"


def start(study, kind, *, user, upload=None, options=None, filename=""):
    """Create a queued job, store the uploaded file with it (moved, not read, when Django spooled
    it to disk) and hand it to the queue once the transaction commits."""
    job = FileJob(study=study, kind=kind, created_by=user if user and user.is_authenticated else None,
                  options=options or {}, filename=(upload.name if upload else filename)[:255])
    if upload is not None:
        job.size = upload.size
        job.file.save(_stored_name(upload.name), upload, save=False)
    try:
        job.save()
    except BaseException:
        delete_file(job.file.name)
        raise
    transaction.on_commit(lambda: publish(job), robust=True)
    return job


def publish(job):
    """Hand a queued job to the task queue; when the broker is down the job stays queued, marked
    waiting, instead of being lost or failing the request. True when handed over."""
    try:
        file_job_queued.send(sender=FileJob, job_id=job.pk, kind=job.kind)
    except OperationalError:  # what a publish raises once its retries against a dead broker ran out
        log.warning("file job %s: its task could not be enqueued; it waits for its page to try again",
                    job.pk, exc_info=True)
        FileJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(result={"waiting": WAITING_FOR_QUEUE})
        return False
    FileJob.objects.filter(pk=job.pk, status=Status.QUEUED, result__has_key="waiting").update(result={})
    return True


def hand_over(job):
    """Called whenever a job is looked at (its page polls, the API is asked): hand it to the queue
    again when its task never got there (Redis was down), was lost, or died with its worker and
    was not delivered again. Harmless when the task is there after all: `run` claims a job once.
    Returns the job, reloaded."""
    if job.status not in LIVE or _runs_in_process():
        return job
    waiting = job.status == Status.QUEUED and "waiting" in job.result
    stalled = (job.status == Status.RUNNING or timezone.now() - job.created_at > HAND_OVER_AFTER) \
        and not is_running_somewhere(job.pk)
    if waiting or (stalled and cache.add(f"file-job-hand-over:{job.pk}", True,
                                         timeout=HAND_OVER_AFTER.total_seconds())):
        publish(job)
    job.refresh_from_db()
    return job


def _runs_in_process():
    """Without a broker (the embedded default) a job runs inside the request that starts it, and
    nothing waits in a queue to be handed over."""
    return settings.CELERY_TASK_ALWAYS_EAGER


# ---------------------------------------------------------------------------------------------
# Running a job (the tasks call the areas' services, which call `run`)


def run(job_id, kind, work):
    """Run one job: `work(job)` does the kind's work and returns the result to store (the summary
    the synchronous path answers); UploadRejected ends the job failed with its located problems.
    The work and the job's "done" commit in one transaction. Returns the job, or None when
    there was nothing to do (finished already, or another worker runs it)."""
    job = FileJob.objects.filter(pk=job_id, kind=kind).first()
    if job is None or job.status not in LIVE:
        return None  # a redelivered task of a finished job
    with _locked(job_id) as mine:
        if not mine:
            log.info("file job %s: another worker runs it", job_id)
            return None
        job = FileJob.objects.select_related("study", "created_by").get(pk=job_id)
        if not _claim(job):
            return None
        try:
            with transaction.atomic():
                result = work(job)
                _finish(job, Status.DONE, result)
        except UploadRejected as exc:
            _finish(job, Status.FAILED, {**exc.as_dict(), "http_status": exc.status})
        except SoftTimeLimitExceeded:
            _finish(job, Status.FAILED, refusal(
                f"the job ran longer than the task time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s) "
                "and was stopped; nothing was written. Split the file into smaller ones.", 413))
        except Exception as exc:
            log.exception("file job %s failed", job_id)
            _finish(job, Status.FAILED, refusal(
                f"the job stopped on an unexpected error ({type(exc).__name__}); nothing was written. "
                "Try again; if it fails again, tell the site's administrators.", 500))
        finally:
            if job.kind == Kind.RANKINGS_EXPORT and job.status != Status.DONE:
                delete_file(job.file.name)
        job.refresh_from_db()
        return job


def refusal(message, status=400):
    """A failed job's result for a problem that is not located in the file."""
    return {**UploadRejected([RowError(None, message)]).as_dict(), "http_status": status}


def _claim(job):
    """Mark the job running and count the attempt; False when it is no longer live, or has been
    tried too often (then it is failed)."""
    # Off PostgreSQL there is no lock to tell a dead worker's job from a live one: only a queued
    # job is taken (the embedded default runs jobs in process, where nothing is delivered twice).
    claimable = LIVE if connection.vendor == "postgresql" else (Status.QUEUED,)
    if job.status not in claimable:
        return False
    if job.attempts >= MAX_ATTEMPTS:
        _finish(job, Status.FAILED, refusal(
            f"the job was started {job.attempts} times and never finished (the worker running it "
            "stopped each time); nothing was written. Split the file into smaller ones, or ask the "
            "site's administrators.", 500))
        return False
    claimed = FileJob.objects.filter(pk=job.pk, status__in=claimable, attempts=job.attempts).update(
        status=Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), result={})
    if claimed:
        job.refresh_from_db()
        if job.attempts > 1:
            log.warning("file job %s: attempt %s (an earlier one stopped without finishing)",
                        job.pk, job.attempts)
        report(job, 0.0)
    return bool(claimed)


def _finish(job, status, result):
    values = {"status": status, "result": result, "finished_at": timezone.now()}
    if job.kind == Kind.RANKINGS_EXPORT and status == Status.DONE:
        values.update(file=job.file.name, size=job.size, filename=job.filename)
    FileJob.objects.filter(pk=job.pk, status__in=LIVE).update(**values)
    job.status = status
    if job.kind in INPUT_KINDS:
        # The stored upload has served its purpose (once this commits: a rollback runs it again).
        name = job.file.name
        transaction.on_commit(lambda: delete_file(name), robust=True)


@contextmanager
def _locked(job_id):
    """On PostgreSQL, a session advisory lock on the job for as long as it runs: a second delivery
    of its task (the visibility timeout passed while it ran) finds it taken and leaves the job
    alone. A killed worker's connection closes, and the lock goes with it."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_BASE + job_id])
        mine = cursor.fetchone()[0]
    try:
        yield mine
    finally:
        if mine:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_BASE + job_id])


def is_running_somewhere(job_id):
    """Whether a live worker holds the job's lock (always False off PostgreSQL)."""
    if connection.vendor != "postgresql":
        return False
    with _locked(job_id) as free:
        return not free


# ---------------------------------------------------------------------------------------------
# Progress, through the cache


def _progress_key(job_id):
    return f"file-job-progress:{job_id}"


def report(job, fraction):
    cache.set(_progress_key(job.pk), min(max(float(fraction), 0.0), 1.0), timeout=24 * 3600)


def progress(job):
    """How far the job is, from 0 to 1: from the cache while it runs (0 when the cache is away)."""
    if job.status == Status.DONE:
        return 1.0
    if job.status != Status.RUNNING:
        return 0.0
    return cache.get(_progress_key(job.pk)) or 0.0


class Progress:
    """Reports done/total to the cache at most every PROGRESS_SECONDS (and less often when the
    cache is slow to answer, e.g. Redis is away: a job never waits on its progress bar)."""

    def __init__(self, job):
        self.job = job
        self._next = 0.0

    def __call__(self, done, total, force=False):
        now = time.monotonic()
        if not force and now < self._next:
            return
        report(self.job, done / total if total else 1.0)
        spent = time.monotonic() - now
        self._next = time.monotonic() + max(PROGRESS_SECONDS, 20 * spent)


class ProgressReader:
    """The stored file as the import services read it (read, readline, seek, tell, size), counting
    the bytes read and reporting them against the file's size."""

    def __init__(self, raw, size, progress):
        self._raw = raw
        self.size = size
        self.position = 0
        self._progress = progress

    def _count(self, data):
        self.position += len(data)
        self._progress(self.position, self.size, force=not data)
        return data

    def read(self, size=-1):
        return self._count(self._raw.read(size))

    def readline(self, size=-1):
        return self._count(self._raw.readline(size))

    def seek(self, offset, whence=0):
        self.position = self._raw.seek(offset, whence)
        return self.position

    def tell(self):
        return self._raw.tell()

    def __getattr__(self, name):
        return getattr(self._raw, name)


@contextmanager
def input_file(job):
    """The job's stored upload, opened for reading, reporting progress as it is read."""
    with job.file.open("rb") as raw:
        yield ProgressReader(raw, job.size or job.file.size, Progress(job))


# ---------------------------------------------------------------------------------------------
# Files


def store_output(job, fileobj, filename):
    """Store a written file (an export) as the job's file; it becomes visible with the job's
    "done", which commits with the rest of the work."""
    fileobj.seek(0, 2)
    job.size = fileobj.tell()
    fileobj.seek(0)
    job.filename = filename[:255]
    job.file.save(_stored_name(filename), File(fileobj), save=False)


def delete_file(name):
    if name:
        try:
            FileJob.file.field.storage.delete(name)
        except OSError:
            log.warning("could not delete the file job file %s", name, exc_info=True)


def export_expired(job):
    keep = timedelta(hours=settings.EVALSITE_EXPORT_KEEP_HOURS)
    return not job.file or (job.finished_at is not None and timezone.now() - job.finished_at > keep)


def sweep_files(study=None, keep_latest_export=None):
    """Delete the files no longer needed: prepared exports older than EVALSITE_EXPORT_KEEP_HOURS,
    or (with keep_latest_export) the study's older exports that a newer one replaces; and any
    upload left behind by a finished job. The job rows stay, so their pages can say what
    happened."""
    cutoff = timezone.now() - timedelta(hours=settings.EVALSITE_EXPORT_KEEP_HOURS)
    old = FileJob.objects.exclude(file="").filter(kind=Kind.RANKINGS_EXPORT, finished_at__lt=cutoff)
    leftovers = FileJob.objects.exclude(file="").filter(kind__in=INPUT_KINDS, status__in=[Status.DONE,
                                                                                             Status.FAILED])
    sets = [old, leftovers]
    if keep_latest_export is not None:
        sets.append(FileJob.objects.exclude(file="").filter(
            study=keep_latest_export.study, kind=Kind.RANKINGS_EXPORT, status=Status.DONE,
            finished_at__lt=keep_latest_export.finished_at))
    for queryset in sets:
        for pk, name in queryset.values_list("pk", "file"):
            if FileJob.objects.filter(pk=pk, file=name).update(file=""):
                delete_file(name)


def file_response(job):
    """The prepared export, streamed from storage (never read whole into memory)."""
    if job.kind != Kind.RANKINGS_EXPORT or job.status != Status.DONE:
        raise Http404("no file to download for this job")
    if export_expired(job):
        raise Http404("this export has expired or was replaced by a newer one; prepare it again")
    return FileResponse(job.file.open("rb"), as_attachment=True, filename=job.filename,
                        content_type="application/x-ndjson; charset=utf-8")


# ---------------------------------------------------------------------------------------------
# Reads shared by the pages and the API


def study_job(study, job_id, kinds=None):
    """The study's job, or 404: a job is seen only through its study (researcher_study)."""
    queryset = FileJob.objects.filter(study=study)
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    return get_object_or_404(queryset.select_related("study"), pk=job_id)


def refused(job):
    """A failed job's refusal as the synchronous path raises it, for the same templates."""
    result = job.result or {}
    errors = [RowError(e.get("line"), e.get("message", ""), e.get("field"), e.get("column"))
              for e in result.get("errors", [])]
    return UploadRejected(errors, truncated=result.get("truncated", False),
                          status=result.get("http_status", 400))
