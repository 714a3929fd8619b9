"""Importing rankings: every bad input gets a located message on every path (API, web, CLI) and
writes nothing; good imports store system ids; importing again changes nothing; a stored ranking
is never overwritten."""
import html
import io
import json
import re
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotations.results import services
from annotations.models import LeaderboardSnapshot, Ranking, System
from tests.factories import UserFactory, jsonl, outputs, ranking
from tests.located import located

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(study):
    """Items p1..p3 answered by sysA..sysD (p3 has no sysD), and one ranking already stored."""
    outputs(study, missing={("p3", "sysD")})
    services.import_rankings(study, io.BytesIO(jsonl(ranking(item_id="p2", annotator="stored"))))
    return study


@dataclass
class Bad:
    id: str
    content: bytes
    phrase: str
    line: int | None = None
    field: str | None = None
    column: int | None = None


BAD_INPUTS = [
    Bad("empty-file", b"", "the file is empty"),
    Bad("blank-lines-only", b"\n  \n", "the file holds no rankings"),
    Bad("bad-utf8", jsonl(ranking()) + b'{"item_id": "p\xff"}\n', "byte 0xff is not valid UTF-8", line=2, column=15),
    Bad("bad-json", jsonl(ranking()) + b'{"item_id": "p2",\n', "not valid JSON", line=2, column=18),
    Bad("lone-surrogate", jsonl(ranking()) + jsonl(ranking(item_id="p2")).replace(b'"a1"', b'"a\\ud800"'),
        "half of a UTF-16 surrogate pair", line=2, field="annotator"),
    Bad("not-an-object", b'["p1", "a1", "overall"]\n', "must be a JSON object", line=1),
    Bad("missing-ranking", jsonl(ranking(ranking=...)), "is missing", line=1, field="ranking"),
    Bad("missing-annotator", jsonl(ranking(), ranking(item_id="p2", annotator=...)), "is missing", line=2,
        field="annotator"),
    Bad("missing-criterion", jsonl(ranking(criterion=...)), "is missing", line=1, field="criterion"),
    Bad("unknown-field", jsonl(ranking(rank=[["sysA"]])), "unknown field", line=1, field="rank"),
    Bad("empty-annotator", jsonl(ranking(annotator="  ")), "is empty", line=1, field="annotator"),
    Bad("annotator-not-text", jsonl(ranking(annotator=7)), "must be text, not a number", line=1, field="annotator"),
    Bad("annotator-too-long", jsonl(ranking(annotator="x" * 201)), "the limit is 200", line=1, field="annotator"),
    Bad("site-annotator-label", jsonl(ranking(annotator="user-3")), "reserved for this site's own annotators",
        line=1, field="annotator"),
    Bad("unknown-item", jsonl(ranking(item_id="p9")), "no item 'p9' in study 'pilot'", line=1, field="item_id"),
    Bad("unknown-criterion", jsonl(ranking(criterion="fluency")), "no criterion 'fluency' in this study; its "
        "criteria are overall", line=1, field="criterion"),
    Bad("unknown-system", jsonl(ranking(ranking=[["sysA"], ["sysZ"]], display_order=None)),
        "no system 'sysZ' in this study; its systems are sysA, sysB, sysC, sysD", line=1, field="ranking"),
    Bad("system-without-response", jsonl(ranking(item_id="p3")), "system 'sysD' has no response to item 'p3'",
        line=1, field="ranking"),
    Bad("ranking-not-a-list", jsonl(ranking(ranking="sysA > sysB")), "must be a list of tie groups", line=1,
        field="ranking"),
    Bad("ranking-empty", jsonl(ranking(ranking=[])), "must be a list of tie groups", line=1, field="ranking"),
    Bad("tie-group-empty", jsonl(ranking(ranking=[["sysA"], [], ["sysB"]], display_order=None)),
        "tie group 2 is empty", line=1, field="ranking"),
    Bad("tie-group-bare-name", jsonl(ranking(ranking=["sysA", "sysB"], display_order=None)),
        "tie group 1 is the bare name 'sysA'", line=1, field="ranking"),
    Bad("tie-group-number", jsonl(ranking(ranking=[["sysA"], [3]], display_order=None)),
        "tie group 2 holds a number", line=1, field="ranking"),
    Bad("system-twice", jsonl(ranking(ranking=[["sysA"], ["sysB", "sysA"]], display_order=None)),
        "names system 'sysA' twice", line=1, field="ranking"),
    Bad("one-system-only", jsonl(ranking(ranking=[["sysA"]], display_order=None)), "ranks only one system",
        line=1, field="ranking"),
    Bad("display-order-missing-one", jsonl(ranking(display_order=["sysB", "sysA", "sysC"])),
        "must list exactly the ranked systems, in the order shown (missing sysD)", line=1, field="display_order"),
    Bad("display-order-extra", jsonl(ranking(ranking=[["sysA"], ["sysB"]], display_order=["sysA", "sysB", "sysC"])),
        "not ranked: sysC", line=1, field="display_order"),
    Bad("display-order-repeats", jsonl(ranking(display_order=["sysB", "sysA", "sysA", "sysD"])),
        "names 'sysA' twice", line=1, field="display_order"),
    Bad("display-order-not-list", jsonl(ranking(display_order="sysB,sysA")), "must be a list of system names",
        line=1, field="display_order"),
    Bad("seconds-negative", jsonl(ranking(seconds=-3)), "is -3; give the time spent", line=1, field="seconds"),
    Bad("seconds-text", jsonl(ranking(seconds="41s")), "must be a number of seconds, not text", line=1,
        field="seconds"),
    Bad("seconds-nan", b'{"item_id": "p1", "annotator": "a1", "criterion": "overall", "ranking": [["sysA"], '
        b'["sysB"]], "seconds": NaN}\n', "is nan; give the time spent", line=1, field="seconds"),
    Bad("attention-not-boolean", jsonl(ranking(attention_passed="yes")), "must be true, false or null", line=1,
        field="attention_passed"),
    Bad("same-ranking-twice-in-file", jsonl(ranking(), ranking(seconds=12)),
        "annotator 'a1' already ranked item 'p1' under 'overall' on line 1", line=2),
    Bad("differs-from-stored",
        jsonl(ranking(item_id="p2", annotator="stored", ranking=[["sysB"], ["sysA", "sysC", "sysD"]])),
        "already has a ranking of item 'p2' under 'overall' with a different ranking; stored rankings are never "
        "overwritten", line=1, field="ranking"),
    Bad("seconds-differ-from-stored", jsonl(ranking(item_id="p2", annotator="stored", seconds=99.0)),
        "with a different seconds", line=1, field="seconds"),
]


def test_at_least_25_distinct_bad_inputs():
    assert len({b.id for b in BAD_INPUTS}) == len(BAD_INPUTS) >= 25
    assert len({(b.phrase, b.field) for b in BAD_INPUTS}) >= 30


def _snapshot():
    return tuple(Ranking.objects.order_by("pk").values_list("pk", "annotator_label", "ranking", "seconds"))


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_api_refuses_with_located_error(bad, loaded, api):
    before = _snapshot()
    reply = api.post("/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", bad.content)},
                     format="multipart")
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert "Nothing was written" in body["detail"]
    matching = [e for e in body["errors"] if bad.phrase in e["message"]]
    assert matching, body["errors"]
    error = matching[0]
    assert (error["line"], error["field"]) == (bad.line, bad.field)
    if bad.column is not None:
        assert error["column"] == bad.column
    assert error["text"].startswith(located(bad))
    assert _snapshot() == before


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_web_form_shows_located_error_in_place(bad, loaded, web):
    before = _snapshot()
    reply = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", bad.content)},
                     HTTP_HX_REQUEST="true")
    assert reply.status_code == 200
    page = html.unescape(reply.content.decode())
    assert "The import was refused; nothing was written." in page
    where = located(bad)
    assert re.search(re.escape(f"{where}: " if where else "") + r"[^<]*" + re.escape(bad.phrase), page), page
    assert "<html" not in page
    assert "HX-Trigger" not in reply
    assert _snapshot() == before


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: b.id)
def test_cli_refuses_with_located_error(bad, loaded, tmp_path, capsys):
    path = tmp_path / "rankings.jsonl"
    path.write_bytes(bad.content)
    before = _snapshot()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("import_rankings", "pilot", str(path))
    err = capsys.readouterr().err
    where = located(bad)
    assert (f"{path}: {where}: " if where else f"{path}: ") in err
    assert bad.phrase in err
    assert _snapshot() == before


def test_one_bad_line_among_good_ones_writes_nothing_and_lists_every_problem(loaded, api):
    content = jsonl(ranking(), ranking(item_id="p2"), ranking(item_id="p9"), ranking(item_id="p1", annotator="b",
                                                                                    seconds=-1))
    reply = api.post("/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", content)},
                     format="multipart")
    assert reply.status_code == 400
    assert [(e["line"], e["field"]) for e in reply.json()["errors"]] == [(3, "item_id"), (4, "seconds")]
    assert Ranking.objects.count() == 1


def test_error_listing_stops_at_the_limit(loaded, api, settings):
    settings.EVALSITE_MAX_REPORTED_ERRORS = 3
    content = jsonl(*[ranking(item_id=f"q{i}") for i in range(10)])
    body = api.post("/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", content)},
                    format="multipart").json()
    assert len(body["errors"]) == 3 and body["truncated"] is True
    assert "3+ problems" in body["detail"]


def test_good_import_stores_ids_keeps_ties_and_reimport_changes_nothing(study, api):
    outputs(study)
    assert study.allow_ties is False  # ties in an import are data: accepted whatever the setting
    content = jsonl(ranking(), ranking(annotator="a2", ranking=[["sysB", "sysA"], ["sysD"], ["sysC"]],
                                       display_order=None, seconds=None, attention_passed=False))
    reply = api.post("/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", content)},
                     format="multipart")
    assert reply.status_code == 201, reply.content
    assert reply.json() == {"rows": 2, "rankings_created": 2, "rankings_unchanged": 0, "annotators": 2}
    ids = dict(System.objects.values_list("name", "pk"))
    first, second = Ranking.objects.order_by("pk")
    assert first.ranking == [[ids["sysA"]], [ids["sysC"], ids["sysD"]], [ids["sysB"]]]
    assert first.display_order == [ids["sysB"], ids["sysA"], ids["sysC"], ids["sysD"]]
    assert (first.seconds, first.source, first.annotator, first.annotator_label) == (41.5, "imported", None, "a1")
    assert (second.display_order, second.seconds, second.attention_passed) == (None, None, False)

    again = api.post("/api/studies/pilot/rankings/", {"file": SimpleUploadedFile("r.jsonl", content)},
                     format="multipart")
    assert again.status_code == 200
    assert again.json() == {"rows": 2, "rankings_created": 0, "rankings_unchanged": 2, "annotators": 2}
    assert Ranking.objects.count() == 2


def test_order_within_a_tie_group_does_not_make_a_ranking_different(study):
    outputs(study)
    services.import_rankings(study, io.BytesIO(jsonl(ranking())))
    reordered = ranking(ranking=[["sysA"], ["sysD", "sysC"], ["sysB"]])
    summary = services.import_rankings(study, io.BytesIO(jsonl(reordered)))
    assert (summary.rankings_created, summary.rankings_unchanged) == (0, 1)


def test_a_file_adding_to_stored_rankings_stores_only_the_new_ones(loaded):
    summary = services.import_rankings(loaded, io.BytesIO(jsonl(
        ranking(item_id="p2", annotator="stored"), ranking(item_id="p1", annotator="new"))))
    assert (summary.rankings_created, summary.rankings_unchanged) == (1, 1)
    assert sorted(Ranking.objects.values_list("annotator_label", flat=True)) == ["new", "stored"]


def test_import_refreshes_the_leaderboard_after_commit(study, django_capture_on_commit_callbacks):
    outputs(study)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.import_rankings(study, io.BytesIO(jsonl(ranking(), ranking(annotator="a2"))))
    assert len(callbacks) == 1
    snapshot = LeaderboardSnapshot.objects.get(study=study, options="unit=annotation;exclude=attention")
    assert snapshot.rankings_count == 2
    assert snapshot.data["criteria"][0]["leaderboard"]["systems"][0]["system"] == "sysA"


def test_web_import_success_tells_the_page_to_reload_the_leaderboard(study, web):
    outputs(study)
    reply = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", jsonl(ranking()))},
                     HTTP_HX_REQUEST="true")
    assert json.loads(reply["HX-Trigger"]) == {"rankings-imported": {}}
    assert "Imported 1 ranking" in reply.content.decode()
    again = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", jsonl(ranking()))},
                     HTTP_HX_REQUEST="true")
    assert "Nothing changed" in again.content.decode() and "HX-Trigger" not in again


def test_web_import_without_htmx_redirects_to_the_leaderboard_with_a_message(study, web):
    outputs(study)
    reply = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", jsonl(ranking()))},
                     follow=True)
    assert reply.redirect_chain[-1][0] == "/studies/pilot/leaderboard/"
    assert "Imported 1 ranking from 1 annotator; 0 already stored." in reply.content.decode()
    refused = web.post("/studies/pilot/rankings/import/", {"file": SimpleUploadedFile("r.jsonl", b"nope\n")})
    assert refused.status_code == 400
    assert "line 1" in html.unescape(refused.content.decode())


def test_cli_import_reports_what_it_did(study, tmp_path, capsys):
    outputs(study)
    path = tmp_path / "r.jsonl"
    path.write_bytes(jsonl(ranking(), ranking(annotator="a2")))
    call_command("import_rankings", "pilot", str(path))
    assert "Imported 2 rankings from 2 annotators; 0 already stored." in capsys.readouterr().out
    call_command("import_rankings", "pilot", str(path))
    assert "Nothing changed: all 2 rankings were already stored." in capsys.readouterr().out
    with pytest.raises(CommandError, match="no study 'nope'"):
        call_command("import_rankings", "nope", str(path))
    with pytest.raises(CommandError, match="cannot open"):
        call_command("import_rankings", "pilot", str(tmp_path / "missing.jsonl"))


def test_only_the_studys_researchers_may_import(study, client):
    outputs(study)
    upload = {"file": SimpleUploadedFile("r.jsonl", jsonl(ranking()))}
    assert client.post("/api/studies/pilot/rankings/", upload).status_code == 401
    client.force_login(UserFactory(username="mallory"))
    assert client.post("/api/studies/pilot/rankings/", upload).status_code == 404
    assert client.post("/studies/pilot/rankings/import/", upload).status_code == 404
    assert not Ranking.objects.exists()


def test_one_ranking_is_counted_in_the_singular(study, tmp_path, capsys):
    outputs(study)
    path = tmp_path / "r.jsonl"
    path.write_bytes(jsonl(ranking()))
    call_command("import_rankings", "pilot", str(path))
    assert "Imported 1 ranking from 1 annotator; 0 already stored." in capsys.readouterr().out
    call_command("import_rankings", "pilot", str(path))
    assert "Nothing changed: the 1 ranking was already stored." in capsys.readouterr().out
