"""Writes of the results area: rankings imported from elsewhere, the cached leaderboards (computed,
stored, refreshed) and the public read-only link.
"""
import logging
import secrets
import tempfile
from dataclasses import asdict, dataclass

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver
from django.utils import timezone

from annotations.db import bulk_insert
from annotations.models import (
    Assignment, Criterion, FileJob, Item, LeaderboardSnapshot, Ranking, Response, Study, System,
)
from annotations.studies import file_jobs, ingest
from annotations.studies.ingest import UploadRejected

from . import exports, rankings_io
from .figures import DEFAULT, compute
from .selectors import figures_state, snapshot, snapshot_keys

log = logging.getLogger(__name__)

# Up to this many rankings the page computes a missing leaderboard while it renders (well under a
# second); above, it shows progress and a task computes it.
COMPUTE_INLINE_MAX = 20_000

# Sent (after the transaction commits) when a study's cached leaderboards should be recomputed:
# `options_key` names one snapshot, or None for all of them. tasks.py turns it into a Celery task,
# so that writing here never imports the task that calls back into these services.
refresh_wanted = Signal()


# ---------------------------------------------------------------------------------------------
# Cached leaderboards


def refresh(study, options=DEFAULT):
    """Compute and store the snapshot for these options; returns it.

    A computation that saw fewer rankings, or an older figures_version, than the stored one never
    replaces it (two refreshes may race; the newer data wins).
    """
    data = compute(study, options)
    values = {"data": data, "rankings_count": data["rankings_count"],
              "last_ranking_id": data["last_ranking_id"], "figures_version": data["figures_version"],
              "seconds": data["seconds"]}
    updated = LeaderboardSnapshot.objects.filter(
        study=study, options=options.key, rankings_count__lte=data["rankings_count"],
        figures_version__lte=data["figures_version"],
    ).update(computed_at=timezone.now(), **values)
    if not updated:
        try:
            with transaction.atomic():
                LeaderboardSnapshot.objects.create(study=study, options=options.key, **values)
        except IntegrityError:
            pass  # a newer snapshot is already there
    log.info("leaderboard of %s (%s): %d rankings in %.2f s", study.slug, options.key,
             data["rankings_count"], data["seconds"])
    return LeaderboardSnapshot.objects.get(study=study, options=options.key)


def is_fresh(snap, state):
    return snap is not None and (snap.rankings_count, snap.last_ranking_id, snap.figures_version) == tuple(state)


def fresh(study, options=DEFAULT):
    """The up-to-date snapshot, computing it now only when missing or stale (downloads, API, CLI,
    and the refresh task)."""
    snap = snapshot(study, options)
    if is_fresh(snap, figures_state(study)):
        return snap
    return refresh(study, options)


def options_to_refresh(study):
    """The default options plus every option set someone has looked at for this study."""
    return sorted(snapshot_keys(study) | {DEFAULT.key})


def schedule_refresh(study, options=None, state=None):
    """Have a task refresh the study's snapshots once the current transaction commits (a worker must
    see the rankings).

    With options, only that snapshot, at most once per state (pages poll while they wait, and
    must not enqueue one task per poll); without, every snapshot of the study.
    """
    key = options.key if options else None
    if key is not None:
        guard = f"leaderboard-refresh:{study.pk}:{key}:{':'.join(map(str, state or ()))}"
        if not cache.add(guard, True, timeout=300):
            return False
    study_id = study.pk

    def send():
        try:
            refresh_wanted.send(sender=LeaderboardSnapshot, study_id=study_id, options_key=key)
        except Exception:
            # Not enqueued (the broker is down): drop the guard, so that the next page that finds
            # the snapshot stale schedules the refresh again.
            if key is not None:
                cache.delete(guard)
            raise

    # robust: a failing refresh is logged; it must not undo or fail the write that caused it.
    transaction.on_commit(send, robust=True)
    return True


@receiver(post_save, sender=Assignment)
def _ranking_submitted(sender, instance, update_fields=None, **kwargs):
    """A study that stops when its question is answered must see its stop signal without anyone
    opening the leaderboard: each submission refreshes its default leaderboard (after commit, on a
    worker; a refresh that finds it fresh does nothing)."""
    if instance.status != Assignment.Status.SUBMITTED or (update_fields and "status" not in update_fields):
        return
    study = Study.objects.filter(pk=instance.study_id, stop_when_answered=True).first()
    if study is not None:
        schedule_refresh(study, DEFAULT, state=("submitted", instance.pk))


@dataclass
class Board:
    """What a page shows: a snapshot (maybe stale, then `refreshing`), or nothing yet."""

    snapshot: LeaderboardSnapshot | None
    rankings_count: int
    fresh: bool = False
    refreshing: bool = False

    @property
    def data(self):
        return self.snapshot.data if self.snapshot else None

    @property
    def empty(self):
        return self.rankings_count == 0


def current(study, options=DEFAULT):
    """For pages: never wait on a long computation when a snapshot exists.

    Fresh snapshot: shown. Stale: shown as it is while a task refreshes it. None: computed now
    when small, else a task computes it while the page shows progress.
    """
    state = figures_state(study)
    if state[0] == 0:
        return Board(None, 0, fresh=True)
    snap = snapshot(study, options)
    if is_fresh(snap, state):
        return Board(snap, state[0], fresh=True)
    if snap is None and state[0] <= COMPUTE_INLINE_MAX:
        return Board(refresh(study, options), state[0], fresh=True)
    schedule_refresh(study, options, state)
    return Board(snap, state[0], refreshing=True)


# ---------------------------------------------------------------------------------------------
# Rankings collected elsewhere


@dataclass
class RankingImportSummary:
    rows: int = 0
    rankings_created: int = 0
    rankings_unchanged: int = 0
    annotators: int = 0  # distinct annotators named in the file

    @property
    def changed(self):
        return bool(self.rankings_created)

    def as_dict(self):
        return asdict(self)


RANKINGS_FILE = "the JSONL file that holds the rankings"


def import_rankings(study, fileobj, *, filename="", user=None):
    """Load one JSONL file of rankings made elsewhere into a study, all or nothing.

    Raises UploadRejected (nothing written) when any line is wrong. A ranking already stored
    identically is left alone; a different one for the same item, criterion and annotator is
    refused (rankings are never overwritten). Ties are accepted whatever the study's setting:
    they are data recorded elsewhere, and the statistics define them.
    """
    ingest.check_file_size(fileobj, RANKINGS_FILE, settings.EVALSITE_MAX_UPLOAD_BYTES)
    check = _RankingCheck(study)
    rows, errors, truncated = [], [], False
    for result in rankings_io.read_rankings(fileobj):
        if isinstance(result, ingest.RowError):
            errors.append(result)
        else:
            rows.append(result)
        if len(errors) >= settings.EVALSITE_MAX_REPORTED_ERRORS:
            truncated = True
            break
    new, unchanged, study_errors = check.against_study(rows)
    errors.extend(study_errors)
    if errors:
        errors = sorted(errors, key=lambda e: (e.line or 0))
        raise UploadRejected(errors[:settings.EVALSITE_MAX_REPORTED_ERRORS],
                             truncated=truncated or len(errors) > settings.EVALSITE_MAX_REPORTED_ERRORS)
    summary = RankingImportSummary(rows=len(rows), rankings_created=len(new), rankings_unchanged=unchanged,
                                   annotators=len({row.annotator for row in rows}))
    if new:
        try:
            with transaction.atomic():
                _insert_rankings(study, new)
        except (IntegrityError, psycopg.IntegrityError):
            raise UploadRejected([ingest.RowError(
                None, "some of these rankings were stored by another import at the same moment; nothing "
                      "from this file was written. Import the file again.")], status=409) from None
        # The new rankings make every snapshot stale by themselves; refresh them now rather than
        # when someone next looks.
        schedule_refresh(study)
    return summary


def upload_rankings(study, upload, *, user=None):
    """A rankings file from the web or the API: imported now (a RankingImportSummary) when it is at
    most EVALSITE_BACKGROUND_BYTES, else stored and handed to a worker (a FileJob)."""
    if not file_jobs.in_background(upload):
        return import_rankings(study, upload, filename=upload.name, user=user)
    ingest.check_file_size(upload, RANKINGS_FILE, settings.EVALSITE_MAX_UPLOAD_BYTES)
    return file_jobs.start(study, FileJob.Kind.RANKINGS_IMPORT, user=user, upload=upload)


def run_rankings_import(job_id):
    """The worker's side of a large import: import_rankings on the stored file."""
    def work(job):
        with file_jobs.input_file(job) as fileobj:
            return import_rankings(job.study, fileobj, filename=job.filename, user=job.created_by).as_dict()

    return file_jobs.run(job_id, FileJob.Kind.RANKINGS_IMPORT, work)


def start_rankings_export(study, *, user=None):
    """Prepare the rankings export (the same JSONL as the streamed download) as a file a worker
    writes; old export files are cleared out first (file_jobs.sweep_files)."""
    file_jobs.sweep_files()
    return file_jobs.start(study, FileJob.Kind.RANKINGS_EXPORT, user=user, options={"format": "jsonl"},
                           filename=exports_filename(study))


def exports_filename(study):
    return f"{study.slug}-rankings.jsonl"


def run_rankings_export(job_id):
    """The worker's side of a prepared export: exports.export_rankings written to a file, progress
    as rows written of the study's rankings; a newer export replaces the study's older files."""
    def work(job):
        total = Ranking.objects.filter(study=job.study).count()
        progress = file_jobs.Progress(job)
        rows = 0
        with tempfile.TemporaryFile() as out:
            for line in exports.export_rankings(job.study):
                out.write(line)
                rows += 1
                progress(rows, total)
            file_jobs.store_output(job, out, exports_filename(job.study))
        return {"rows": rows, "size": job.size, "filename": job.filename}

    job = file_jobs.run(job_id, FileJob.Kind.RANKINGS_EXPORT, work)
    if job is not None and job.status == FileJob.Status.DONE:
        file_jobs.sweep_files(keep_latest_export=job)
    return job


RANKING_COLUMNS = ["study_id", "item_id", "criterion_id", "annotator_label", "ranking", "display_order",
                   "seconds", "source", "attention_passed", "created_at"]


def _insert_rankings(study, new):
    """Store checked rankings: (item id, criterion id, label, ranking ids, display ids, seconds, attention)."""
    imported = Ranking.Source.IMPORTED.value
    if connection.vendor == "postgresql":
        now = timezone.now()
        return bulk_insert(Ranking, RANKING_COLUMNS, [
            (study.pk, item_id, criterion_id, label, ranking, display, seconds, imported, attention, now)
            for item_id, criterion_id, label, ranking, display, seconds, attention in new])
    Ranking.objects.bulk_create((
        Ranking(study=study, item_id=item_id, criterion_id=criterion_id, annotator_label=label, ranking=ranking,
                display_order=display, seconds=seconds, source=imported, attention_passed=attention)
        for item_id, criterion_id, label, ranking, display, seconds, attention in new), batch_size=2000)
    return len(new)


class _RankingCheck:
    """Checks parsed rankings against what the study holds: items, systems, criteria, responses,
    and the rankings already stored."""

    LOOKUP_CHUNK = 5000  # ids per look-up query, well under PostgreSQL's limit on parameters

    def __init__(self, study):
        self.study = study
        self.systems = dict(System.objects.filter(study=study).values_list("name", "id"))
        self.criteria = dict(Criterion.objects.filter(study=study).values_list("name", "id"))
        self.items = {}  # external id -> item id, for the items the file names
        self.answered = {}  # item id -> names of the systems that answered it
        self.converted = {}  # tie groups of names -> (names, unknown names, groups of ids); few distinct

    def _load_named_items(self, rows):
        """Look up only the items the file names, and only their responses: a one-line import into
        a study of a million responses reads one item's."""
        names = {pk: name for name, pk in self.systems.items()}
        wanted = sorted({row.item_id for row in rows})
        for start in range(0, len(wanted), self.LOOKUP_CHUNK):
            found = dict(Item.objects.filter(study=self.study, external_id__in=wanted[start:start + self.LOOKUP_CHUNK])
                         .values_list("external_id", "id"))
            self.items.update(found)
            for item_id, system_id in Response.objects.filter(item_id__in=list(found.values())).order_by() \
                    .values_list("item_id", "system_id"):
                self.answered.setdefault(item_id, set()).add(names[system_id])

    def _convert(self, ranking):
        converted = self.converted.get(ranking)
        if converted is None:
            flat = {name for group in ranking for name in group}
            unknown = sorted(flat - self.systems.keys())
            ids = None if unknown else [[self.systems[name] for name in group] for group in ranking]
            converted = self.converted[ranking] = (flat, unknown, ids)
        return converted

    def _names(self, names, limit=12):
        names = sorted(names)
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more if names else "none yet"

    def against_study(self, rows):
        """(rankings to store as tuples for _insert_rankings, how many are stored identically, errors)."""
        self._load_named_items(rows)
        errors, keyed = [], {}
        for row in rows:
            problems = []
            item_id = self.items.get(row.item_id)
            if item_id is None:
                problems.append(ingest.RowError(
                    row.line, f"no item '{row.item_id}' in study '{self.study.slug}'; upload the item's "
                              "outputs first, or fix the id (ids are case-sensitive)", "item_id"))
            criterion_id = self.criteria.get(row.criterion)
            if criterion_id is None:
                problems.append(ingest.RowError(
                    row.line, f"no criterion '{row.criterion}' in this study; its criteria are "
                              f"{self._names(self.criteria)}", "criterion"))
            if Ranking.SITE_LABEL.fullmatch(row.annotator):
                problems.append(ingest.RowError(
                    row.line, f"'{row.annotator}' is reserved for this site's own annotators; give "
                              f"the annotator another name, e.g. 'ext-{row.annotator}'", "annotator"))
            flat, unknown, ranking = self._convert(row.ranking)
            if unknown:
                problems.append(ingest.RowError(
                    row.line, f"no system '{unknown[0]}' in this study; its systems are "
                              f"{self._names(self.systems)}", "ranking"))
            elif item_id is not None:
                missing = sorted(flat - self.answered.get(item_id, set()))
                if missing:
                    problems.append(ingest.RowError(
                        row.line, f"system '{missing[0]}' has no response to item '{row.item_id}', so "
                                  "nobody can have ranked it; upload that response first or leave the "
                                  "system out", "ranking"))
            if problems:
                errors.extend(problems)
                continue
            display = None if row.display_order is None else [self.systems[s] for s in row.display_order]
            keyed[(item_id, criterion_id, row.annotator)] = (row, ranking, display)
        stored = {}
        if keyed:
            labels = {key[2] for key in keyed}
            stored = {
                (item_id, criterion_id, label): rest
                for item_id, criterion_id, label, *rest in Ranking.objects.filter(
                    study=self.study, annotator_label__in=labels,
                ).values_list("item_id", "criterion_id", "annotator_label", "ranking", "display_order",
                              "seconds", "attention_passed")
            }
        new, unchanged = [], 0
        for key, (row, ranking, display) in keyed.items():
            old = stored.get(key)
            if old is None:
                new.append((key[0], key[1], row.annotator, ranking, display, row.seconds, row.attention_passed))
                continue
            differs = [name for name, mine, theirs in (
                ("ranking", _tie_groups(ranking), _tie_groups(old[0])),
                ("display_order", display, old[1]),
                ("seconds", row.seconds, old[2]),
                ("attention_passed", row.attention_passed, old[3]),
            ) if mine != theirs]
            if not differs:
                unchanged += 1
                continue
            errors.append(ingest.RowError(
                row.line, f"annotator '{row.annotator}' already has a ranking of item '{row.item_id}' under "
                          f"'{row.criterion}' with a different {' and '.join(differs)}; stored rankings are "
                          "never overwritten: remove this line, or import it under another annotator name",
                differs[0]))
        return new, unchanged, errors


def _tie_groups(ranking):
    """Order within a tie group carries no meaning."""
    return [sorted(group) for group in ranking or []]


# ---------------------------------------------------------------------------------------------
# The public leaderboard link


def create_public_link(study):
    """Give the study a public, read-only leaderboard link (kept if it already has one)."""
    if not study.public_token:
        study.public_token = secrets.token_urlsafe(32)
        study.save(update_fields=["public_token", "updated_at"])
    return study.public_token


def revoke_public_link(study):
    """The old link answers 404 from now on; a new link gets a new token."""
    study.public_token = None
    study.save(update_fields=["public_token", "updated_at"])
