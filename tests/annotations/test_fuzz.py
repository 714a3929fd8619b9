"""Property-based fuzzing of what researchers upload: the outputs reader (JSONL, CSV, AlpacaEval),
the rankings reader, and the upload, import and study-creation API endpoints. Arbitrary bytes and
structured-but-wrong files (wrong types, unknown fields, nesting too deep, integers too long)
never crash a reader, never answer 5xx, and a refused file writes nothing."""
import csv
import io
import json

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.models import Item, LeaderboardSnapshot, OutputUpload, Ranking, Response, Study, System
from annotations.results.rankings_io import RankingRow, read_rankings
from annotations.studies.ingest import Limits, OutputRow, RowError, read_rows
from tests.factories import outputs

# Bounded and derandomised: the same examples on every run, a few seconds in all.
READER = settings(max_examples=60, deadline=None, derandomize=True, database=None)
ENDPOINT = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LIMITS = Limits(max_text_chars=2_000, max_reasoning_chars=2_000)

OUTPUT_FIELDS = ["item_id", "prompt", "system", "response", "reasoning", "metadata"]
ALPACA_FIELDS = ["instruction", "output", "generator", "dataset", "item_id"]
RANKING_FIELDS = ["item_id", "annotator", "criterion", "ranking", "display_order", "seconds", "attention_passed"]

text = st.text(max_size=30)
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | text
                | st.sampled_from(["p1", "p2", "sysA", "sysB", "overall", "", " ", "\x00"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(text, inner, max_size=4), max_leaves=12)
# Raw JSON the standard library cannot write or read back: nesting past any parser's recursion,
# integers past Python's 4,300 digits, deep objects.
# (Sizes drawn from a range lean small, so the known breaking points are drawn as well.)
depths = st.integers(1, 3_000) | st.sampled_from([33, 255, 300, 1_025, 1_500, 100_000])
hostile_raw = st.one_of(
    depths.map(lambda n: "[" * n + "]" * n),
    depths.filter(lambda n: n <= 1_500).map(lambda n: '{"a": ' * n + "1" + "}" * n),
    (st.integers(4_000, 6_000) | st.just(5_000)).map(lambda n: "9" * n),
    depths.map(lambda n: "[" * n + '"sysA"' + "]" * n),
)


def record_of(fields, good, hostile=False):
    """A row: mostly the good values, some fields dropped, changed, added, or made hostile
    (always, with `hostile`)."""
    made_hostile = st.tuples(st.sampled_from(fields), hostile_raw)
    return st.fixed_dictionaries({}, optional={name: st.just(good[name]) | json_values for name in fields}).flatmap(
        lambda record: st.tuples(st.just(record), st.dictionaries(text, json_values, max_size=2),
                                 made_hostile if hostile else st.none() | made_hostile))


def render_line(parts):
    record, extra, hostile = parts
    record = {**record, **extra}
    if hostile is None:
        return json.dumps(record)
    name, raw = hostile
    record[name] = "@@RAW@@"
    return json.dumps(record).replace('"@@RAW@@"', raw)


GOOD_OUTPUT = {"item_id": "p1", "prompt": "A post", "system": "sysA", "response": "An answer",
               "reasoning": "", "metadata": {"lang": "en"}}
GOOD_ALPACA = {"instruction": "A post", "output": "An answer", "generator": "sysA", "dataset": "d", "item_id": "p1"}
GOOD_RANKING = {"item_id": "p1", "annotator": "a1", "criterion": "overall",
                "ranking": [["sysA"], ["sysC", "sysD"], ["sysB"]],
                "display_order": ["sysB", "sysA", "sysC", "sysD"], "seconds": 41.5, "attention_passed": True}



def lines_of(fields, good, hostile=False, min_size=1):
    return st.lists(record_of(fields, good, hostile).map(render_line), min_size=min_size, max_size=4)


def jsonl(lines):
    return ("\n".join(lines) + "\n").encode()


def alpaca(entries):
    return ("[\n" + ",\n".join(entries) + "\n]\n").encode()


jsonl_files = lines_of(OUTPUT_FIELDS, GOOD_OUTPUT).map(jsonl)
ranking_files = lines_of(RANKING_FIELDS, GOOD_RANKING).map(jsonl)
alpaca_files = lines_of(ALPACA_FIELDS, GOOD_ALPACA, min_size=0).map(alpaca)
# With few examples per endpoint, files with a hostile value on every line are drawn on purpose.
hostile_jsonl_files = lines_of(OUTPUT_FIELDS, GOOD_OUTPUT, hostile=True).map(jsonl)
hostile_ranking_files = lines_of(RANKING_FIELDS, GOOD_RANKING, hostile=True).map(jsonl)
hostile_alpaca_files = lines_of(ALPACA_FIELDS, GOOD_ALPACA, hostile=True).map(alpaca)


def _csv(header, rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


cells = text | hostile_raw | json_values.map(json.dumps)
headers = st.just(OUTPUT_FIELDS) | st.lists(st.sampled_from(OUTPUT_FIELDS + ["other"]), min_size=1, max_size=7)
csv_files = headers.flatmap(
    lambda header: st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=4).map(
        lambda rows: _csv(header, rows)))
arbitrary = st.binary(max_size=600)


def _check_errors(results):
    for result in results:
        if isinstance(result, RowError):
            assert result.line is None or result.line >= 1
            assert result.message and str(result)


@READER
@given(data=st.one_of(jsonl_files, arbitrary), file_format=st.sampled_from(["jsonl", "csv", "alpaca"]))
def test_any_file_reads_as_rows_or_located_errors(data, file_format):
    results = list(read_rows(io.BytesIO(data), file_format, LIMITS))
    assert results and all(isinstance(r, (OutputRow, RowError)) for r in results)
    _check_errors(results)
    for row in results:
        if isinstance(row, OutputRow):
            orjson.dumps(row.metadata)  # what the database copy does with it
            assert isinstance(row.item_id, str) and len(row.item_id) <= 200


@READER
@given(data=st.one_of(csv_files, arbitrary))
def test_any_csv_reads_as_rows_or_located_errors(data):
    results = list(read_rows(io.BytesIO(data), "csv", LIMITS))
    assert results and all(isinstance(r, (OutputRow, RowError)) for r in results)
    _check_errors(results)
    for row in results:
        if isinstance(row, OutputRow):
            orjson.dumps(row.metadata)


@READER
@given(data=st.one_of(alpaca_files, arbitrary))
def test_any_alpaca_file_reads_as_rows_or_located_errors(data):
    results = list(read_rows(io.BytesIO(data), "alpaca", LIMITS))
    assert results and all(isinstance(r, (OutputRow, RowError)) for r in results)
    _check_errors(results)


@READER
@given(data=st.one_of(ranking_files, arbitrary))
def test_any_rankings_file_reads_as_rankings_or_located_errors(data):
    results = list(read_rankings(io.BytesIO(data)))
    assert results and all(isinstance(r, (RankingRow, RowError)) for r in results)
    _check_errors(results)
    for row in results:
        if isinstance(row, RankingRow):
            orjson.dumps(row.record())  # what an export writes


def _counts():
    return (Study.objects.count(), Item.objects.count(), System.objects.count(), Response.objects.count(),
            OutputUpload.objects.count(), Ranking.objects.count(), LeaderboardSnapshot.objects.count())


def _post(client, url, data, **kwargs):
    """Post inside a savepoint that is rolled back, so each example starts from the same study."""
    with transaction.atomic():
        before = _counts()
        reply = client.post(url, data, **kwargs)
        after = _counts()
        transaction.set_rollback(True)
    assert reply.status_code < 500, (reply.status_code, reply.content[:300])
    if reply.status_code >= 400:
        assert after == before, "a refused request wrote rows"
    return reply


@pytest.fixture
def client(api, study):
    api.raise_request_exception = False  # a crash must show as the 500 a user would get
    outputs(study, items=("p1", "p2"))  # rankings need items and systems to refer to
    return api


@pytest.mark.django_db
@ENDPOINT
@given(upload=st.one_of((jsonl_files | hostile_jsonl_files).map(lambda data: ("outputs.jsonl", data)),
                       csv_files.map(lambda data: ("outputs.csv", data)),
                       (alpaca_files | hostile_alpaca_files).map(lambda data: ("model_outputs.json", data)),
                       st.tuples(st.sampled_from(["outputs.jsonl", "outputs.csv", "outputs.json", "outputs"]),
                                 arbitrary)),
       file_format=st.sampled_from([None, None, None, "jsonl", "csv", "alpaca", "xml"]))
def test_output_uploads_never_fail_and_refusals_write_nothing(client, upload, file_format):
    name, data = upload
    form = {"file": SimpleUploadedFile(name, data)}
    if file_format:
        form["format"] = file_format
    reply = _post(client, "/api/studies/pilot/outputs/", form, format="multipart")
    if reply.status_code == 400 and "errors" in reply.json():
        assert all(e["text"] for e in reply.json()["errors"])


@pytest.mark.django_db
@ENDPOINT
@given(data=st.one_of(ranking_files, hostile_ranking_files, arbitrary))
def test_ranking_imports_never_fail_and_refusals_write_nothing(client, data):
    _post(client, "/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", data)}, format="multipart")


STUDY_FIELDS = ["slug", "title", "instructions", "criteria", "responses_per_screen", "annotations_per_item",
                "allow_ties", "status", "owner", "attention_min_pass_rate"]
GOOD_STUDY = {"slug": "fresh", "title": "Fresh", "instructions": "", "criteria": [{"name": "overall"}],
              "responses_per_screen": 4, "annotations_per_item": 3, "allow_ties": False, "status": "draft",
              "owner": "x", "attention_min_pass_rate": 0.8}


@pytest.mark.django_db
@ENDPOINT
@given(body=st.fixed_dictionaries(
    {"slug": st.just("fresh") | json_values, "title": st.just("Fresh") | json_values,
     "status": st.sampled_from(["draft", "open", "closed"]) | json_values},
    optional={name: st.just(GOOD_STUDY[name]) | st.just(GOOD_STUDY[name]) | json_values
              for name in STUDY_FIELDS if name not in ("slug", "title", "status")}))
def test_study_creation_never_fails(client, body):
    _post(client, "/api/studies/", json.dumps(body), content_type="application/json")
