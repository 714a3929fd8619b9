"""Bounded reads: an API page has a ceiling, and an import reads only what it names."""
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.results import services as results
from tests.factories import jsonl, outputs, ranking

pytestmark = pytest.mark.django_db


def test_an_api_page_never_exceeds_its_ceiling(api, study):
    outputs(study, items=tuple(f"p{i}" for i in range(300)), systems=("sysA", "sysB", "sysC", "sysD"))
    reply = api.get("/api/studies/pilot/responses/?limit=1000000")
    assert reply.status_code == 200
    body = reply.json()
    assert body["count"] == 1200 and len(body["results"]) == 1000
    assert "offset=1000" in body["next"]


def test_an_import_reads_only_the_responses_of_the_items_it_names(study):
    outputs(study, items=tuple(f"p{i}" for i in range(1, 41)))
    with CaptureQueriesContext(connection) as queries:
        summary = results.import_rankings(study, io.BytesIO(jsonl(ranking())), filename="r.jsonl")
    assert summary.rankings_created == 1
    reads = [q["sql"] for q in queries.captured_queries if 'FROM "annotations_response"' in q["sql"]]
    assert len(reads) == 1
    # One item's responses, by its id: not a join over every item of the study.
    assert '"annotations_response"."item_id" IN (' in reads[0] and "annotations_item" not in reads[0]


def test_a_rankings_export_is_streamed(api, web, study):
    outputs(study)
    results.import_rankings(study, io.BytesIO(jsonl(ranking(), ranking(annotator="a2"))), filename="r.jsonl")
    for reply in (api.get("/api/studies/pilot/rankings/export"), web.get("/studies/pilot/rankings/export/")):
        assert reply.status_code == 200 and reply.streaming
        assert reply["Content-Disposition"] == 'attachment; filename="pilot-rankings.jsonl"'
        assert b"".join(reply.streaming_content).count(b"\n") == 2
