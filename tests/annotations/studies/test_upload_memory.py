"""An upload's memory stays bounded by the longest row, not the file: a line, CSV record or
AlpacaEval entry longer than the longest row accepted is refused where it is, without being held
whole, and the rest of the file is still checked; an AlpacaEval file is read entry by entry."""
import io
import json
import tracemalloc

import pytest

from annotations.models import Item, Response
from annotations.results.rankings_io import read_rankings
from annotations.studies import services
from annotations.studies.ingest import Limits, OutputRow, RowError, read_rows

MB = 10**6
LIMITS = Limits(max_text_chars=50_000, max_reasoning_chars=200_000, max_row_bytes=2**20)
GOOD = {"item_id": "p1", "prompt": "A post", "system": "sysA", "response": "An answer"}


def peak_memory(read):
    """(what read() returns, the most memory Python held at once while it ran, in bytes)."""
    tracemalloc.start()
    try:
        result = read()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def errors_of(results):
    return [str(r) for r in results if isinstance(r, RowError)]


def huge_text(size):
    return "word " * (size // 5)


def jsonl(*records):
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


@pytest.fixture
def huge_jsonl(tmp_path):
    """Line 2 is one 40 MB row; line 4 lacks its response."""
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(jsonl(GOOD, {**GOOD, "system": "sysB", "response": huge_text(40 * MB)},
                           {**GOOD, "system": "sysC"}, {"item_id": "p2", "prompt": "x", "system": "sysA"}))
    return path


@pytest.mark.django_db
def test_a_huge_line_is_refused_where_it_is_without_being_read_whole(study, huge_jsonl):
    with open(huge_jsonl, "rb") as upload:
        refused, peak = peak_memory(lambda: pytest.raises(services.UploadRejected, services.import_outputs,
                                                          study, upload, filename="outputs.jsonl"))
    assert peak < 40 * MB / 4
    errors = [str(e) for e in refused.value.errors]
    assert errors[0].startswith("line 2: this line is 38.1 MiB; the longest row accepted is 4.4 MiB.")
    # Every other problem of the file is listed too, and nothing was written.
    assert errors[1:] == ["line 4, field 'response': is missing; every row needs the response text"]
    assert (Item.objects.count(), Response.objects.count()) == (0, 0)


def test_the_longest_row_is_derived_from_the_limits_on_texts():
    limits = Limits(max_text_chars=50_000, max_reasoning_chars=200_000)
    # Every text at its limit, each character as a 12-byte escape pair, plus 1 MiB.
    assert limits.max_row_bytes == 12 * 300_000 + 2**20
    assert Limits(50_000, 200_000, max_row_bytes=2**20).max_row_bytes == 2**20


def test_a_line_just_within_the_limit_is_read():
    line = json.dumps({**GOOD, "response": "x" * 1000}).encode()
    limits = Limits(50_000, 200_000, max_row_bytes=len(line))
    results = list(read_rows(io.BytesIO(line + b"\n"), "jsonl", limits))
    assert [type(r) for r in results] == [OutputRow]
    results = list(read_rows(io.BytesIO(b"\n" + line + b"x\n"), "jsonl", limits))
    assert errors_of(results)[0].startswith(f"line 2: this line is {len(line) + 1:,} bytes")


def test_a_huge_csv_line_is_refused_and_the_rest_is_checked(tmp_path):
    path = tmp_path / "outputs.csv"
    path.write_bytes(b"item_id,prompt,system,response\n"
                     b"p1,A post,sysA,An answer\n"
                     b'p1,A post,sysB,"' + huge_text(40 * MB).encode() + b'"\n'
                     b"p1,A post,sysC,fine\n"
                     b"p2,A post,sysA\n")
    with open(path, "rb") as upload:
        results, peak = peak_memory(lambda: list(read_rows(upload, "csv", LIMITS)))
    assert errors_of(results) == [
        "line 3: this line is 38.1 MiB; the longest row accepted is 1.0 MiB. It was skipped unread: check "
        "that every row ends with a line break and that no text in it is over its limit",
        "line 5: has 3 fields but the header has 4; quote any field that contains a comma",
    ]
    assert [r.system for r in results if isinstance(r, OutputRow)] == ["sysA", "sysC"]
    assert peak < 40 * MB / 10


def test_a_csv_field_over_the_field_limit_is_located_and_the_rest_is_checked():
    limits = Limits(max_text_chars=1_000, max_reasoning_chars=1_000)
    content = (b"item_id,prompt,system,response\n"
               b"p1,A post,sysA," + b"y" * 10_000 + b"\n"
               b"p1,A post,sysB,fine\n"
               b"p2,A post,sysA\n")
    results = list(read_rows(io.BytesIO(content), "csv", limits))
    errors = errors_of(results)
    assert errors[0].startswith("line 2: has a field longer than 5,024 characters")
    assert errors[1:] == ["line 4: has 3 fields but the header has 4; quote any field that contains a comma"]
    assert [r.system for r in results if isinstance(r, OutputRow)] == ["sysB"]


def test_a_csv_quote_left_open_is_refused_within_the_longest_row():
    lines = b"".join(b"line %d of a field that never ends\n" % n for n in range(100_000))
    content = b"item_id,prompt,system,response\np1,A post,sysA,\"" + lines
    limits = Limits(max_text_chars=50_000, max_reasoning_chars=200_000, max_row_bytes=100_000)
    results, peak = peak_memory(lambda: list(read_rows(io.BytesIO(content), "csv", limits)))
    assert errors_of(results)[0].startswith("line 2: this row runs on to line ")
    assert "check the quotes on this row" in errors_of(results)[0]
    assert peak < len(content) / 2


def alpaca_entry(**fields):
    return {"instruction": "A post", "output": "An answer", "generator": "sysA", **fields}


@pytest.mark.parametrize("indent", [None, 1], ids=["one-line", "indented"])
def test_a_huge_alpaca_entry_is_refused_where_it_is_and_the_rest_is_checked(tmp_path, indent):
    path = tmp_path / "model_outputs.json"
    entries = [alpaca_entry(), alpaca_entry(generator="sysB", output=huge_text(40 * MB)),
               alpaca_entry(generator="sysC"), {"instruction": "Another post", "output": "x"}]
    path.write_text(json.dumps(entries, indent=indent))
    with open(path, "rb") as upload:
        results, peak = peak_memory(lambda: list(read_rows(upload, "alpaca", LIMITS)))
    errors = errors_of(results)
    first, last = (1, 1) if indent is None else (7, 17)
    assert errors[0] == (f"line {first}: entry 2 of the list is 38.1 MiB; the longest row accepted is 1.0 MiB. "
                         "It was skipped unread: check that no text in it is over its limit")
    assert errors[1:] == [f"line {last}, field 'generator': entry 4 has no 'generator'; AlpacaEval entries "
                          "need instruction, output and generator"]
    assert [r.system for r in results if isinstance(r, OutputRow)] == ["sysA", "sysC"]
    assert peak < 40 * MB / 4


def test_an_alpaca_file_is_read_entry_by_entry(tmp_path):
    path = tmp_path / "model_outputs.json"
    entries = [alpaca_entry(instruction=f"Post {i}: " + "a few words " * 100, output="an answer " * 100,
                            generator=f"sys{i % 4}") for i in range(8_000)]
    path.write_text(json.dumps(entries, indent=2))
    size = path.stat().st_size

    def read():
        with open(path, "rb") as upload:
            return sum(isinstance(r, OutputRow) for r in read_rows(upload, "alpaca", LIMITS))

    rows, peak = peak_memory(read)
    assert rows == 8_000
    assert peak < size / 4


def test_an_alpaca_error_deep_in_a_one_line_file_is_located_by_column():
    entries = [alpaca_entry(generator=f"sys{i}") for i in range(3)]
    content = json.dumps(entries).encode()
    broken = content.replace(b'"generator": "sys2"', b'"generator": "sys2",', 1)
    results = list(read_rows(io.BytesIO(broken), "alpaca", LIMITS))
    column = broken.index(b'"sys2",') + len('"sys2",') + 1  # the '}' after the stray comma
    assert errors_of(results) == [f"line 1, column {column}: not valid JSON "
                                  "(Expecting property name enclosed in double quotes)"]


def test_a_huge_rankings_line_is_refused_and_the_rest_is_checked():
    ranking = {"item_id": "p1", "annotator": "a1", "criterion": "overall", "ranking": [["sysA"], ["sysB"]]}
    content = jsonl(ranking, {**ranking, "annotator": "a2", "note": huge_text(3 * MB)},
                    {**ranking, "annotator": "a3", "ranking": []})
    results = list(read_rankings(io.BytesIO(content), max_row_bytes=2**20))
    errors = errors_of(results)
    assert errors[0].startswith("line 2: this line is 2.9 MiB; the longest row accepted is 1.0 MiB.")
    assert errors[1].startswith("line 3, field 'ranking': must be a list of tie groups")
    assert len(errors) == 2
