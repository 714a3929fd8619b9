"""Writes of the loading area: studies and their settings, researchers, systems and their responses
(uploaded in bulk, or generated one by one).

Views, serializers, commands, tasks and the generation app call these; they validate first and
write all or nothing.
"""
import gc
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from annotations.db import bulk_insert, next_ids
from annotations.models import (
    Criterion, FileJob, Item, Membership, OutputUpload, Response, ResponseRevision, Study, System,
)

from . import file_jobs, ingest
from .ingest import UploadRejected
from .selectors import systems_with_responses

CHUNK_ROWS = 5000
# A chunk also ends at this many characters of text, so that long rows keep it a few MB.
CHUNK_CHARS = 16_000_000
# What an upload writes per response; the other columns (source 'uploaded', empty metadata, the
# timestamps) take their database defaults, which saves formatting and parsing them 100,000 times.
RESPONSE_COLUMNS = ["item_id", "system_id", "text", "reasoning"]


class StudyInvalid(Exception):
    def __init__(self, errors):
        self.errors = errors  # field -> message
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def parse_criteria(value):
    """Accept 'overall' / 'fluency, comforting' / a list of names or {name, label, description}."""
    if isinstance(value, str):
        value = [part for line in value.splitlines() for part in line.split(",")]
    criteria = []
    for entry in value or []:
        if isinstance(entry, str):
            entry = {"name": entry}
        label = (entry.get("label") or entry.get("name") or "").strip()
        name = slugify(entry.get("name") or "")
        if not label and not name:
            continue
        criteria.append({"name": name, "label": label or name,
                         "description": (entry.get("description") or "").strip()})
    return criteria


# Pages at /studies/<name>/ that a study's own address would hide (annotations/studies/urls.py).
RESERVED_SLUGS = frozenset({"new", "design"})


def check_study(*, slug, title, criteria, responses_per_screen, annotations_per_item, instance=None,
                attention_min_pass_rate=None):
    errors = {}
    if not slug or slug != slugify(slug):
        errors["slug"] = "use lower-case letters, digits and hyphens only, e.g. 'empathy-pilot'"
    elif slug in RESERVED_SLUGS:
        errors["slug"] = f"'{slug}' names a page of the site (/studies/{slug}/); choose another slug"
    elif Study.objects.filter(slug=slug).exclude(pk=getattr(instance, "pk", None)).exists():
        errors["slug"] = f"a study called '{slug}' already exists; choose another slug"
    if not (title or "").strip():
        errors["title"] = "give the study a title"
    if criteria is not None:
        if not criteria:
            errors["criteria"] = "give at least one criterion, e.g. 'overall'"
        elif any(not c["name"] for c in criteria):
            errors["criteria"] = "criterion names need letters or digits, e.g. 'comforting'"
        elif len({c["name"] for c in criteria}) != len(criteria):
            errors["criteria"] = "each criterion may appear only once"
    if not 2 <= int(responses_per_screen) <= 12:
        errors["responses_per_screen"] = "show between 2 and 12 responses per screen"
    if not 1 <= int(annotations_per_item) <= 100:
        errors["annotations_per_item"] = "ask for between 1 and 100 annotations per item"
    if attention_min_pass_rate is not None and not 0 <= float(attention_min_pass_rate) <= 1:
        errors["attention_min_pass_rate"] = "give a share between 0 and 1, e.g. 0.8"
    if errors:
        raise StudyInvalid(errors)


@transaction.atomic
def create_study(*, owner, slug, title, criteria=("overall",), instructions="",
                 responses_per_screen=4, annotations_per_item=3, allow_ties=False, status=None):
    """A new study, a draft unless `status` says otherwise; a status other than draft goes through
    set_study_status and its checks (a new study has nothing to rank, so it cannot open)."""
    criteria = parse_criteria(list(criteria) if not isinstance(criteria, str) else criteria)
    check_study(slug=slug, title=title, criteria=criteria, responses_per_screen=responses_per_screen,
                annotations_per_item=annotations_per_item)
    study = Study.objects.create(
        slug=slug, title=title.strip(), owner=owner, instructions=instructions,
        responses_per_screen=responses_per_screen, annotations_per_item=annotations_per_item,
        allow_ties=allow_ties,
    )
    Criterion.objects.bulk_create(
        Criterion(study=study, position=i, **c) for i, c in enumerate(criteria)
    )
    Membership.objects.create(study=study, user=owner, role=Membership.Role.RESEARCHER)
    if status and status != study.status:
        set_study_status(study, status)  # refused: the atomic block undoes the creation too
    return study


def set_study_status(study, status):
    """Move a study between draft, open and closed; opening needs something to rank."""
    if status == Study.Status.OPEN and study.status != Study.Status.OPEN:
        rankable = (
            Item.objects.filter(study=study).annotate(n=models.Count("responses")).filter(n__gte=2).exists()
        )
        if not rankable:
            raise StudyInvalid({"status": "the study cannot open yet: no item has responses from two "
                                          "or more systems. Upload the systems' outputs first."})
    study.status = status
    study.save(update_fields=["status", "updated_at"])
    return study


@transaction.atomic
def update_study(study, **changes):
    """Change a study's title, instructions and settings (slug and criteria stay fixed), and its
    status when `status` is among the changes. The web form and the API both come here."""
    new_status = changes.pop("status", None)
    check_study(slug=study.slug, title=changes.get("title", study.title), criteria=None, instance=study,
                responses_per_screen=changes.get("responses_per_screen", study.responses_per_screen),
                annotations_per_item=changes.get("annotations_per_item", study.annotations_per_item),
                attention_min_pass_rate=changes.get("attention_min_pass_rate"))
    excludes_others = ("attention_min_pass_rate" in changes
                       and changes["attention_min_pass_rate"] != study.attention_min_pass_rate)
    for field, value in changes.items():
        setattr(study, field, value)
    study.save()
    if excludes_others:
        study.figures_changed()  # who is left out for failed attention checks may change
    if new_status:
        set_study_status(study, new_status)
    return study


def add_collaborator(study, username):
    """Give an existing user the researcher role on a study."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        raise StudyInvalid({"username": f"no user '{username}'; they need an account first"})
    existing = Membership.objects.filter(study=study, user=user).first()
    if existing and existing.role == Membership.Role.RESEARCHER:
        raise StudyInvalid({"username": f"{username} is already a researcher of this study"})
    if existing and existing.role == Membership.Role.ANNOTATOR and existing.study.assignments.filter(
            annotator=user).exists():
        # A researcher sees system names; someone who has ranked items of this study must stay blind.
        raise StudyInvalid({"username": f"{username} has already annotated this study and must stay blind "
                                        "to its systems; invite another account"})
    return add_member(study, user, Membership.Role.RESEARCHER)


@transaction.atomic
def replace_api_token(user):
    """A new API token for the researcher; the old one stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


def add_member(study, user, role):
    membership, _ = Membership.objects.update_or_create(study=study, user=user, defaults={"role": role})
    return membership


@dataclass
class ImportSummary:
    rows: int = 0
    responses_created: int = 0
    responses_replaced: int = 0
    responses_unchanged: int = 0
    items_created: int = 0
    systems_created: int = 0
    file_format: str = ""
    upload_id: int | None = None

    @property
    def changed(self):
        return bool(self.responses_created or self.responses_replaced or self.items_created
                    or self.systems_created)

    def as_dict(self):
        return asdict(self)


def import_outputs(study, fileobj, *, filename="", file_format=None, replace=False, user=None):
    """Load one file of system outputs into a study, all or nothing.

    Raises UploadRejected (nothing written) when any row is wrong. Rows already stored with the
    same text are left alone; a changed response is refused unless `replace`, and then its old
    text is kept as a ResponseRevision.
    """
    _check_outputs_file(study, fileobj, file_format)
    if file_format is None:
        head = fileobj.read(4096)
        fileobj.seek(0)
        file_format = ingest.detect_format(filename, head)
    limits = ingest.Limits(settings.EVALSITE_MAX_TEXT_CHARS, settings.EVALSITE_MAX_REASONING_CHARS,
                           settings.EVALSITE_MAX_ROW_BYTES)
    max_errors = settings.EVALSITE_MAX_REPORTED_ERRORS  # read once: settings are a lazy object
    with transaction.atomic(), _cyclic_gc_paused(), _foreign_keys_checked_per_statement():
        writer = _OutputWriter(study, replace=replace)
        writer.summary.file_format = file_format
        errors = []
        truncated = False
        chunk = []
        chunk_chars = 0
        with ingest.ReadAhead(ingest.read_rows(fileobj, file_format, limits)) as results:
            for result in results:
                if isinstance(result, ingest.RowError):
                    errors.append(result)
                    if len(errors) >= max_errors:
                        truncated = True
                        break
                else:
                    chunk.append(result)
                    chunk_chars += len(result.prompt) + len(result.response) + len(result.reasoning)
                if len(chunk) >= CHUNK_ROWS or chunk_chars >= CHUNK_CHARS:
                    errors.extend(writer.write(chunk, dry_run=bool(errors)))
                    chunk = []
                    chunk_chars = 0
        if chunk and not truncated:
            errors.extend(writer.write(chunk, dry_run=bool(errors)))
        if errors:
            # Leaving the atomic block by an exception undoes every chunk already written.
            raise UploadRejected(sorted(errors, key=lambda e: (e.line or 0)), truncated=truncated)
        summary = writer.summary
        if summary.changed:
            upload = OutputUpload.objects.create(
                study=study, uploaded_by=user if user and user.is_authenticated else None,
                filename=filename[:255], file_format=file_format, replace=replace,
                rows=summary.rows, responses_created=summary.responses_created,
                responses_replaced=summary.responses_replaced,
                responses_unchanged=summary.responses_unchanged,
                items_created=summary.items_created, systems_created=summary.systems_created,
            )
            ResponseRevision.objects.filter(pk__in=writer.revision_ids).update(replaced_by=upload)
            summary.upload_id = upload.pk
            if summary.systems_created or (writer.empty_systems and Response.objects.filter(
                    system_id__in=writer.empty_systems).exists()):
                study.figures_changed()  # a system with its first responses joins the leaderboard
        return summary


def _check_outputs_file(study, fileobj, file_format):
    """What can be refused before a line is read: a closed study, an empty or too large file, an
    unknown format. The request checks these before handing a large file to a worker too."""
    if study.status == Study.Status.CLOSED:
        raise UploadRejected([ingest.RowError(None, f"study '{study.slug}' is closed; reopen it "
                                                    "before adding responses")], status=409)
    ingest.check_file_size(fileobj, "the file that holds the outputs", settings.EVALSITE_MAX_UPLOAD_BYTES)
    if file_format is not None and file_format not in ingest.FORMATS:
        raise UploadRejected([ingest.RowError(None, f"unknown format '{file_format}'; use one of "
                                                    f"{', '.join(ingest.FORMATS)}")])


def upload_outputs(study, upload, *, file_format=None, replace=False, user=None):
    """An uploaded file of outputs from the web or the API: loaded now (an ImportSummary) when it
    is at most EVALSITE_BACKGROUND_BYTES, else stored and handed to a worker (a FileJob)."""
    if not file_jobs.in_background(upload):
        return import_outputs(study, upload, filename=upload.name, file_format=file_format,
                              replace=replace, user=user)
    _check_outputs_file(study, upload, file_format)
    return file_jobs.start(study, FileJob.Kind.OUTPUTS_UPLOAD, user=user, upload=upload,
                           options={"file_format": file_format, "replace": bool(replace)})


def run_outputs_upload(job_id):
    """The worker's side of a large upload: import_outputs on the stored file, progress from the
    bytes read; the job ends done with the summary, or failed with the located problems."""
    def work(job):
        with file_jobs.input_file(job) as fileobj:
            summary = import_outputs(job.study, fileobj, filename=job.filename,
                                     file_format=job.options.get("file_format"),
                                     replace=job.options.get("replace", False), user=job.created_by)
        return summary.as_dict()

    return file_jobs.run(job_id, FileJob.Kind.OUTPUTS_UPLOAD, work)


@contextmanager
def _cyclic_gc_paused():
    """Pause Python's cycle collector while a large file is read.

    A 100,000-row upload allocates hundreds of thousands of small containers that live until
    their chunk is written; each full collection walks them and everything Django has loaded,
    finding nothing (rows hold no reference cycles, so reference counting frees them). Measured
    at about a tenth of an upload's time. Only the collector that was on is switched back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _foreign_keys_checked_per_statement():
    """Check foreign keys at the end of each chunk's COPY instead of all at once on commit.

    Django declares them DEFERRABLE INITIALLY DEFERRED, so a 100,000-row upload would leave 200,000
    checks (item and system of each response) to the commit, with nothing left to read meanwhile.
    Checked per statement, they run while the reader thread parses the next rows. Switched back to
    deferred when the upload succeeds (requests run in one transaction); on an error the rollback
    restores it.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


class _OutputWriter:
    """Writes validated rows chunk by chunk with bulk queries; compares against what is stored."""

    def __init__(self, study, replace):
        self.study = study
        self.replace = replace
        self.summary = ImportSummary()
        self.systems = dict(System.objects.filter(study=study).values_list("name", "id"))
        # Systems with no response yet (e.g. their generation job failed) are not on the leaderboard.
        self.empty_systems = set(self.systems.values()) - set(
            systems_with_responses(study).values_list("id", flat=True))
        self.items = {}  # external_id -> item id, for items seen in this upload
        # A study with no items yet (the usual first upload) needs no look-ups of stored items.
        self.had_items = Item.objects.filter(study=study).exists()
        self.new_item_ids = set()  # created by this upload: they cannot hold responses yet
        self.revision_ids = []

    def write(self, rows, dry_run=False):
        """Write a chunk, or with dry_run (the upload is already refused) only check it, so that
        every problem of the file is reported at once, changed responses included."""
        self.summary.rows += len(rows)
        self._ensure_systems(rows, dry_run)
        errors = self._ensure_items(rows, dry_run)
        errors.extend(self._write_responses(rows, dry_run=dry_run or bool(errors)))
        return errors

    def _ensure_systems(self, rows, dry_run):
        new = sorted({row.system for row in rows} - set(self.systems))
        if not new or dry_run:
            return
        created = System.objects.bulk_create(System(study=self.study, name=name) for name in new)
        self.systems.update((s.name, s.pk) for s in created)
        self.summary.systems_created += len(created)

    def _ensure_items(self, rows, dry_run):
        errors = []
        first = {}
        for row in rows:
            if row.item_id not in self.items:
                first.setdefault(row.item_id, row)
        if not first:
            return errors
        stored = ()
        if self.had_items:
            stored = Item.objects.filter(study=self.study, external_id__in=list(first)).values_list(
                "external_id", "id", "prompt", "metadata")
        for external_id, pk, prompt, metadata in stored:
            row = first.pop(external_id)
            if prompt != row.prompt:
                errors.append(ingest.RowError(
                    row.line, f"differs from the prompt already stored for item '{external_id}'; "
                    "a stored prompt is never changed: fix the prompt or use a new item_id", "prompt"))
                self.items[external_id] = pk  # still compared: the upload reports every problem
                continue
            if row.metadata and metadata and row.metadata != metadata and not self.replace:
                errors.append(ingest.RowError(
                    row.line, f"differs from the metadata stored for item '{external_id}' "
                    f"({json.dumps(metadata, ensure_ascii=False)[:200]}); leave it out, give the same, "
                    "or upload with replace", "metadata"))
                self.items[external_id] = pk
                continue
            if row.metadata and row.metadata != metadata and not dry_run:
                Item.objects.filter(pk=pk).update(metadata=row.metadata)
            self.items[external_id] = pk
        if dry_run or errors:
            return errors
        now = timezone.now()
        columns = ["study_id", "external_id", "prompt", "metadata", "created_at"]
        values = [(self.study.pk, row.item_id, row.prompt, row.metadata, now) for row in first.values()]
        if connection.vendor == "postgresql":
            # Ids drawn from the sequence first, so the new items need no look-up after the COPY.
            ids = next_ids(Item, len(first))
            bulk_insert(Item, ["id", *columns], [(pk, *row) for pk, row in zip(ids, values)])
            ids = dict(zip(first, ids))
        else:
            bulk_insert(Item, columns, values)
            ids = dict(Item.objects.filter(study=self.study, external_id__in=list(first))
                       .values_list("external_id", "id"))
        self.items.update(ids)
        self.new_item_ids.update(ids.values())
        self.summary.items_created += len(ids)
        return errors

    def _write_responses(self, rows, dry_run=False):
        errors = []
        items, systems = self.items, self.systems
        if dry_run:
            # Only stored items and systems can hold a response that this row would change.
            rows = [row for row in rows if row.item_id in items and row.system in systems
                    and items[row.item_id] not in self.new_item_ids]
            if not rows:
                return errors
        elif all(items[row.item_id] in self.new_item_ids for row in rows):
            # Items made by this upload hold no responses yet: nothing to compare against.
            to_create = [(items[row.item_id], systems[row.system], row.response, row.reasoning)
                         for row in rows]
            self.summary.responses_created += bulk_insert(Response, RESPONSE_COLUMNS, to_create)
            return errors
        keyed = {(items[row.item_id], systems[row.system]): row for row in rows}
        old_item_ids = {key[0] for key in keyed if key[0] not in self.new_item_ids}
        stored = {
            (item_id, system_id): (pk, text, reasoning, source)
            for pk, item_id, system_id, text, reasoning, source in Response.objects.filter(
                item_id__in=old_item_ids, system_id__in={key[1] for key in keyed}
            ).values_list("pk", "item_id", "system_id", "text", "reasoning", "source")
        }
        to_create, to_replace, revisions = [], [], []
        for key, row in keyed.items():
            existing = stored.get(key)
            if existing is None:
                to_create.append((key[0], key[1], row.response, row.reasoning))
                continue
            pk, text, reasoning, source = existing
            if text == row.response and reasoning == row.reasoning:
                self.summary.responses_unchanged += 1
                continue
            if not self.replace:
                errors.append(ingest.RowError(
                    row.line, f"item '{row.item_id}' already has a different response from system "
                    f"'{row.system}'; upload with replace to overwrite it (the old text is kept in "
                    "the response's history)", "response"))
                continue
            revisions.append(ResponseRevision(response_id=pk, text=text, reasoning=reasoning, source=source))
            to_replace.append(Response(pk=pk, text=row.response, reasoning=row.reasoning,
                                       source=Response.Source.UPLOADED))
        if errors or dry_run:
            return errors
        self.summary.responses_created += bulk_insert(Response, RESPONSE_COLUMNS, to_create)
        if to_replace:
            created = ResponseRevision.objects.bulk_create(revisions, batch_size=2000)
            self.revision_ids.extend(r.pk for r in created)
            Response.objects.bulk_update(to_replace, ["text", "reasoning", "source"], batch_size=1000)
            Response.objects.filter(pk__in=[r.pk for r in to_replace]).update(updated_at=timezone.now())
            self.summary.responses_replaced += len(to_replace)
        return errors


# ---------------------------------------------------------------------------------------------
# Systems and responses one at a time (generation jobs)


class ResponseInvalid(Exception):
    """A generated text cannot be stored as a response; the message says why."""


def check_system_name(name):
    """What is wrong with a new system's name, or None. The same limits as an upload's `system`."""
    name = (name or "").strip()
    if not name:
        return "Give the new system a name."
    if len(name) > ingest.MAX_SYSTEM_CHARS:
        return f"At most {ingest.MAX_SYSTEM_CHARS} characters."
    return None


def describe_systems(study, descriptions):
    """Give the study's systems a description ({name: text}) where they have none yet."""
    for system in study.systems.filter(description="", name__in=list(descriptions)):
        if descriptions[system.name]:
            system.description = descriptions[system.name]
            system.save(update_fields=["description"])


def add_system(study, name, *, description=""):
    """The study's system of this name, created (with the description) when it has none yet."""
    problem = check_system_name(name)
    if problem:
        raise StudyInvalid({"system_name": problem})
    system, _created = System.objects.get_or_create(
        study=study, name=name.strip(), defaults={"description": description})
    return system


def check_response_text(text):
    """Refuse a text that an upload would refuse: empty, or longer than EVALSITE_MAX_TEXT_CHARS."""
    if not text.strip():
        raise ResponseInvalid("the answer is empty")
    if len(text) > settings.EVALSITE_MAX_TEXT_CHARS:
        raise ResponseInvalid(f"answer longer than {settings.EVALSITE_MAX_TEXT_CHARS} characters")


def add_generated_response(item_id, system_id, text, *, reasoning=""):
    """Store a generated response, unless the item already has one from this system (a rerun, or an
    uploaded one): the (item, system) constraint arbitrates, so a redelivered task stores nothing
    twice. Raises ResponseInvalid for a text an upload would refuse.
    """
    check_response_text(text)
    now = timezone.now()
    first = not Response.objects.filter(system_id=system_id).exists()
    Response.objects.bulk_create([Response(
        item_id=item_id, system_id=system_id, text=text, reasoning=reasoning,
        source=Response.Source.GENERATED, created_at=now, updated_at=now,
    )], ignore_conflicts=True)
    if first:
        # Its first response puts the system on the leaderboard: cached ones no longer list all.
        Study.objects.get(systems__pk=system_id).figures_changed()
