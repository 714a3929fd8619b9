"""Every write that spans models: creating studies, importing system outputs, membership.

Views, serializers, commands and tasks call these; they validate first and write all or nothing.
"""
import json
from dataclasses import asdict, dataclass

import orjson

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import ingest
from .models import Criterion, Item, Membership, OutputUpload, Response, ResponseRevision, Study, System

CHUNK_ROWS = 5000


class UploadRejected(Exception):
    """The upload was refused; nothing was written. `errors` are located RowErrors."""

    def __init__(self, errors, truncated=False, status=400):
        self.errors = list(errors)
        self.truncated = truncated
        self.status = status
        super().__init__("; ".join(str(e) for e in self.errors[:3]))

    def as_dict(self):
        return {
            "detail": f"The upload was refused: {len(self.errors)}{'+' if self.truncated else ''} "
                      "problem(s) found. Nothing was written; fix them and upload the file again.",
            "errors": [e.as_dict() for e in self.errors],
            "truncated": self.truncated,
        }


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


def check_study(*, slug, title, criteria, responses_per_screen, annotations_per_item, instance=None):
    errors = {}
    if not slug or slug != slugify(slug):
        errors["slug"] = "use lower-case letters, digits and hyphens only, e.g. 'empathy-pilot'"
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
    if errors:
        raise StudyInvalid(errors)


@transaction.atomic
def create_study(*, owner, slug, title, criteria=("overall",), instructions="",
                 responses_per_screen=4, annotations_per_item=3, allow_ties=False):
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
    if study.status == Study.Status.CLOSED:
        raise UploadRejected([ingest.RowError(None, f"study '{study.slug}' is closed; reopen it "
                                                    "before adding responses")], status=409)
    size = _size_of(fileobj)
    if size == 0:
        raise UploadRejected([ingest.RowError(None, "the file is empty (0 bytes); choose the file "
                                                    "that holds the outputs")])
    if size is not None and size > settings.EVALSITE_MAX_UPLOAD_BYTES:
        raise UploadRejected([ingest.RowError(
            None, f"the file is {size / 2**20:,.1f} MiB; the limit is "
                  f"{settings.EVALSITE_MAX_UPLOAD_BYTES / 2**20:,.0f} MiB. Split it into several uploads.")],
            status=413)
    if file_format is None:
        head = fileobj.read(4096)
        fileobj.seek(0)
        file_format = ingest.detect_format(filename, head)
    elif file_format not in ingest.FORMATS:
        raise UploadRejected([ingest.RowError(None, f"unknown format '{file_format}'; use one of "
                                                    f"{', '.join(ingest.FORMATS)}")])
    limits = ingest.Limits(settings.EVALSITE_MAX_TEXT_CHARS, settings.EVALSITE_MAX_REASONING_CHARS)
    with transaction.atomic():
        writer = _OutputWriter(study, replace=replace)
        writer.summary.file_format = file_format
        errors = []
        truncated = False
        chunk = []
        for result in ingest.read_rows(fileobj, file_format, limits):
            if isinstance(result, ingest.RowError):
                errors.append(result)
            else:
                chunk.append(result)
            if len(errors) >= settings.EVALSITE_MAX_REPORTED_ERRORS:
                truncated = True
                break
            if len(chunk) >= CHUNK_ROWS:
                errors.extend(writer.write(chunk, dry_run=bool(errors)))
                chunk = []
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
        return summary


def _size_of(fileobj):
    size = getattr(fileobj, "size", None)
    if size is None:
        try:
            here = fileobj.tell()
            fileobj.seek(0, 2)
            size = fileobj.tell()
            fileobj.seek(here)
        except (AttributeError, OSError):
            return None
    return size


RESPONSE_COLUMNS = ["item_id", "system_id", "text", "reasoning", "source", "metadata", "created_at",
                    "updated_at"]


def bulk_insert(model, columns, rows):
    """Insert plain tuples (JSON columns as Python objects); returns how many rows were written.

    On PostgreSQL this is COPY inside the current transaction, several times faster than
    bulk_create for large uploads; elsewhere it falls back to bulk_create.
    """
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        json_columns = [i for i, name in enumerate(columns) if name == "metadata"]
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    if json_columns:
                        row = list(row)
                        for i in json_columns:
                            row[i] = orjson.dumps(row[i]).decode() if row[i] else "{}"
                    copy.write_row(row)
        return len(rows)
    model.objects.bulk_create((model(**dict(zip(columns, row))) for row in rows), batch_size=2000)
    return len(rows)


class _OutputWriter:
    """Writes validated rows chunk by chunk with bulk queries; compares against what is stored."""

    def __init__(self, study, replace):
        self.study = study
        self.replace = replace
        self.summary = ImportSummary()
        self.systems = dict(System.objects.filter(study=study).values_list("name", "id"))
        self.items = {}  # external_id -> item id, for items seen in this upload
        # A study with no items yet (the usual first upload) needs no look-ups of stored items.
        self.had_items = Item.objects.filter(study=study).exists()
        self.new_item_ids = set()  # created by this upload: they cannot hold responses yet
        self.revision_ids = []

    def write(self, rows, dry_run=False):
        errors = []
        self.summary.rows += len(rows)
        self._ensure_systems(rows, dry_run)
        errors.extend(self._ensure_items(rows, dry_run))
        if errors or dry_run:
            return errors
        errors.extend(self._write_responses(rows))
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
                continue
            if row.metadata and metadata and row.metadata != metadata and not self.replace:
                errors.append(ingest.RowError(
                    row.line, f"differs from the metadata stored for item '{external_id}' "
                    f"({json.dumps(metadata, ensure_ascii=False)[:200]}); leave it out, give the same, "
                    "or upload with replace", "metadata"))
                continue
            if row.metadata and row.metadata != metadata and not dry_run:
                Item.objects.filter(pk=pk).update(metadata=row.metadata)
            self.items[external_id] = pk
        if dry_run or errors:
            return errors
        now = timezone.now().isoformat() if connection.vendor == "postgresql" else timezone.now()
        created = bulk_insert(Item, ["study_id", "external_id", "prompt", "metadata", "created_at"], [
            (self.study.pk, row.item_id, row.prompt, row.metadata, now) for row in first.values()
        ])
        if created:
            ids = dict(Item.objects.filter(study=self.study, external_id__in=list(first))
                       .values_list("external_id", "id"))
            self.items.update(ids)
            self.new_item_ids.update(ids.values())
        self.summary.items_created += created
        return errors

    def _write_responses(self, rows):
        errors = []
        # COPY takes text: one formatted timestamp instead of adapting a datetime per row.
        now = timezone.now().isoformat() if connection.vendor == "postgresql" else timezone.now()
        uploaded = Response.Source.UPLOADED.value
        items, systems = self.items, self.systems
        if all(items[row.item_id] in self.new_item_ids for row in rows):
            # Items made by this upload hold no responses yet: nothing to compare against.
            to_create = [(items[row.item_id], systems[row.system], row.response, row.reasoning, uploaded,
                          {}, now, now) for row in rows]
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
                to_create.append((key[0], key[1], row.response, row.reasoning, uploaded, {}, now, now))
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
        if errors:
            return errors
        self.summary.responses_created += bulk_insert(Response, RESPONSE_COLUMNS, to_create)
        if to_replace:
            created = ResponseRevision.objects.bulk_create(revisions, batch_size=2000)
            self.revision_ids.extend(r.pk for r in created)
            Response.objects.bulk_update(to_replace, ["text", "reasoning", "source"], batch_size=1000)
            Response.objects.filter(pk__in=[r.pk for r in to_replace]).update(updated_at=timezone.now())
            self.summary.responses_replaced += len(to_replace)
        return errors

