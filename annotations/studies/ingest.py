"""Reading uploaded files: system outputs (JSONL, CSV, AlpacaEval JSON) into validated rows, the
located errors every upload reports, and the checks on a file as a whole (empty, too large).

Streams the file and yields either an `OutputRow` or a located `RowError`; it never touches the
database, so `services.import_outputs` decides what is written (all or nothing).
"""
import codecs
import csv
import hashlib
import json
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from annotations.formatting import counted

FORMATS = ("jsonl", "csv", "alpaca")
REQUIRED_FIELDS = ("item_id", "prompt", "system", "response")
OPTIONAL_FIELDS = ("reasoning", "metadata")
ALLOWED_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
MAX_ITEM_ID_CHARS = 200
MAX_SYSTEM_CHARS = 100
# Deepest nesting of lists and objects in a field's value (metadata {"a": {"b": 1}} is 2 levels).
# Real metadata is a few levels deep; the limit keeps a hostile file from exhausting the parser's
# recursion or producing a value the database copy cannot serialise (orjson stops at 254 levels).
MAX_JSON_DEPTH = 32
# AlpacaEval's model_outputs.json names the fields differently.
ALPACA_FIELDS = {"instruction": "prompt", "output": "response", "generator": "system"}


@dataclass(frozen=True)
class RowError:
    line: int | None
    message: str
    field: str | None = None
    column: int | None = None

    def __str__(self):
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self):
        return {"line": self.line, "column": self.column, "field": self.field,
                "message": self.message, "text": str(self)}


class UploadRejected(Exception):
    """The upload was refused; nothing was written. `errors` are located RowErrors."""

    def __init__(self, errors, truncated=False, status=400):
        self.errors = list(errors)
        self.truncated = truncated
        self.status = status
        super().__init__("; ".join(str(e) for e in self.errors[:3]))

    @property
    def count(self):
        """'1 problem', '3 problems', '100+ problems' (when listing stopped)."""
        n = len(self.errors)
        return f"{n:,}+ problems" if self.truncated else counted(n, "problem")

    def as_dict(self):
        return {
            "detail": f"The upload was refused: {self.count} found. Nothing was written; fix "
                      f"{'it' if len(self.errors) == 1 and not self.truncated else 'them'} and upload the file again.",
            "errors": [e.as_dict() for e in self.errors],
            "truncated": self.truncated,
        }


def check_file_size(fileobj, what, max_bytes):
    """Refuse an empty file, or one over max_bytes (EVALSITE_MAX_UPLOAD_BYTES), before reading a line of it."""
    size = _size_of(fileobj)
    if size == 0:
        raise UploadRejected([RowError(None, f"the file is empty (0 bytes); choose {what}")])
    if size is not None and size > max_bytes:
        raise UploadRejected([RowError(
            None, f"the file is {size / 2**20:,.1f} MiB; the limit is "
                  f"{max_bytes / 2**20:,.0f} MiB. Split it into several uploads.")],
            status=413)


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


class OutputRow(NamedTuple):
    line: int
    item_id: str
    prompt: str
    system: str
    response: str
    reasoning: str = ""
    metadata: dict = {}


class Limits:
    def __init__(self, max_text_chars, max_reasoning_chars):
        self.max_text_chars = max_text_chars
        self.max_reasoning_chars = max_reasoning_chars


def digest(text):
    """A fingerprint to compare texts within one upload without keeping them all in memory.

    Python's 64-bit string hash: two different prompts collide with odds of about 1 in 10^19,
    and it costs a fraction of a cryptographic digest on 100,000-row uploads.
    """
    return hash(text)


def detect_format(filename, head):
    """Pick a format from the file name, else from its first non-blank byte."""
    name = (filename or "").lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if name.endswith(".json"):
        # A .json file may still hold one object per line.
        return "jsonl" if stripped.startswith(b"{") else "alpaca"
    if stripped.startswith(b"["):
        return "alpaca"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def _decode_line(raw, line_no):
    """Decode one line as strict UTF-8, or raise a RowError naming line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Located(_utf8_error(line_no, raw[: exc.start], raw[exc.start])) from None


def _utf8_error(line_no, before, byte):
    """`before`: the bytes of the line up to the bad byte, to count the column in characters."""
    return RowError(
        line_no,
        f"byte 0x{byte:02x} is not valid UTF-8. Save the file as UTF-8 "
        "(in Excel: 'CSV UTF-8'; in pandas: encoding='utf-8').",
        column=len(before.decode("utf-8", "replace")) + 1,
    )


class _Located(Exception):
    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _check_text(line, name, value, *, required, max_chars, strip_id=False):
    """Return (clean value, None) or (None, RowError) for one field."""
    if value is None:
        if required:
            return None, RowError(line, f"is empty; give the {_describe(name)}", name)
        return "", None
    if strip_id and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        kind = type(value).__name__ if not isinstance(value, bool) else "boolean"
        kind = {"dict": "an object", "list": "a list", "int": "a number", "float": "a number"}.get(kind, kind)
        return None, RowError(line, f"must be text, not {kind}", name)
    if strip_id:
        value = value.strip()
    if required and not value.strip():
        return None, RowError(line, f"is empty; give the {_describe(name)}", name)
    if "\x00" in value:
        return None, RowError(line, "contains a NUL character (\\x00); remove it", name)
    if len(value) > max_chars:
        return None, RowError(
            line, f"is {len(value):,} characters long; the limit is {max_chars:,}. "
            "Shorten it or ask an administrator to raise the limit.", name)
    return value, None


def _describe(name):
    return {
        "item_id": "item's id (the same id on every row of the same prompt)",
        "prompt": "prompt shown to annotators",
        "system": "name of the system that wrote the response",
        "response": "response text",
    }.get(name, name)


_ALLOWED = frozenset(ALLOWED_FIELDS)
_REQUIRED = frozenset(REQUIRED_FIELDS)


def validate_record(line, record, limits):
    """Check one row given as a dict of field -> value; return an OutputRow or a list of errors."""
    # Fast path for the common, well-formed row (inlined: it runs once per row of large files);
    # anything unusual goes through the full checks below, which say exactly what is wrong.
    keys = record.keys()
    if _REQUIRED <= keys and keys <= _ALLOWED:
        item_id, prompt, system, response = (record["item_id"], record["prompt"], record["system"],
                                             record["response"])
        reasoning = record.get("reasoning")
        if reasoning is None:
            reasoning = ""
        metadata = record.get("metadata")
        if metadata is None or metadata == "":
            metadata = {}
        text_max = limits.max_text_chars
        if (type(item_id) is str and type(prompt) is str and type(system) is str and type(response) is str
                and type(reasoning) is str and type(metadata) is dict
                and 0 < len(item_id) <= MAX_ITEM_ID_CHARS and 0 < len(system) <= MAX_SYSTEM_CHARS
                and 0 < len(prompt) <= text_max and 0 < len(response) <= text_max
                and len(reasoning) <= limits.max_reasoning_chars
                and item_id == item_id.strip() and system == system.strip()
                and not prompt.isspace() and not response.isspace()
                and "\x00" not in prompt and "\x00" not in response and "\x00" not in reasoning
                and "\x00" not in item_id and "\x00" not in system):
            return OutputRow(line, item_id, prompt, system, response, reasoning, metadata)
    return _validate_slowly(line, record, limits)


def field_errors(line, record, allowed, required, missing):
    """Located errors for a record's unknown and missing fields (any kind of upload); `missing(name)`
    says what a missing one should hold."""
    errors = [RowError(line, f"unknown field; allowed fields are {', '.join(allowed)}", name)
              for name in sorted(set(record) - set(allowed))]
    errors += [RowError(line, f"is missing; {missing(name)}", name) for name in required if name not in record]
    return errors


def _validate_slowly(line, record, limits):
    errors = field_errors(line, record, ALLOWED_FIELDS, REQUIRED_FIELDS,
                          lambda name: f"every row needs the {_describe(name)}")
    if errors:
        return errors
    clean = {}
    specs = {
        "item_id": dict(required=True, max_chars=MAX_ITEM_ID_CHARS, strip_id=True),
        "prompt": dict(required=True, max_chars=limits.max_text_chars),
        "system": dict(required=True, max_chars=MAX_SYSTEM_CHARS, strip_id=True),
        "response": dict(required=True, max_chars=limits.max_text_chars),
        "reasoning": dict(required=False, max_chars=limits.max_reasoning_chars),
    }
    for name, spec in specs.items():
        value, error = _check_text(line, name, record.get(name), **spec)
        if error:
            errors.append(error)
        clean[name] = value
    metadata = record.get("metadata")
    if metadata is None or metadata == "":
        metadata = {}
    if not isinstance(metadata, dict):
        errors.append(RowError(line, 'must be a JSON object such as {"language": "en"}', "metadata"))
    if errors:
        return errors
    return OutputRow(line=line, metadata=metadata, **clean)


def _iter_lines(fileobj):
    """Yield (line number, raw bytes) for each physical line, streaming."""
    for number, raw in enumerate(iter(fileobj.readline, b""), start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        yield number, raw


OUTPUT_EXAMPLE = '{"item_id": "p1", "prompt": "...", "system": "...", "response": "..."}'


def iter_json_lines(fileobj, example):
    """Yield (line number, object) for each line of a binary JSONL file, or a located RowError
    for a line that is not a JSON object (bad UTF-8, bad JSON, a list...). Blank lines are skipped."""
    for line_no, raw in _iter_lines(fileobj):
        if not raw.strip():
            continue
        try:
            # orjson also rejects bad UTF-8, so a good line is decoded and parsed in one step.
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            # orjson says only that it failed; find where, for a message that says what to fix.
            try:
                text = _decode_line(raw, line_no)
                # Without the line break, an error at the end of the line keeps this line's number.
                # Accepted by the standard parser (e.g. NaN): use its reading.
                record = json.loads(text.rstrip("\r\n"))
            except _Located as exc:
                yield exc.error
                continue
            except json.JSONDecodeError as exc:
                yield RowError(line_no, f"not valid JSON ({exc.msg}); each line must be one JSON object "
                                        f"such as {example}", column=exc.colno)
                continue
            except (RecursionError, ValueError):  # nested too deep, or an integer too long to read
                yield _unreadable_json(text, 0, line_no)
                continue
            if isinstance(record, dict) and (error := _depth_error(line_no, record)
                                             or _surrogate_error(line_no, record)):
                yield error
                continue
        if not isinstance(record, dict):
            yield RowError(line_no, f"must be a JSON object such as {example}")
            continue
        if error := _depth_error(line_no, record):
            yield error
            continue
        yield line_no, record


def _too_deep(value):
    """Whether a parsed JSON value nests lists and objects more than MAX_JSON_DEPTH levels (no recursion)."""
    if type(value) not in (dict, list):
        return False
    stack = [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        for part in (value.values() if type(value) is dict else value):
            if type(part) in (dict, list):
                stack.append((part, depth + 1))
    return False


def _depth_message():
    return (f"is nested more than {MAX_JSON_DEPTH} levels deep (lists and objects inside each other); "
            "flatten it")


def _depth_error(line_no, record):
    """A located RowError for the first field of a parsed row whose value nests too deep, or None."""
    for name, value in record.items():
        # Inlined type test: this runs once per row of large files, where values are mostly text.
        if (type(value) is dict or type(value) is list) and _too_deep(value):
            return RowError(line_no, _depth_message(), str(name))
    return None


def _unreadable_json(text, start, line_no):
    """A located RowError for JSON that the standard parser gave up on although it is well formed
    up to that point: nesting deeper than its recursion allows, or an integer over Python's limit
    on digits (4,300). Scans from `start` (the row's opening brace) for the first such place and
    names the field of the row it is in."""
    max_digits = sys.get_int_max_str_digits() or float("inf")
    depth = 0
    field = key = None
    index, end = start, len(text)
    while index < end:
        char = text[index]
        if char == '"':
            closing = index + 1
            while closing < end and text[closing] != '"':
                closing += 2 if text[closing] == "\\" else 1
            if depth == 1:
                key = text[index + 1: closing]
            index = closing + 1
            continue
        if char in "[{":
            depth += 1
            if depth == 2:
                field = key
            if depth > MAX_JSON_DEPTH + 1:
                return _at(text, index, line_no, _depth_message(), field)
        elif char in "]}":
            depth -= 1
        elif char in "0123456789":
            digits = index
            while digits < end and text[digits] in "0123456789":
                digits += 1
            if digits - index > max_digits and not _in_fraction_or_exponent(text, index):
                return _at(text, index, line_no, f"is a number with {digits - index:,} digits, more than "
                           f"can be read; write it as text in quotes (or shorten it)",
                           field if depth > 1 else key)
            index = digits
            continue
        index += 1
    return RowError(line_no, "cannot be read as JSON; check the nesting of its lists and objects")


def _in_fraction_or_exponent(text, index):
    """Digits after '.', 'e' or 'e-' are read as a float, which has no limit on digits."""
    before = text[index - 1] if index else ""
    if before in "+-" and index > 1:
        before = text[index - 2]
    return before != "" and before in ".eE"


def _at(text, index, line_no, message, field):
    """A RowError at `index` of `text`, whose first line is line `line_no`."""
    line_start = text.rfind("\n", 0, index) + 1
    line = line_no + text.count("\n", 0, index) if line_no else _line_of(text, index)
    return RowError(line, message, _json_key(field), column=index - line_start + 1)


def _json_key(raw):
    """A key as written in the file (escapes read), for naming the field."""
    if raw is None:
        return None
    try:
        return json.loads(f'"{raw}"')
    except ValueError:
        return raw


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate(value):
    """The first unpaired UTF-16 surrogate in a parsed JSON value, or None.

    The standard JSON parser accepts an escape such as \\ud800 on its own, but it is half of a
    character: it cannot be encoded as UTF-8, so neither stored nor shown. (orjson refuses it.)
    """
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return found.group() if found else None
    if isinstance(value, dict):
        value = list(value.keys()) + list(value.values())
    if isinstance(value, list):
        for part in value:
            if (found := _surrogate(part)) is not None:
                return found
    return None


def _surrogate_error(line_no, record):
    for name, value in record.items():
        if (found := _surrogate([name, value])) is not None:
            return RowError(line_no, f"holds \\u{ord(found):04x}, half of a UTF-16 surrogate pair without "
                            "its other half: it is not a character and cannot be stored. Fix or remove "
                            "that \\u escape", str(name).encode("utf-8", "replace").decode())
    return None


def _read_jsonl(fileobj, limits):
    for parsed in iter_json_lines(fileobj, OUTPUT_EXAMPLE):
        if isinstance(parsed, RowError):
            yield parsed
            continue
        result = validate_record(*parsed, limits)
        yield from result if isinstance(result, list) else (result,)


def _read_csv(fileobj, limits):
    position = {"line": 0}

    def decoded():
        for line_no, raw in _iter_lines(fileobj):
            position["line"] = line_no
            yield _decode_line(raw, line_no)

    csv.field_size_limit(max(limits.max_text_chars, limits.max_reasoning_chars) * 4 + 1024)
    reader = csv.reader(decoded(), strict=True)
    header = None
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except _Located as exc:
            yield exc.error
            # The reader cannot resume after its source failed; the file is refused anyway.
            return
        except csv.Error as exc:
            yield RowError(start, f"cannot be read as CSV ({exc}); check the quotes on this row")
            return
        line_no, start = start, reader.line_num + 1
        if header is None:
            if not any(cell.strip() for cell in cells):
                continue
            header = [cell.strip() for cell in cells]
            problems = []
            for name in header:
                if name not in ALLOWED_FIELDS:
                    problems.append(RowError(line_no, f"unknown column '{name}' in the header; "
                                             f"allowed columns are {', '.join(ALLOWED_FIELDS)}"))
            for name in REQUIRED_FIELDS:
                if name not in header:
                    problems.append(RowError(line_no, f"the header has no '{name}' column; "
                                             f"the first row must name the columns {', '.join(REQUIRED_FIELDS)}"))
            duplicated = sorted({name for name in header if header.count(name) > 1})
            for name in duplicated:
                problems.append(RowError(line_no, f"column '{name}' appears twice in the header"))
            if problems:
                yield from problems
                return
            continue
        if not any(cells):
            continue
        if len(cells) != len(header):
            yield RowError(line_no, f"has {len(cells)} fields but the header has {len(header)}; "
                           "quote any field that contains a comma")
            continue
        record = dict(zip(header, cells))
        record = {k: (v if v != "" or k in REQUIRED_FIELDS else None) for k, v in record.items()}
        metadata = record.get("metadata")
        if metadata:
            try:
                record["metadata"] = json.loads(metadata)
            except json.JSONDecodeError as exc:
                yield RowError(line_no, f"is not valid JSON ({exc.msg}); write a JSON object such as "
                               '{""language"": ""en""} (quotes doubled inside a CSV field)', "metadata")
                continue
            except (RecursionError, ValueError):  # nested too deep, or an integer too long to read
                # Scanned as the value of a one-field row, to find the place and say what it is.
                error = _unreadable_json('{"metadata": ' + metadata + "}", 0, line_no)
                yield RowError(line_no, error.message, "metadata")
                continue
            if error := _depth_error(line_no, {"metadata": record["metadata"]}):
                yield error
                continue
        result = validate_record(line_no, record, limits)
        yield from result if isinstance(result, list) else (result,)


def _line_of(text, index):
    return text.count("\n", 0, index) + 1


def _read_alpaca(fileobj, limits):
    raw = fileobj.read()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        yield _utf8_error(raw.count(b"\n", 0, exc.start) + 1, raw[line_start: exc.start], raw[exc.start])
        return
    decoder = json.JSONDecoder()
    index = _skip_ws(text, 0)
    if index >= len(text) or text[index] != "[":
        yield RowError(_line_of(text, index), "an AlpacaEval file must be a JSON list of "
                       '{"instruction": ..., "output": ..., "generator": ...} objects')
        return
    index = _skip_ws(text, index + 1)
    number = 0
    if index < len(text) and text[index] == "]":
        return
    while True:
        line_no = _line_of(text, index)
        try:
            entry, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            yield RowError(exc.lineno, f"not valid JSON ({exc.msg})", column=exc.colno)
            return
        except (RecursionError, ValueError):  # nested too deep, or an integer too long to read
            yield _unreadable_json(text, index, None)
            return
        number += 1
        yield from _alpaca_entry(line_no, number, entry, limits)
        index = _skip_ws(text, index)
        if index < len(text) and text[index] == ",":
            index = _skip_ws(text, index + 1)
            continue
        if index < len(text) and text[index] == "]":
            if _skip_ws(text, index + 1) != len(text):
                yield RowError(_line_of(text, index + 1), "unexpected text after the closing ']'")
            return
        yield RowError(_line_of(text, index), "expected ',' or ']' after an entry of the list")
        return


def _alpaca_entry(line_no, number, entry, limits):
    if not isinstance(entry, dict):
        yield RowError(line_no, f"entry {number} of the list must be an object with "
                       "instruction, output and generator")
        return
    if (error := _depth_error(line_no, entry) or _surrogate_error(line_no, entry)) is not None:
        yield error
        return
    record = {}
    missing = [name for name in ALPACA_FIELDS if name not in entry]
    for name in missing:
        yield RowError(line_no, f"entry {number} has no '{name}'; AlpacaEval entries need "
                       "instruction, output and generator", name)
    if missing:
        return
    for source, target in ALPACA_FIELDS.items():
        record[target] = entry[source]
    instruction = entry["instruction"]
    if "item_id" in entry:
        record["item_id"] = entry["item_id"]
    elif isinstance(instruction, str):
        # Same instruction, same item: outputs of several generators line up without ids.
        record["item_id"] = "alpaca-" + hashlib.sha256(instruction.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    else:
        record["item_id"] = f"alpaca-{number}"
    if "dataset" in entry and isinstance(entry["dataset"], str):
        record["metadata"] = {"dataset": entry["dataset"]}
    result = validate_record(line_no, record, limits)
    if isinstance(result, list):
        names = {v: k for k, v in ALPACA_FIELDS.items()}
        for error in result:
            yield RowError(error.line, error.message, names.get(error.field, error.field), error.column)
    else:
        yield result


def _skip_ws(text, index):
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "alpaca": _read_alpaca}


def read_rows(fileobj, file_format, limits):
    """Yield OutputRow or RowError for every row of a binary file, plus cross-row errors.

    Cross-row checks kept here (streaming, digests only): a prompt or metadata that differs for
    the same item_id, and the same (item, system) twice.
    """
    prompts = {}
    pairs = {}
    rows = errors = 0
    for result in READERS[file_format](fileobj, limits):
        if isinstance(result, RowError):
            errors += 1
            yield result
            continue
        rows += 1
        key = result.item_id
        seen = prompts.get(key)
        meta = result.metadata or None
        if seen is None:
            prompts[key] = (digest(result.prompt), meta, result.line)
        else:
            if seen[0] != digest(result.prompt):
                yield RowError(result.line, f"differs from the prompt of item '{key}' on line {seen[2]}; "
                               "rows of one item must carry the same prompt (or use another item_id)",
                               "prompt")
                continue
            if meta is not None:
                if seen[1] is None:
                    prompts[key] = (seen[0], meta, seen[2])
                elif seen[1] != meta:
                    yield RowError(result.line, f"differs from the metadata of item '{key}' given on "
                                   f"an earlier line; give the same metadata or leave it out", "metadata")
                    continue
        pair = (key, result.system)
        if pair in pairs:
            yield RowError(result.line, f"item '{key}' already has a response from system "
                           f"'{result.system}' on line {pairs[pair]}; keep one of the two rows")
            continue
        pairs[pair] = result.line
        yield result
    if rows == 0 and errors == 0:
        yield RowError(None, "the file holds no rows; each row needs item_id, prompt, system and "
                       "response (see the format help beside the upload form)")


class ReadAhead:
    """Run a generator of rows in a background thread, a bounded number of rows ahead.

    Reading a file is Python work (JSON, checks) while storing it is mostly PostgreSQL's: with the
    reader in its own thread, the next rows are parsed while the database stores the last chunk
    (the driver lets other threads run while it waits on its socket). The reader touches neither
    the database nor Django's request state. An exception in the reader is raised in the caller;
    leaving the `with` block stops the reader and waits for it, so the file is not read after.
    """

    _DONE = object()

    def __init__(self, results, batch=1000, max_batches=10, hand_over_every=50):
        self._results = results
        self._batch = batch
        self._hand_over_every = hand_over_every
        self._queue = queue.Queue(max_batches)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-reader", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def __iter__(self):
        while True:
            batch = self._queue.get()
            if batch is self._DONE:
                return
            if isinstance(batch, BaseException):
                raise batch
            yield from batch

    def _put(self, value):
        """Queue a value unless the caller has stopped reading; returns False once it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            batch = []
            for result in self._results:
                batch.append(result)
                if len(batch) % self._hand_over_every == 0:
                    # CPython passes the interpreter to a waiting thread only every 5 ms (the switch
                    # interval), and the writer waits for it each time the database answers, while
                    # the database waits for the writer. Sleeping 0 s hands it over at once.
                    time.sleep(0)
                if len(batch) >= self._batch:
                    if not self._put(batch):
                        return
                    batch = []
            if self._put(batch):
                self._put(self._DONE)
        except BaseException as exc:  # handed to the caller, which raises it
            self._put(exc)
