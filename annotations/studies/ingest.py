"""Reading uploaded files: system outputs (JSONL, CSV, AlpacaEval JSON) into validated rows, the
located errors every upload reports, and the checks on a file as a whole (empty, too large).

Streams the file and yields either an `OutputRow` or a located `RowError`; it never touches the
database, so `services.import_outputs` decides what is written (all or nothing). No row is held
longer than `Limits.max_row_bytes`: a longer line or entry is reported, skipped unread, and the
rest of the file is still checked.
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


# Room in a row for what is not a prompt, response or reasoning (item id, system name, metadata,
# the JSON around them) when the longest row is derived from the limits on texts.
ROW_ALLOWANCE_BYTES = 2**20
# How much is read at a time: of an AlpacaEval file, and of a line too long to keep (to skip it).
READ_PIECE_BYTES = 2**18


def longest_row_bytes(max_text_chars, max_reasoning_chars):
    """The longest row that can hold acceptable texts, in bytes: prompt, response and reasoning
    at their limits, every character at its longest (12 bytes: an escaped surrogate pair such as
    \\ud83d\\ude00 is one character of text), plus ROW_ALLOWANCE_BYTES."""
    return 12 * (2 * max_text_chars + max_reasoning_chars) + ROW_ALLOWANCE_BYTES


class Limits:
    def __init__(self, max_text_chars, max_reasoning_chars, max_row_bytes=0):
        self.max_text_chars = max_text_chars
        self.max_reasoning_chars = max_reasoning_chars
        # 0 (EVALSITE_MAX_ROW_BYTES's default): derived from the limits on texts.
        self.max_row_bytes = max_row_bytes or longest_row_bytes(max_text_chars, max_reasoning_chars)


def byte_size(n):
    """'812 bytes', '4.5 KiB', '210.3 MiB'."""
    if n < 10 * 2**10:
        return f"{n:,} bytes"
    if n < 2**20:
        return f"{n / 2**10:,.1f} KiB"
    return f"{n / 2**20:,.1f} MiB"


def _overlong(line_no, size, max_bytes, what="this line"):
    hint = "that no text in it is over its limit" if what.startswith("entry") else (
        "that every row ends with a line break and that no text in it is over its limit")
    return RowError(line_no, f"{what} is {byte_size(size)}; the longest row accepted is {byte_size(max_bytes)}. "
                    f"It was skipped unread: check {hint}")


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


def _utf8_error(line_no, before, byte, column_offset=0):
    """`before`: the bytes of the line up to the bad byte, to count the column in characters
    (after `column_offset` characters of the line that came before them)."""
    return RowError(
        line_no,
        f"byte 0x{byte:02x} is not valid UTF-8. Save the file as UTF-8 "
        "(in Excel: 'CSV UTF-8'; in pandas: encoding='utf-8').",
        column=column_offset + len(before.decode("utf-8", "replace")) + 1,
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


class _Overlong(NamedTuple):
    size: int  # bytes, without the line break


def _iter_lines(fileobj, max_bytes):
    """Yield (line number, raw bytes) for each physical line, streaming; a line longer than
    max_bytes comes as (line number, _Overlong(size)) instead: read in pieces, never held whole."""
    readline = fileobj.readline
    number = 0
    for raw in iter(lambda: readline(max_bytes + 1), b""):
        number += 1
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            size = len(raw)
            del raw
            while piece := readline(READ_PIECE_BYTES):
                size += len(piece)
                if piece.endswith(b"\n"):
                    size -= 2 if piece.endswith(b"\r\n") else 1
                    break
            yield number, _Overlong(size)
            continue
        yield number, raw


OUTPUT_EXAMPLE = '{"item_id": "p1", "prompt": "...", "system": "...", "response": "..."}'


def iter_json_lines(fileobj, example, max_row_bytes):
    """Yield (line number, object) for each line of a binary JSONL file, or a located RowError
    for a line that is not a JSON object (bad UTF-8, bad JSON, a list...) or is longer than
    max_row_bytes (skipped unread). Blank lines are skipped."""
    for line_no, raw in _iter_lines(fileobj, max_row_bytes):
        if raw.__class__ is _Overlong:
            yield _overlong(line_no, raw.size, max_row_bytes)
            continue
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
    for parsed in iter_json_lines(fileobj, OUTPUT_EXAMPLE, limits.max_row_bytes):
        if isinstance(parsed, RowError):
            yield parsed
            continue
        result = validate_record(*parsed, limits)
        yield from result if isinstance(result, list) else (result,)


def _read_csv(fileobj, limits):
    max_row = limits.max_row_bytes
    # Lines too long to keep reach the CSV reader as blank lines; their errors wait here, and the
    # record they were part of is reported instead of read.
    skipped = []
    record = {"start": 1, "bytes": 0}

    def decoded():
        for line_no, raw in _iter_lines(fileobj, max_row):
            if raw.__class__ is _Overlong:
                skipped.append(_overlong(line_no, raw.size, max_row))
                yield "\n"
                continue
            record["bytes"] += len(raw)
            if record["bytes"] > max_row:
                # Many lines of one record: a quote that is never closed, most likely.
                raise _Located(RowError(record["start"], f"this row runs on to line {line_no}, past the longest "
                                        f"row accepted ({byte_size(max_row)}); check the quotes on this row"))
            yield _decode_line(raw, line_no)

    field_limit = max(limits.max_text_chars, limits.max_reasoning_chars) * 4 + 1024
    csv.field_size_limit(field_limit)
    reader = csv.reader(decoded(), strict=True)
    header = None
    start = 1
    while True:
        record["start"], record["bytes"] = start, 0
        try:
            cells = next(reader)
        except StopIteration:
            yield from skipped
            break
        except _Located as exc:
            yield from skipped
            yield exc.error
            # The reader cannot resume after its source failed; the file is refused anyway.
            return
        except csv.Error as exc:
            yield from skipped
            if reader.line_num == start and "field larger than field limit" in str(exc):
                # A field of one line: the reader starts afresh on the next line, so the rest of
                # the file is still checked.
                yield RowError(start, f"has a field longer than {field_limit:,} characters, longer than any "
                               "text accepted; shorten it")
                skipped.clear()
                start = reader.line_num + 1
                continue
            yield RowError(start, f"cannot be read as CSV ({exc}); check the quotes on this row")
            return
        line_no, start = start, reader.line_num + 1
        if skipped:
            yield from skipped
            skipped.clear()
            if header is None:
                return  # without its header, no row of the file can be read
            continue
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


_WHITESPACE = re.compile(rb"[ \t\r\n]*")
# The usual AlpacaEval entry, an object with no list or object inside, found in one match.
_FLAT_OBJECT = re.compile(rb'\{[^"{}\[\]]*+(?:"[^"\\]*+(?:\\.[^"\\]*+)*+"[^"{}\[\]]*+)*+\}', re.S)
_STRING_BODY = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.S)  # stops at the closing quote
_STRUCTURE = re.compile(rb'["{}\[\]]')
_SCALAR = re.compile(rb'[^ \t\r\n,\[\]{}"]*')  # a number, true, false, null (or a mistake)
_CONTINUATION_BYTES = bytes(range(0x80, 0xC0))


def _chars(raw):
    """How many characters the UTF-8 bytes `raw` hold (its bytes less its continuation bytes)."""
    return len(raw.translate(None, _CONTINUATION_BYTES))


class _Window:
    """The part of a binary file being read: more is read on demand and what was used is
    dropped, so that it holds about one entry. Counts lines (and, for errors, columns)."""

    def __init__(self, fileobj):
        self._file = fileobj
        self.buf = fileobj.read(READ_PIECE_BYTES)
        if self.buf.startswith(codecs.BOM_UTF8):
            self.buf = self.buf[len(codecs.BOM_UTF8):]
        self.eof = not self.buf
        self.offset = 0  # bytes dropped before buf[0]
        self._mark, self._line = 0, 1  # buf[_mark] is on line _line
        self._column = 0  # characters before buf[0] on its line

    def more(self, keep):
        """Drop buf[:keep] and read on; False at the end of the file. An index into buf moves by -keep."""
        if keep:
            line = self.line_at(keep)
            newline = self.buf.rfind(b"\n", 0, keep)
            self._column = (_chars(self.buf[newline + 1:keep]) if newline >= 0
                            else self._column + _chars(self.buf[:keep]))
            self._mark, self._line = 0, line
            self.offset += keep
        data = self._file.read(READ_PIECE_BYTES)
        self.buf = self.buf[keep:] + data
        self.eof = not data
        return not self.eof

    def line_at(self, index):
        """The line of buf[index]; asked in order, so each byte is counted once."""
        if index >= self._mark:
            self._line += self.buf.count(b"\n", self._mark, index)
        else:
            self._line -= self.buf.count(b"\n", index, self._mark)
        self._mark = index
        return self._line

    def column_at(self, index):
        """The column (in characters, from 1) of buf[index]."""
        newline = self.buf.rfind(b"\n", 0, index)
        if newline >= 0:
            return _chars(self.buf[newline + 1:index]) + 1
        return self._column + _chars(self.buf[:index]) + 1

    def skip_whitespace(self, index):
        """The index of the next byte that is not whitespace (or len(buf) at the end of the file)."""
        while True:
            index = _WHITESPACE.match(self.buf, index).end()
            if index < len(self.buf) or not self.more(index):
                return index
            index = 0


class _Scan:
    """Where a JSON object, list or string ends, found without parsing it, across reads."""

    def __init__(self):
        self.depth = 0
        self.in_string = False

    def feed(self, buf, index):
        """(end, index): end is the index just past the value, or None when buf ends first;
        then feed again from `index` once buf has more."""
        while True:
            if self.in_string:
                index = _STRING_BODY.match(buf, index).end()
                if index >= len(buf) or buf[index] != 0x22:  # ran out (maybe on a backslash)
                    return None, index
                index += 1
                self.in_string = False
                if self.depth == 0:
                    return index, index
                continue
            found = _STRUCTURE.search(buf, index)
            if found is None:
                return None, len(buf)
            index = found.end()
            char = buf[index - 1]
            if char == 0x22:
                self.in_string = True
            elif char == 0x7B or char == 0x5B:
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    return index, index


def _value_end(window, start, max_bytes):
    """Find the end of the JSON value at window.buf[start:], reading on as needed.

    Returns (start, end) with start moved by what was dropped meanwhile, or (start, None) for a
    value longer than max_bytes (the window then holds its first max_bytes and more). At the end
    of the file, end is len(buf): the parser says what is wrong with the value cut short.
    """
    buf = window.buf
    if start < len(buf) and buf[start] == 0x7B and (flat := _FLAT_OBJECT.match(buf, start)):
        return start, flat.end()
    scan = _Scan() if start < len(buf) and buf[start] in b'{["' else None
    index = start
    while True:
        buf = window.buf
        if scan is None:
            end, index = _SCALAR.match(buf, start).end(), len(buf)
            end = end if end < len(buf) else None
        else:
            end, index = scan.feed(buf, index)
        if end is not None:
            return start, end
        if index - start > max_bytes:
            return start, None
        if not window.more(start):
            return 0, len(window.buf)
        index -= start
        start = 0


def _skip_value(window, start, max_bytes):
    """Read on to the end of a value longer than max_bytes without keeping it; (its size, end)."""
    begin = window.offset + start
    scan = _Scan() if window.buf[start] in b'{["' else None
    index = start
    while True:
        buf = window.buf
        if scan is None:
            end = _SCALAR.match(buf, index).end()
            end, index = (end, end) if end < len(buf) else (None, len(buf))
        else:
            end, index = scan.feed(buf, index)
        if end is not None or not window.more(index):
            end = end if end is not None else len(window.buf)
            return window.offset + end - begin, end
        index = 0


def _cut_short(exc, text):
    """Whether a JSON error on the first max_bytes of a long value is only where it was cut."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(text) - 16


def _read_alpaca(fileobj, limits):
    max_bytes = limits.max_row_bytes
    window = _Window(fileobj)
    index = window.skip_whitespace(0)
    if index >= len(window.buf) or window.buf[index] != 0x5B:  # [
        yield RowError(window.line_at(index), "an AlpacaEval file must be a JSON list of "
                       '{"instruction": ..., "output": ..., "generator": ...} objects')
        return
    index = window.skip_whitespace(index + 1)
    number = 0
    if index < len(window.buf) and window.buf[index] == 0x5D:  # ]
        index = window.skip_whitespace(index + 1)
        if index < len(window.buf):
            yield RowError(window.line_at(index), "unexpected text after the closing ']'")
        return
    while True:
        number += 1
        start, end, entry = _up_to_first_brace(window.buf, index, max_bytes)
        if end is None:
            start, end = _value_end(window, index, max_bytes)
        line_no = window.line_at(start)
        if end is None or end - start > max_bytes:
            # Unless its JSON goes wrong early (a missing brace makes one entry of several).
            error = _located_json_error(window, start, line_no, window.buf[start:start + max_bytes], cut=True)
            if error is not None:
                yield error
                return
            if end is None:
                size, end = _skip_value(window, start, max_bytes)
            else:
                size = end - start
            yield _overlong(line_no, size, max_bytes, what=f"entry {number} of the list")
        elif entry is not None:
            yield from _alpaca_entry(line_no, number, entry, limits, strict=True)
        else:
            raw = window.buf[start:end]
            try:
                entry = orjson.loads(raw)
                strict = True
            except orjson.JSONDecodeError:
                # Read again by the standard parser, as before: it accepts what orjson refuses
                # (NaN, integers over 64 bits, a lone surrogate escape, checked then), and
                # says where the JSON is wrong.
                entry = _located_json_error(window, start, line_no, raw)
                if isinstance(entry, RowError):
                    yield entry
                    return
                strict = False
            yield from _alpaca_entry(line_no, number, entry, limits, strict)
        index = window.skip_whitespace(end)
        buf = window.buf
        if index < len(buf) and buf[index] == 0x2C:  # ,
            index = window.skip_whitespace(index + 1)
            continue
        if index < len(buf) and buf[index] == 0x5D:  # ]
            after = window.skip_whitespace(index + 1)
            if after < len(window.buf):
                yield RowError(window.line_at(after), "unexpected text after the closing ']'")
            return
        yield RowError(window.line_at(index), "expected ',' or ']' after an entry of the list")
        return


def _up_to_first_brace(buf, index, max_bytes):
    """Most entries are objects that end at their first '}' (no object inside, no '}' in a text):
    then one parse both finds the entry and reads it. (index, end, entry), or (index, None, None)
    when the entry is not that simple. (A JSON value ends where it ends: if the bytes up to a
    '}' parse as an object, that is the whole entry.)"""
    if index < len(buf) and buf[index] == 0x7B:
        close = buf.find(b"}", index, index + max_bytes)
        if close >= 0:
            try:
                return index, close + 1, orjson.loads(buf[index:close + 1])
            except orjson.JSONDecodeError:
                pass
    return index, None, None


def _located_json_error(window, start, line_no, raw, cut=False):
    """Parse `raw`, the bytes of one entry at window.buf[start], with the standard parser: its
    value, or a RowError located in the file (bad UTF-8, bad JSON, nesting too deep...).

    With `cut` (the first bytes of an entry too long to read), None unless the JSON goes wrong
    before the cut."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(raw) - 3:  # a character cut in two
            text = raw[:exc.start].decode("utf-8")
        else:
            before = raw[:exc.start]
            newline = before.rfind(b"\n")
            error_line = line_no + before.count(b"\n")
            offset = 0 if newline >= 0 else window.column_at(start) - 1
            return _utf8_error(error_line, before[newline + 1:], raw[exc.start], column_offset=offset)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if cut and _cut_short(exc, text):
            return None
        # The entry's first line starts where the entry does, maybe far into a line of the file.
        column = exc.colno + (window.column_at(start) - 1 if exc.lineno == 1 else 0)
        return RowError(line_no + exc.lineno - 1, f"not valid JSON ({exc.msg})", column=column)
    except (RecursionError, ValueError):  # nested too deep, or an integer too long to read
        error = _unreadable_json(text, 0, line_no)
        if error.column is not None and error.line == line_no:
            error = RowError(error.line, error.message, error.field, error.column + window.column_at(start) - 1)
        return error
    return None if cut else value


def _alpaca_entry(line_no, number, entry, limits, strict=False):
    """`strict`: read by orjson, which refuses half a surrogate pair, so none is looked for."""
    if not isinstance(entry, dict):
        yield RowError(line_no, f"entry {number} of the list must be an object with "
                       "instruction, output and generator")
        return
    error = _depth_error(line_no, entry)
    if error is None and not strict:
        error = _surrogate_error(line_no, entry)
    if error is not None:
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


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "alpaca": _read_alpaca}


def read_rows(fileobj, file_format, limits):
    """Yield OutputRow or RowError for every row of a binary file, plus cross-row errors.

    Cross-row checks kept here (streaming, digests only): a prompt or metadata that differs for
    the same item_id, and the same (item, system) twice. What is kept per row is one key of two
    names that every row of the same item and system shares, and a line number.
    """
    prompts = {}  # item_id -> (prompt digest, metadata or None, first line, the item_id kept)
    pairs = {}
    systems = {}  # each system's name once, for the keys of `pairs`
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
            prompts[key] = (digest(result.prompt), meta, result.line, key)
        else:
            key = seen[3]
            if seen[0] != digest(result.prompt):
                yield RowError(result.line, f"differs from the prompt of item '{key}' on line {seen[2]}; "
                               "rows of one item must carry the same prompt (or use another item_id)",
                               "prompt")
                continue
            if meta is not None:
                if seen[1] is None:
                    prompts[key] = (seen[0], meta, seen[2], key)
                elif seen[1] != meta:
                    yield RowError(result.line, f"differs from the metadata of item '{key}' given on "
                                   f"an earlier line; give the same metadata or leave it out", "metadata")
                    continue
        system = systems.get(result.system)
        if system is None:
            system = systems[result.system] = result.system
        pair = (key, system)
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
    A batch also ends at `batch_chars` characters of text, so rows read ahead stay a few MB.
    """

    _DONE = object()

    def __init__(self, results, batch=1000, max_batches=10, hand_over_every=50, batch_chars=2_000_000):
        self._results = results
        self._batch = batch
        self._batch_chars = batch_chars
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
            chars = 0
            for result in self._results:
                batch.append(result)
                if result.__class__ is OutputRow:
                    chars += len(result.prompt) + len(result.response) + len(result.reasoning)
                if len(batch) % self._hand_over_every == 0:
                    # CPython passes the interpreter to a waiting thread only every 5 ms (the switch
                    # interval), and the writer waits for it each time the database answers, while
                    # the database waits for the writer. Sleeping 0 s hands it over at once.
                    time.sleep(0)
                if len(batch) >= self._batch or chars >= self._batch_chars:
                    if not self._put(batch):
                        return
                    batch = []
                    chars = 0
            if self._put(batch):
                self._put(self._DONE)
        except BaseException as exc:  # handed to the caller, which raises it
            self._put(exc)
