"""Hostile rankings files that once answered 500: JSON nested too deep for the parser, a
display_order nested 1,500 deep, an item_id of 5,000 digits. Each gets a located error and
nothing is written, through the API, the web form and the command."""
import html
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotations.models import LeaderboardSnapshot, Ranking
from annotations.results import services
from tests.factories import jsonl, outputs, ranking
from tests.located import assert_one_located_error

pytestmark = pytest.mark.django_db

MAX_JSON_DEPTH = 32  # the documented limit on nesting in an uploaded row
DEEP = "[" * 100_000 + "]" * 100_000


def raw_line(field, raw, **overrides):
    """One ranking line whose `field` is the raw JSON text `raw` (too deep or too long for json.dumps)."""
    return json.dumps(ranking(**{field: "@@RAW@@"}, **overrides)).replace('"@@RAW@@"', raw).encode() + b"\n"


def nested(levels):
    return "[" * levels + '"sysA"' + "]" * levels


HOSTILE = [
    # (id, content, line, field, phrase)
    ("ranking-100000-deep", jsonl(ranking()) + raw_line("ranking", DEEP, item_id="p2"), 2, "ranking",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("display-order-1500-deep", raw_line("display_order", nested(1500)), 1, "display_order",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("display-order-just-over", raw_line("display_order", nested(MAX_JSON_DEPTH + 1)), 1, "display_order",
     f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("item-id-5000-digits", jsonl(ranking()) + raw_line("item_id", "9" * 5000, annotator="a2"), 2, "item_id",
     "5,000 digits"),
    ("seconds-5000-digits", raw_line("seconds", "7" * 5000), 1, "seconds", "5,000 digits"),
]
PARAMS = pytest.mark.parametrize("content,line_no,field,phrase", [case[1:] for case in HOSTILE],
                                 ids=[case[0] for case in HOSTILE])


@pytest.fixture
def loaded(study):
    outputs(study)
    return study


def snapshot():
    return Ranking.objects.count(), LeaderboardSnapshot.objects.count()


@PARAMS
def test_api_refuses_with_a_located_error(api, loaded, content, line_no, field, phrase):
    api.raise_request_exception = False  # a crash must show as the 500 a user would get
    before = snapshot()
    reply = api.post("/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", content)},
                     format="multipart")
    assert_one_located_error(reply, line_no, field, phrase)
    assert snapshot() == before


@PARAMS
def test_web_form_shows_the_located_error(web, loaded, content, line_no, field, phrase):
    web.raise_request_exception = False
    before = snapshot()
    reply = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", content)},
                     HTTP_HX_REQUEST="true")
    assert reply.status_code == 200
    page = html.unescape(reply.content.decode())
    assert "The import was refused; nothing was written." in page
    assert f"line {line_no}" in page and f"field '{field}': " in page and phrase in page
    assert snapshot() == before


@PARAMS
def test_command_refuses_with_a_located_error(loaded, tmp_path, capsys, content, line_no, field, phrase):
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    before = snapshot()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_rankings", "pilot", str(path))
    err = capsys.readouterr().err
    assert f"{path}: line {line_no}" in err and f"field '{field}': " in err and phrase in err
    assert snapshot() == before


def test_display_order_at_the_depth_limit_is_refused_for_its_shape_not_its_depth(loaded):
    content = raw_line("display_order", nested(MAX_JSON_DEPTH - 1))
    with pytest.raises(services.UploadRejected) as refused:
        services.import_rankings(loaded, io.BytesIO(content))
    assert "must be a list of system names" in refused.value.errors[0].message
