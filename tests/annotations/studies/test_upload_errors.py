"""Every bad upload gets its own located message on every path (API, web form, CLI) and writes nothing."""
import html
import json
import re
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotations.studies import services
from annotations.models import Item, OutputUpload, Response, ResponseRevision, System
from tests.located import located

pytestmark = pytest.mark.django_db

HEADER = b"item_id,prompt,system,response\n"


def row(**overrides):
    base = {"item_id": "p9", "prompt": "A new post", "system": "sysA", "response": "An answer"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def jsonl(*rows):
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode() + b"\n"


@dataclass
class Bad:
    id: str
    content: bytes
    phrase: str
    line: int | None = None
    field: str | None = None
    filename: str = "outputs.jsonl"
    file_format: str | None = None
    column: int | None = None


BAD_INPUTS = [
    Bad("empty-file", b"", "the file is empty"),
    Bad("blank-lines-only", b"\n   \n\n", "the file holds no rows"),
    Bad("csv-header-only", HEADER, "the file holds no rows", filename="outputs.csv"),
    Bad("jsonl-bad-utf8", jsonl(row()) + b'{"item_id": "p\xff"}\n', "byte 0xff is not valid UTF-8",
        line=2, column=15),
    Bad("csv-latin1", HEADER + b"p9,caf\xe9 post,sysA,ok\n", "byte 0xe9 is not valid UTF-8",
        line=2, column=7, filename="outputs.csv"),
    Bad("jsonl-bad-json", jsonl(row()) + b'{"item_id": "p2",\n', "not valid JSON", line=2, column=18),
    Bad("jsonl-not-object", b'["p9", "A new post", "sysA", "An answer"]\n', "must be a JSON object", line=1),
    Bad("missing-response", jsonl(row(response=...)), "is missing", line=1, field="response"),
    Bad("missing-item-id", jsonl(row(), row(item_id=..., system="sysB")), "is missing", line=2, field="item_id"),
    Bad("missing-system", jsonl(row(system=...)), "is missing", line=1, field="system"),
    Bad("missing-prompt", jsonl(row(prompt=...)), "is missing", line=1, field="prompt"),
    Bad("blank-response", jsonl(row(response="  \n ")), "is empty", line=1, field="response"),
    Bad("empty-system", jsonl(row(system="")), "is empty", line=1, field="system"),
    Bad("null-prompt", jsonl(row(prompt=None)), "is empty", line=1, field="prompt"),
    Bad("response-number", jsonl(row(response=42)), "must be text, not a number", line=1, field="response"),
    Bad("prompt-list", jsonl(row(prompt=["a"])), "must be text, not a list", line=1, field="prompt"),
    Bad("metadata-not-object", jsonl(row(metadata="en")), "must be a JSON object", line=1, field="metadata"),
    Bad("metadata-empty-list", jsonl(row(metadata=[])), "must be a JSON object", line=1, field="metadata"),
    Bad("reasoning-zero", jsonl(row(reasoning=0)), "must be text, not a number", line=1, field="reasoning"),
    Bad("unknown-field", jsonl(row(respnse="typo")), "unknown field", line=1, field="respnse"),
    Bad("prompt-differs-in-file", jsonl(row(), row(system="sysB", prompt="Another post")),
        "differs from the prompt of item 'p9' on line 1", line=2, field="prompt"),
    Bad("prompt-differs-from-stored", jsonl(row(item_id="p1", prompt="Edited post")),
        "differs from the prompt already stored for item 'p1'", line=1, field="prompt"),
    Bad("metadata-differs-in-file", jsonl(row(metadata={"lang": "en"}), row(system="sysB", metadata={"lang": "zh"})),
        "differs from the metadata of item 'p9'", line=2, field="metadata"),
    Bad("duplicate-item-system", jsonl(row(), row(response="Second try")),
        "already has a response from system 'sysA' on line 1", line=2),
    Bad("changed-response-no-replace", jsonl(row(item_id="p1", prompt="Stored post", response="New text")),
        "already has a different response from system 'sysA'", line=1, field="response"),
    Bad("overlong-response", jsonl(row(response="x" * 101)), "is 101 characters long; the limit is 100",
        line=1, field="response"),
    Bad("overlong-item-id", jsonl(row(item_id="i" * 201)), "the limit is 200", line=1, field="item_id"),
    Bad("overlong-system-name", jsonl(row(system="s" * 101)), "the limit is 100", line=1, field="system"),
    Bad("nul-character", jsonl(row(response="before\x00after")), "NUL character", line=1, field="response"),
    Bad("csv-missing-column", b"item_id,prompt,system\np9,A post,sysA\n", "the header has no 'response' column",
        line=1, filename="outputs.csv"),
    Bad("csv-unknown-column", b"item_id,prompt,system,response,model\np9,x,s,r,m\n", "unknown column 'model'",
        line=1, filename="outputs.csv"),
    Bad("csv-duplicate-column", b"item_id,prompt,system,response,system\np9,x,s,r,s\n",
        "column 'system' appears twice", line=1, filename="outputs.csv"),
    Bad("csv-wrong-field-count", HEADER + b"p9,A post,sysA,An answer\np8,post, with comma,sysA,ok\n",
        "has 5 fields but the header has 4", line=3, filename="outputs.csv"),
    Bad("csv-unterminated-quote", HEADER + b'p9,"A post that never closes,sysA,ok\n', "cannot be read as CSV",
        line=2, filename="outputs.csv"),
    Bad("csv-metadata-bad-json", b"item_id,prompt,system,response,metadata\np9,x,s,r,{lang: en}\n",
        "is not valid JSON", line=2, field="metadata", filename="outputs.csv"),
    Bad("alpaca-not-a-list", b'{"instruction": "x", "output": "y", "generator": "g"}', "must be a JSON list",
        line=1, filename="model_outputs.json", file_format="alpaca"),
    Bad("alpaca-missing-generator",
        b'[\n {"instruction": "a", "output": "b", "generator": "g"},\n {"instruction": "a", "output": "c"}\n]',
        "entry 2 has no 'generator'", line=3, field="generator", filename="model_outputs.json"),
    Bad("alpaca-bad-json", b'[\n {"instruction": "a", "output": "b",}\n]', "not valid JSON", line=2,
        column=37, filename="model_outputs.json"),
    Bad("alpaca-bad-utf8", b'[\n {"instruction": "caf\xe9", "output": "b", "generator": "g"}\n]',
        "byte 0xe9 is not valid UTF-8", line=2, column=22, filename="model_outputs.json"),
    Bad("alpaca-entry-not-object", b'["just text"]', "entry 1 of the list must be an object", line=1,
        filename="model_outputs.json"),
    Bad("alpaca-output-empty", b'[{"instruction": "a", "output": "", "generator": "g"}]', "is empty",
        line=1, field="output", filename="model_outputs.json"),
    # A \u escape of half a surrogate pair: valid to Python's JSON parser, not a character.
    Bad("jsonl-lone-surrogate", jsonl(row()) + b'{"item_id": "p8", "prompt": "A \\ud83d post", "system": "sysA", '
        b'"response": "ok"}\n', "half of a UTF-16 surrogate pair", line=2, field="prompt"),
    Bad("jsonl-metadata-surrogate", b'{"item_id": "p9", "prompt": "A new post", "system": "sysA", '
        b'"response": "An answer", "metadata": {"notes": ["fine", "\\udc00"]}}\n',
        "half of a UTF-16 surrogate pair", line=1, field="metadata"),
    Bad("alpaca-lone-surrogate", b'[\n {"instruction": "a", "output": "b \\udc00", "generator": "g"}\n]',
        "half of a UTF-16 surrogate pair", line=2, field="output", filename="model_outputs.json"),
]


def test_at_least_25_distinct_bad_inputs():
    assert len(BAD_INPUTS) >= 25
    assert len({b.id for b in BAD_INPUTS}) == len(BAD_INPUTS)
    assert len({(b.phrase, b.field) for b in BAD_INPUTS}) >= 25


@pytest.fixture
def stored(study, settings):
    """One response already in the study, so that conflicts with stored data can be tested."""
    settings.EVALSITE_MAX_TEXT_CHARS = 100
    services.import_outputs(study, _file(jsonl(row(item_id="p1", prompt="Stored post", response="Stored"))),
                            filename="first.jsonl")
    return study


def _file(content, name="outputs.jsonl"):
    return SimpleUploadedFile(name, content)


def _snapshot():
    return tuple(m.objects.count() for m in (Item, System, Response, OutputUpload, ResponseRevision)) + (
        tuple(Response.objects.values_list("text", flat=True).order_by("pk")),
    )


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_api_refuses_with_located_error(bad, stored, api):
    before = _snapshot()
    data = {"file": _file(bad.content, bad.filename)}
    if bad.file_format:
        data["format"] = bad.file_format
    reply = api.post(f"/api/studies/{stored.slug}/outputs/", data, format="multipart")
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert "Nothing was written" in body["detail"]
    matching = [e for e in body["errors"] if bad.phrase in e["message"]]
    assert matching, body["errors"]
    error = matching[0]
    assert error["line"] == bad.line
    assert error["field"] == bad.field
    if bad.column is not None:
        assert error["column"] == bad.column
    assert error["text"].startswith(located(bad)) if located(bad) else True
    assert _snapshot() == before


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_web_form_shows_located_error_in_place(bad, stored, web):
    before = _snapshot()
    data = {"file": _file(bad.content, bad.filename), "file_format": bad.file_format or ""}
    reply = web.post(f"/studies/{stored.slug}/upload/", data, HTTP_HX_REQUEST="true")
    assert reply.status_code == 200
    page = html.unescape(reply.content.decode())
    assert "nothing was written" in page
    where = located(bad)
    assert re.search(re.escape(f"{where}: " if where else "") + r"[^<]*" + re.escape(bad.phrase), page), page
    assert "<html" not in page  # a fragment swapped in place, not a new page
    assert _snapshot() == before


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_cli_refuses_with_located_error(bad, stored, tmp_path, capsys):
    path = tmp_path / bad.filename
    path.write_bytes(bad.content)
    before = _snapshot()
    args = ["import_outputs", stored.slug, str(path)]
    if bad.file_format:
        args += ["--format", bad.file_format]
    with pytest.raises(CommandError, match="nothing was written"):
        call_command(*args)
    err = capsys.readouterr().err
    where = located(bad)
    assert f"{path}: {where}: " in err if where else f"{path}: " in err
    assert bad.phrase in err
    assert _snapshot() == before
