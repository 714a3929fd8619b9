"""Hostile uploads and API calls that once answered 500: JSON nested too deep, integers too long
to read, a status given at creation, format suffixes, OPTIONS on the docs. Each gets a clear,
located 4xx and writes nothing."""
import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.models import Item, OutputUpload, Response, Study, System
from tests.factories import outputs
from tests.located import assert_one_located_error

pytestmark = pytest.mark.django_db

GOOD = {"item_id": "p1", "prompt": "A post", "system": "sysA", "response": "An answer"}
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 5000
MAX_JSON_DEPTH = 32  # the documented limit on nesting in an uploaded row


def nested(levels, inner=None):
    value = {"lang": "en"} if inner is None else inner
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def line(**fields):
    return json.dumps({**GOOD, **fields})


def with_raw(field, raw):
    """A JSON line whose `field` is the raw JSON text `raw` (too deep or too long for json.dumps)."""
    record = {**GOOD, field: "@@RAW@@"}
    return json.dumps(record).replace('"@@RAW@@"', raw)


def alpaca(*entries):
    return "[\n" + ",\n".join(entries) + "\n]\n"


ALPACA_GOOD = '{"instruction": "A post", "output": "An answer", "generator": "sysA"}'

HOSTILE = [
    # (id, filename, content, line, field, phrase)
    ("jsonl-deep-response", "outputs.jsonl", line() + "\n" + with_raw("response", DEEP).replace("p1", "p2") + "\n",
     2, "response", f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("alpaca-deep-output", "model_outputs.json",
     alpaca(ALPACA_GOOD, '{"instruction": "B", "generator": "sysA", "output": ' + DEEP + "}"),
     3, "output", f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("jsonl-metadata-300", "outputs.jsonl", line(metadata=nested(300)) + "\n", 1, "metadata",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("jsonl-metadata-just-over", "outputs.jsonl", line(metadata=nested(MAX_JSON_DEPTH + 1)) + "\n", 1, "metadata",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("csv-metadata-300", "outputs.csv",
     "item_id,prompt,system,response,metadata\np1,A post,sysA,An answer,\""
     + json.dumps(nested(300)).replace('"', '""') + '"\n', 2, "metadata",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("csv-metadata-deep", "outputs.csv",
     "item_id,prompt,system,response,metadata\np1,A post,sysA,An answer," + "[" * 100_000 + "\n", 2, "metadata",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("jsonl-huge-int-item-id", "outputs.jsonl", line() + "\n" + with_raw("item_id", HUGE_INT) + "\n", 2, "item_id",
     "5,000 digits"),
    ("alpaca-huge-int-item-id", "model_outputs.json",
     alpaca('{"item_id": ' + HUGE_INT + ', "instruction": "A post", "output": "x", "generator": "sysA"}'),
     2, "item_id", "5,000 digits"),
    ("csv-metadata-huge-int", "outputs.csv",
     "item_id,prompt,system,response,metadata\np1,A post,sysA,An answer,\"{\"\"n\"\": " + HUGE_INT + '}"\n',
     2, "metadata", "5,000 digits"),
]


@pytest.fixture
def client(api):
    api.raise_request_exception = False  # a crash must show as the 500 a user would get
    return api


def counts():
    return (Item.objects.count(), System.objects.count(), Response.objects.count(), OutputUpload.objects.count())


@pytest.mark.parametrize("name,content,line_no,field,phrase", [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_output_files_are_refused_with_a_located_error(client, study, name, content, line_no, field,
                                                                phrase):
    before = counts()
    reply = client.post("/api/studies/pilot/outputs/", {"file": SimpleUploadedFile(name, content.encode())},
                        format="multipart")
    assert_one_located_error(reply, line_no, field, phrase)
    assert counts() == before


def test_metadata_at_the_depth_limit_is_stored(client, study):
    metadata = nested(MAX_JSON_DEPTH)
    reply = client.post("/api/studies/pilot/outputs/",
                        {"file": SimpleUploadedFile("o.jsonl", (line(metadata=metadata) + "\n").encode())},
                        format="multipart")
    assert reply.status_code == 201, reply.content[:500]
    assert Item.objects.get(study=study, external_id="p1").metadata == metadata


def test_the_web_upload_shows_the_same_located_error(web, study):
    web.raise_request_exception = False
    content = (line() + "\n" + with_raw("response", DEEP).replace("p1", "p2") + "\n").encode()
    reply = web.post("/studies/pilot/upload/", {"file": SimpleUploadedFile("o.jsonl", content), "file_format": ""},
                     HTTP_HX_REQUEST="true")
    assert reply.status_code == 200
    page = html.unescape(reply.content.decode())
    assert "nothing was written" in page
    assert f"line 2, column 101, field 'response': is nested more than {MAX_JSON_DEPTH} levels deep" in page
    assert Item.objects.count() == 0


@pytest.mark.parametrize("status", ["draft", "closed"])
def test_a_study_can_be_created_with_a_status(client, status):
    reply = client.post("/api/studies/", {"slug": "fresh", "title": "Fresh", "status": status}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["status"] == status
    assert Study.objects.get(slug="fresh").status == status


def test_a_new_study_cannot_be_created_open(client):
    reply = client.post("/api/studies/", {"slug": "fresh", "title": "Fresh", "status": "open"}, format="json")
    assert reply.status_code == 400
    assert "cannot open yet" in reply.json()["status"]
    assert not Study.objects.filter(slug="fresh").exists()


def test_an_unknown_status_at_creation_is_refused(client):
    reply = client.post("/api/studies/", {"slug": "fresh", "title": "Fresh", "status": "running"}, format="json")
    assert reply.status_code == 400
    assert "status" in reply.json()
    assert not Study.objects.filter(slug="fresh").exists()


@pytest.mark.parametrize("listing", ["items", "systems", "responses"])
def test_format_suffixes_on_study_listings_answer_json(client, study, listing):
    outputs(study)
    plain = client.get(f"/api/studies/pilot/{listing}/")
    suffixed = client.get(f"/api/studies/pilot/{listing}.json")
    assert suffixed.status_code == 200, suffixed.content[:300]
    assert suffixed.json() == plain.json()


@pytest.mark.parametrize("url", ["/api/studies/pilot/outputs.json", "/api/studies/pilot.json", "/api/studies.json",
                                 "/api/studies/pilot/items.csv", "/api/studies/pilot/items.api"])
def test_other_suffixed_urls_never_answer_500(client, study, url):
    reply = client.get(url)
    assert reply.status_code in (200, 404, 405), (reply.status_code, reply.content[:300])


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/", "/api/schema/"])
def test_options_on_the_api_docs_does_not_fail(client, url):
    reply = client.options(url)
    assert reply.status_code < 500, reply.content[:300]
