"""Reading and writing rankings as JSONL, one ranking per line (the import/export format).

Streams the file and yields a `RankingRow` or a located `RowError`; it never touches the database,
so `services.import_rankings` decides what is written (all or nothing).
"""
import math
from typing import NamedTuple

import orjson

from django.conf import settings

from annotations.studies.ingest import Limits, RowError, field_errors, iter_json_lines

REQUIRED_FIELDS = ("item_id", "annotator", "criterion", "ranking")
OPTIONAL_FIELDS = ("display_order", "seconds", "attention_passed", "reading")
ALLOWED_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
MAX_ANNOTATOR_CHARS = 200  # Ranking.annotator_label
MAX_NAME_CHARS = 200
EXAMPLE = ('{"item_id": "p1", "annotator": "a1", "criterion": "overall", '
           '"ranking": [["sysA"], ["sysC", "sysD"], ["sysB"]]}')


class RankingRow(NamedTuple):
    line: int
    item_id: str
    annotator: str
    criterion: str
    ranking: tuple  # tie groups of system names, best first
    display_order: tuple | None = None
    seconds: float | None = None
    attention_passed: bool | None = None
    # How the screen was read (exported from the site; an import keeps no reading):
    # system name -> {"seconds": float, "opened": bool, "read_to_end": bool}
    reading: dict | None = None

    def record(self):
        """The JSONL object for this ranking (optional fields only when known)."""
        out = {"item_id": self.item_id, "annotator": self.annotator, "criterion": self.criterion,
               "ranking": [list(group) for group in self.ranking]}
        if self.display_order is not None:
            out["display_order"] = list(self.display_order)
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.attention_passed is not None:
            out["attention_passed"] = self.attention_passed
        if self.reading:
            out["reading"] = self.reading
        return out


def _kind(value):
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", int: "a number", float: "a number", str: "text",
            type(None): "null"}.get(type(value), type(value).__name__)


def _text(line, name, value, max_chars):
    """(clean text, None) or (None, RowError) for an identifier-like field."""
    if isinstance(value, int) and not isinstance(value, bool) and name == "item_id":
        value = str(value)
    if not isinstance(value, str):
        return None, RowError(line, f"must be text, not {_kind(value)}", name)
    value = value.strip()
    if not value:
        return None, RowError(line, "is empty; give a name", name)
    if "\x00" in value:
        return None, RowError(line, "contains a NUL character (\\x00); remove it", name)
    if len(value) > max_chars:
        return None, RowError(line, f"is {len(value):,} characters long; the limit is {max_chars:,}", name)
    return value, None


def validate_record(line, record):
    """Check the shape of one ranking; return a RankingRow or a list of RowErrors."""
    errors = field_errors(line, record, ALLOWED_FIELDS, REQUIRED_FIELDS,
                          lambda name: f"every line needs {', '.join(REQUIRED_FIELDS)}")
    if errors:
        return errors
    clean = {}
    for name, limit in (("item_id", MAX_NAME_CHARS), ("annotator", MAX_ANNOTATOR_CHARS),
                        ("criterion", MAX_NAME_CHARS)):
        clean[name], error = _text(line, name, record[name], limit)
        if error:
            errors.append(error)
    ranking, ranking_errors = _ranking(line, record["ranking"])
    errors.extend(ranking_errors)
    display = record.get("display_order")
    if display is not None:
        if not isinstance(display, list) or not all(isinstance(s, str) for s in display):
            errors.append(RowError(line, 'must be a list of system names in the order they were shown, '
                                         'e.g. ["sysB", "sysA", "sysC"]', "display_order"))
        elif ranking is not None:
            ranked = [name for group in ranking for name in group]
            names = [s.strip() for s in display]
            repeated = sorted({s for s in names if names.count(s) > 1})
            if repeated:
                errors.append(RowError(line, f"names '{repeated[0]}' twice; each system is shown once",
                                       "display_order"))
            elif set(names) != set(ranked):
                missing = sorted(set(ranked) - set(names))
                extra = sorted(set(names) - set(ranked))
                detail = "; ".join(part for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"not ranked: {', '.join(extra)}" if extra else "") if part)
                errors.append(RowError(line, f"must list exactly the ranked systems, in the order shown "
                                             f"({detail})", "display_order"))
            else:
                display = tuple(names)
    seconds = record.get("seconds")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            errors.append(RowError(line, f"must be a number of seconds, not {_kind(seconds)}", "seconds"))
        elif not math.isfinite(seconds) or seconds < 0:
            errors.append(RowError(line, f"is {seconds}; give the time spent as a number of seconds, 0 or more",
                                   "seconds"))
        else:
            seconds = float(seconds)
    attention = record.get("attention_passed")
    if attention is not None and not isinstance(attention, bool):
        errors.append(RowError(line, f"must be true, false or null, not {_kind(attention)}", "attention_passed"))
    if record.get("reading") is not None and not isinstance(record["reading"], dict):
        errors.append(RowError(line, f"must be an object (system name -> how it was read), not "
                                     f"{_kind(record['reading'])}", "reading"))
    if errors:
        return errors
    return RankingRow(line, clean["item_id"], clean["annotator"], clean["criterion"], ranking,
                      display, seconds, attention)


def _plain_name(name):
    return type(name) is str and name != "" and name == name.strip()


def _ranking(line, value):
    """(tie groups as tuples, []) or (None, [RowError])."""
    # Fast path for the usual well-formed ranking; anything else is checked below, to say what is wrong.
    if type(value) is list and value and all(
            type(group) is list and group and all(map(_plain_name, group)) for group in value):
        groups = tuple(map(tuple, value))
        size = sum(map(len, groups))
        if size >= 2 and len({name for group in groups for name in group}) == size:
            return groups, []
    shape = ('must be a list of tie groups, best first, each a non-empty list of system names, '
             'e.g. [["sysA"], ["sysC", "sysD"], ["sysB"]]')
    if not isinstance(value, list) or not value:
        return None, [RowError(line, shape, "ranking")]
    groups = []
    for number, group in enumerate(value, start=1):
        if isinstance(group, str):
            return None, [RowError(line, f"tie group {number} is the bare name '{group[:100]}'; put every "
                                         'system in a list, even alone: [["sysA"], ["sysB", "sysC"]]', "ranking")]
        if not isinstance(group, list) or not group:
            what = "empty" if group == [] else _kind(group)
            return None, [RowError(line, f"tie group {number} is {what}; " + shape, "ranking")]
        names = []
        for name in group:
            if not isinstance(name, str):
                return None, [RowError(line, f"tie group {number} holds {_kind(name)}; system names are text",
                                       "ranking")]
            if not name.strip():
                return None, [RowError(line, f"tie group {number} holds an empty name; give the system's name",
                                       "ranking")]
            names.append(name.strip())
        groups.append(tuple(names))
    flat = [name for group in groups for name in group]
    seen = set()
    repeated = sorted({name for name in flat if name in seen or seen.add(name)})
    if repeated:
        return None, [RowError(line, f"names system '{repeated[0]}' twice; each system appears once", "ranking")]
    if len(flat) < 2:
        return None, [RowError(line, "ranks only one system; a ranking compares two or more", "ranking")]
    return tuple(groups), []


def read_rankings(fileobj, max_row_bytes=None):
    """Yield RankingRow or RowError for every line of a binary JSONL file, plus cross-line errors
    (the same item, criterion and annotator twice in one file). A line longer than max_row_bytes
    (by default the outputs' EVALSITE_MAX_ROW_BYTES) is reported and skipped unread."""
    if max_row_bytes is None:
        max_row_bytes = Limits(settings.EVALSITE_MAX_TEXT_CHARS, settings.EVALSITE_MAX_REASONING_CHARS,
                               settings.EVALSITE_MAX_ROW_BYTES).max_row_bytes
    seen = {}
    rows = errors = 0
    for parsed in iter_json_lines(fileobj, EXAMPLE, max_row_bytes):
        if isinstance(parsed, RowError):
            errors += 1
            yield parsed
            continue
        line_no, record = parsed
        result = validate_record(line_no, record)
        if isinstance(result, list):
            errors += len(result)
            yield from result
            continue
        key = (result.item_id, result.criterion, result.annotator)
        if key in seen:
            errors += 1
            yield RowError(line_no, f"annotator '{result.annotator}' already ranked item '{result.item_id}' "
                                    f"under '{result.criterion}' on line {seen[key]}; keep one of the two lines")
            continue
        seen[key] = line_no
        rows += 1
        yield result
    if rows == 0 and errors == 0:
        yield RowError(None, f"the file holds no rankings; write one JSON object per line, e.g. {EXAMPLE}")


def dumps(row):
    """One JSONL line (bytes, with its newline) for a RankingRow."""
    return orjson.dumps(row.record()) + b"\n"
