"""The leaderboard: who may see it, that it shows what metrics computes, its cache and refresh,
the public link, export -> import reproducing it, and every download format opening."""
import csv
import io
import json
import re
import shutil
import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from annotations import formatting, metrics
from annotations.results import exports, figures, selectors, tasks
from annotations.results import services as results
from annotations.studies import services
from annotations.models import LeaderboardSnapshot, Membership, Ranking
from tests.factories import SYSTEMS, UserFactory, load_rankings, outputs, random_rankings

pytestmark = pytest.mark.django_db

ITEMS = tuple(f"p{i}" for i in range(1, 9))
RATERS = ("rater-a", "rater-b", "rater-c")


@pytest.fixture
def ranked(study):
    """8 items, 4 systems, 3 annotators; rater-c failed one of two attention checks."""
    outputs(study, items=ITEMS)
    records = random_rankings(ITEMS, RATERS, seed=3)
    checked = [r for r in records if r["annotator"] == "rater-c"][:2]
    checked[0]["attention_passed"], checked[1]["attention_passed"] = True, False
    records[0]["attention_passed"] = True  # rater-a passed theirs
    load_rankings(study, records)
    return records


def expected(records, unit="annotation", exclude=("rater-c",)):
    annotations = [metrics.Annotation.from_record(r) for r in records]
    return metrics.leaderboard(annotations, sorted(SYSTEMS), unit=unit, rounds=figures.ROUNDS,
                               seed=figures.SEED, exclude=exclude)


def table_rows(page):
    body = page.split('<table class="table leaderboard">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)


def pct(value):
    return f"{value * 100:.1f} %"


# --- Access ---------------------------------------------------------------------------------------

PAGES = ["/studies/pilot/leaderboard/", "/studies/pilot/leaderboard/download.csv",
         "/studies/pilot/rankings/export/"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_log_in(client, ranked, url):
    reply = client.get(url)
    assert reply.status_code == 302 and reply["Location"].startswith("/login/")
    assert client.post("/studies/pilot/leaderboard/public-link/")["Location"].startswith("/login/")


@pytest.mark.parametrize("role", ["stranger", "annotator"])
def test_other_researchers_and_the_studys_annotators_get_404(client, ranked, study, role):
    user = UserFactory(username=f"{role}-user")
    if role == "annotator":
        services.add_member(study, user, Membership.Role.ANNOTATOR)
    client.force_login(user)
    for url in PAGES:
        assert client.get(url).status_code == 404, url
    assert client.post("/studies/pilot/leaderboard/public-link/", {"action": "create"}).status_code == 404
    assert client.get("/api/studies/pilot/leaderboard/").status_code == 404
    assert client.get("/api/studies/pilot/rankings/export").status_code == 404
    study.refresh_from_db()
    assert study.public_token is None


def test_api_needs_authentication(client, ranked):
    assert client.get("/api/studies/pilot/leaderboard/").status_code == 401
    assert client.get("/api/studies/pilot/rankings/export").status_code == 401


def test_study_page_links_to_the_leaderboard(web, study):
    assert 'href="/studies/pilot/leaderboard/"' in web.get("/studies/pilot/").content.decode()


# --- What the page shows --------------------------------------------------------------------------

def test_page_shows_the_figures_that_metrics_computes(web, ranked):
    want = expected(ranked)
    page = web.get("/studies/pilot/leaderboard/").content.decode()
    rows = table_rows(page)
    assert len(rows) == len(SYSTEMS)
    for row, s in zip(rows, want["systems"]):
        cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).split()
        assert cells[0] == str(s["rank"]) and cells[1] == s["system"]
        text = " ".join(cells)
        assert pct(s["win1"]) in text
        assert f"{s['win1_ci'][0] * 100:.1f}–{s['win1_ci'][1] * 100:.1f}" in text
        assert f"{s['mean_rank']:.2f}" in text and f"{s['bt_elo']:.0f}" in text
        assert s["group"] in cells and str(s["n"]) == cells[-1]
    assert 'Unit: <strong>per annotation</strong>' in page
    chance = page.split('<aside class="chance"', 1)[1]
    assert pct(want["chance_win1"]) in chance.split("</aside>")[0]
    flat = " ".join(page.split())
    assert f"{want['n_annotations']} annotations of 8 items by 2 annotators" in flat
    assert "1 annotator left out for failing attention checks" in flat
    for group in want["pairwise"]["groups"]:
        if len(group) > 1:
            assert " · ".join(f"<code>{name}</code>" for name in group) in page
    for picture in ("Win@1</strong> with 95 % intervals", "Rank distribution", "Pairwise win rate",
                    "Kendall's W", "Krippendorff's α", "Top-1 agreement", "Position bias"):
        assert picture in page
    assert page.count("<svg") >= 6
    assert "rater-a" in page  # researchers see who their annotators are


def test_unit_and_exclusion_controls_change_the_figures(web, ranked):
    page = web.get("/studies/pilot/leaderboard/?unit=item&exclude=none").content.decode()
    want = expected(ranked, unit="item", exclude=())
    assert 'Unit: <strong>per item</strong>' in page
    flat = " ".join(page.split())
    assert f"{want['n_annotations']} annotations of 8 items by 3 annotators" in flat
    for row, s in zip(table_rows(page), want["systems"]):
        assert f"<code class=\"system\">{s['system']}</code>" in row and pct(s["win1"]) in row
    assert "1 annotator who failed attention checks included" in flat
    partial = web.get("/studies/pilot/leaderboard/?unit=item", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'id="leaderboard-body"' in partial
    assert "download.csv?unit=item&amp;exclude=attention" in partial


def test_empty_state_explains_where_rankings_come_from(web, study):
    outputs(study)
    page = " ".join(web.get("/studies/pilot/leaderboard/").content.decode().split())
    assert "No rankings yet, so there is no leaderboard." in page
    assert "python manage.py import_rankings pilot FILE" in page
    assert "invite annotators" in page
    assert not LeaderboardSnapshot.objects.exists()


def test_a_criterion_without_rankings_says_so(web, researcher):
    study = services.create_study(owner=researcher, slug="two", title="Two", criteria=["overall", "comforting"])
    outputs(study)
    load_rankings(study, random_rankings(("p1", "p2"), ("x", "y")))
    page = web.get("/studies/two/leaderboard/").content.decode()
    assert "No rankings under this criterion yet" in page
    assert page.count('<table class="table leaderboard">') == 1


# --- Cache and refresh ----------------------------------------------------------------------------

def test_new_ranking_makes_the_snapshot_stale_and_the_task_refreshes_it(web, ranked, study, monkeypatch,
                                                                           django_capture_on_commit_callbacks):
    web.get("/studies/pilot/leaderboard/")
    snapshot = LeaderboardSnapshot.objects.get(study=study)
    n = Ranking.objects.count()
    assert snapshot.rankings_count == n
    with django_capture_on_commit_callbacks() as enqueued:
        load_rankings(study, random_rankings(("p1",), ("late-rater",), seed=9))
    assert len(enqueued) == 1  # the import enqueues a refresh once it commits

    def no_waiting(*args, **kwargs):
        raise AssertionError("the page computed the leaderboard while a snapshot existed")

    monkeypatch.setattr(results, "compute", no_waiting)
    with django_capture_on_commit_callbacks() as polled:
        page = web.get("/studies/pilot/leaderboard/").content.decode()
    assert f"from {n} rankings" in page and f"refreshing: {n + 1} rankings now" in page
    assert 'hx-trigger="load delay:2s' in page  # htmx polls for the fresh one
    assert len(polled) == 1
    with django_capture_on_commit_callbacks() as polled_again:
        web.get("/studies/pilot/leaderboard/", HTTP_HX_REQUEST="true")
    assert polled_again == []  # one refresh per change, not one per poll
    monkeypatch.undo()

    tasks.refresh_leaderboard(study.pk)
    snapshot.refresh_from_db()
    assert snapshot.rankings_count == n + 1
    fresh = web.get("/studies/pilot/leaderboard/", HTTP_HX_REQUEST="true").content.decode()
    assert "refreshing" not in fresh and "load delay" not in fresh and f"from {n + 1} rankings" in fresh


def test_refresh_task_leaves_a_fresh_snapshot_alone_unless_forced(ranked, study):
    snapshot = results.fresh(study)
    computed_at = snapshot.computed_at
    tasks.refresh_leaderboard(study.pk)
    snapshot.refresh_from_db()
    assert snapshot.computed_at == computed_at
    # Rescoring attention checks changes no count: only a forced refresh sees it.
    Ranking.objects.filter(annotator_label="rater-c").update(attention_passed=True)
    tasks.refresh_leaderboard(study.pk, force=True)
    snapshot.refresh_from_db()
    assert snapshot.computed_at > computed_at
    assert snapshot.data["excluded_annotators"] == []


def test_a_large_study_without_snapshot_shows_progress_then_the_leaderboard(web, ranked, study, monkeypatch,
                                                                              django_capture_on_commit_callbacks):
    monkeypatch.setattr(results, "COMPUTE_INLINE_MAX", 10)
    with django_capture_on_commit_callbacks(execute=True):
        page = web.get("/studies/pilot/leaderboard/").content.decode()
    assert "Computing the leaderboard from" in page and 'hx-trigger="load delay:2s' in page
    assert LeaderboardSnapshot.objects.filter(study=study).exists()  # the task ran after the request
    partial = web.get("/studies/pilot/leaderboard/", HTTP_HX_REQUEST="true").content.decode()
    assert '<table class="table leaderboard">' in partial and "load delay" not in partial


def test_loading_rankings_takes_two_queries_however_many_there_are(ranked, study, django_assert_num_queries):
    with django_assert_num_queries(2):
        by_criterion, labels, count, last = selectors.load_annotations(study)
    assert count == len(ranked) and labels == list(RATERS)
    first = by_criterion[study.criteria.get().pk][0]
    assert first == metrics.Annotation.from_record(ranked[0])


# --- Public link ----------------------------------------------------------------------------------

def test_public_link_shows_the_leaderboard_without_annotators_and_can_be_revoked(web, ranked, study):
    web.post("/studies/pilot/leaderboard/public-link/", {"action": "create"})
    study.refresh_from_db()
    token = study.public_token
    assert token and len(token) >= 40
    assert f"/public/leaderboard/{token}/" in web.get("/studies/pilot/leaderboard/").content.decode()
    assert results.create_public_link(study) == token  # creating again keeps the link

    anonymous = Client()
    reply = anonymous.get(f"/public/leaderboard/{token}/")
    assert reply.status_code == 200
    page = reply.content.decode()
    want = expected(ranked)
    assert pct(want["systems"][0]["win1"]) in page and want["systems"][0]["system"] in page
    for hidden in ("rater-", "Annotators (", "Import rankings", "Download", "Public link", 'name="unit"'):
        assert hidden not in page, hidden
    # The secret link never leaves the site in a Referer, yet the page's own forms keep their origin.
    assert reply["Referrer-Policy"] == "same-origin"

    web.post("/studies/pilot/leaderboard/public-link/", {"action": "revoke"})
    assert anonymous.get(f"/public/leaderboard/{token}/").status_code == 404
    assert anonymous.get("/public/leaderboard/not-a-token/").status_code == 404


# --- Export -> import -----------------------------------------------------------------------------

def test_export_then_import_into_a_new_study_reproduces_the_leaderboard(api, researcher, ranked, study):
    ranked_without_order = random_rankings(("p7", "p8"), ("rater-d",), seed=5)
    for record in ranked_without_order:
        del record["display_order"]
    load_rankings(study, ranked_without_order)

    export = api.get("/api/studies/pilot/rankings/export")
    assert export.status_code == 200 and export["Content-Type"].startswith("application/x-ndjson")
    body = export.getvalue()
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == Ranking.objects.count()
    assert {line["annotator"] for line in lines} == {"annotator-1", "annotator-2", "annotator-3", "annotator-4"}
    assert b"rater-" not in body  # pseudonymised
    assert api.get("/api/studies/pilot/rankings/export/").getvalue() == body

    copy = services.create_study(owner=researcher, slug="copy", title="Copy")
    outputs(copy, items=ITEMS)
    imported = api.post("/api/studies/copy/rankings/", {"file": SimpleUploadedFile("r.jsonl", body)},
                        format="multipart")
    assert imported.status_code == 201, imported.content
    assert api.get("/api/studies/copy/rankings/export").getvalue() == body

    for query in ("", "?unit=item", "?exclude=none", "?unit=item&exclude=none"):
        original = api.get(f"/api/studies/pilot/leaderboard/{query}").json()
        reproduced = api.get(f"/api/studies/copy/leaderboard/{query}").json()
        for doc in (original, reproduced):
            del doc["study"], doc["computed_at"]
        assert reproduced == original, query
        assert original["criteria"]["overall"]["n_annotations"] > 0


# --- Downloads ------------------------------------------------------------------------------------

SYSTEM_KEYS = {"system", "n", "win1", "win1_ci", "strict_win1", "win_at", "mean_rank", "mean_rank_ci", "bt_elo",
               "bt_elo_ci", "rank_ci"}
CRITERION_KEYS = {"systems", "unit", "seed", "bootstrap_rounds", "chance_win1", "pairwise", "agreement",
                  "position_bias"}


def _fraction(value):
    return value is None or 0.0 <= value <= 1.0


def test_json_download_holds_the_documented_keys_with_fractions(api, ranked):
    reply = api.get("/api/studies/pilot/leaderboard/?format=json&unit=item")
    assert reply["Content-Type"] == "application/json"
    doc = reply.json()
    assert (doc["unit"], doc["seed"], doc["bootstrap_rounds"]) == ("item", figures.SEED, 1000)
    assert doc["excluded_annotators"] == ["annotator-3"]
    board = doc["criteria"]["overall"]
    assert CRITERION_KEYS <= board.keys() and board["unit"] == "item"
    assert [s["system"] for s in board["systems"]] == [s["system"] for s in expected(ranked, "item")["systems"]]
    for s in board["systems"]:
        assert SYSTEM_KEYS <= s.keys()
        assert len(s["win1_ci"]) == 2 and len(s["bt_elo_ci"]) == 2 and len(s["rank_ci"]) == 2
        assert all(_fraction(v) for v in [s["win1"], s["strict_win1"], *s["win1_ci"], *s["win_at"].values()])
    assert all(_fraction(v) for row in board["pairwise"]["win_rate"] for v in row)
    assert _fraction(board["chance_win1"]) and _fraction(board["agreement"]["top1_agreement"])
    assert all(_fraction(slot["share"]) for slot in board["position_bias"]["slots"])
    assert {a["annotator"] for a in board["annotators"]} == {"annotator-1", "annotator-2", "annotator-3"}


def _parse_csv(body):
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_csv_download_parses_with_numbers_as_numbers(web, ranked):
    reply = web.get("/studies/pilot/leaderboard/download.csv?unit=item")
    assert reply["Content-Disposition"] == 'attachment; filename="pilot-leaderboard-item.csv"'
    rows = _parse_csv(reply.content)
    want = expected(ranked, "item")["systems"]
    assert [r["system"] for r in rows] == [s["system"] for s in want]
    for row, s in zip(rows, want):
        # Downloads carry 6 significant digits.
        assert float(row["win1"]) == pytest.approx(s["win1"], rel=1e-5)
        assert float(row["win1_low"]) == pytest.approx(s["win1_ci"][0], rel=1e-5)
        assert float(row["bt_elo"]) == pytest.approx(s["bt_elo"], rel=1e-5)
        assert row["unit"] == "item" and row["criterion"] == "overall"
        assert float(row["win_at_4"]) == pytest.approx(1.0)


def test_csv_neutralises_formulas_in_text_but_keeps_negative_numbers(researcher, api):
    assert formatting.csv_cell(-0.3) == "-0.3"
    assert formatting.csv_cell("-0.3") == "'-0.3"
    assert formatting.csv_cell("=1+2") == "'=1+2"
    study = services.create_study(owner=researcher, slug="evil", title="Evil")
    names = ("=HYPERLINK(\"http://x\")", "+cmd", "-2", "@SUM(A1)", "plain")
    outputs(study, items=("p1", "p2"), systems=names)
    load_rankings(study, [{"item_id": item, "annotator": a, "criterion": "overall",
                           "ranking": [[n] for n in names]} for item in ("p1", "p2") for a in ("x", "y")])
    rows = _parse_csv(api.get("/api/studies/evil/leaderboard/?format=csv").content)
    assert sorted(r["system"] for r in rows) == sorted(["'" + n if n != "plain" else n for n in names])
    for row in rows:
        float(row["win1"]), float(row["mean_rank"]), float(row["bt_elo"])  # numbers stay numbers
    elo = {r["system"]: float(r["bt_elo"]) for r in rows}
    assert elo["'=HYPERLINK(\"http://x\")"] > elo["plain"]


def test_markdown_download_is_a_table_with_its_header(api, ranked):
    reply = api.get("/api/studies/pilot/leaderboard/?format=md")
    assert reply["Content-Type"].startswith("text/markdown")
    text = reply.content.decode()
    header = ("| Rank | System | Win@1 % (95 % CI) | Strict Win@1 % | Mean rank (95 % CI) | Bradley-Terry Elo "
              "(95 % CI) | Rank range | Group | n |")
    assert header in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "Rank |" not in line]
    assert len(rows) == len(SYSTEMS)
    assert all(line.count(" | ") == header.count(" | ") for line in rows)
    assert "Unit: per annotation" in text and f"seed {figures.SEED}" in text


def _balanced(tex):
    body = re.sub(r"\\[{}%&#$_]", "", tex)
    body = "\n".join(line.split("%", 1)[0] for line in body.splitlines())  # comments
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", body):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack.pop() == env
    assert stack == []


def test_latex_download_escapes_names_and_balances(researcher, api, tmp_path):
    study = services.create_study(owner=researcher, slug="tex", title="50% & more_#1")
    names = ("sys_a", "b&c", "100%", "#d", "x{y}")
    outputs(study, items=("p1", "p2"), systems=names)
    load_rankings(study, [{"item_id": item, "annotator": a, "criterion": "overall",
                           "ranking": [[n] for n in names]} for item in ("p1", "p2") for a in ("x", "y")])
    reply = api.get("/api/studies/tex/leaderboard/?format=tex")
    assert reply["Content-Type"].startswith("application/x-tex")
    tex = reply.content.decode()
    _balanced(tex)
    for escaped in (r"sys\_a", r"b\&c", r"100\%", r"\#d", r"x\{y\}"):
        assert escaped in tex
    assert all(cmd in tex for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}"))
    if shutil.which("pdflatex"):  # compile it too where a TeX installation exists
        doc = tmp_path / "t.tex"
        doc.write_text("\\documentclass{article}\\usepackage[utf8]{inputenc}\\usepackage{booktabs}"
                       "\\begin{document}" + tex + "\\end{document}", encoding="utf-8")
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                       check=True, capture_output=True, timeout=120)


def test_api_refuses_an_unknown_format(api, ranked):
    reply = api.get("/api/studies/pilot/leaderboard/?format=xlsx")
    assert reply.status_code == 400 and "use json, csv, md or tex" in reply.content.decode()


@pytest.mark.parametrize("file_format", ["json", "csv", "md", "tex"])
def test_page_downloads_every_format(web, ranked, file_format):
    reply = web.get(f"/studies/pilot/leaderboard/download.{file_format}")
    assert reply.status_code == 200
    assert reply["Content-Disposition"] == f'attachment; filename="pilot-leaderboard-annotation.{file_format}"'
    assert reply.content.strip()
    assert web.get("/studies/pilot/leaderboard/download.xlsx").status_code == 404


def test_cli_exports_the_leaderboard_to_a_file_or_stdout(ranked, tmp_path, capsys):
    path = tmp_path / "board.tex"
    call_command("export_leaderboard", "pilot", "--format", "tex", "-o", str(path))
    assert f"Wrote the tex leaderboard of 'pilot' to {path}." in capsys.readouterr().err
    _balanced(path.read_text(encoding="utf-8"))
    call_command("export_leaderboard", "pilot", "--format", "json", "--unit", "item", "--include-all")
    doc = json.loads(capsys.readouterr().out)
    assert doc["unit"] == "item" and doc["exclude_failed_attention"] is False
    assert doc["criteria"]["overall"]["n_annotations"] == len(ranked)
    with pytest.raises(CommandError, match="no study 'nope'"):
        call_command("export_leaderboard", "nope")


def test_cli_exports_rankings_that_import_back(ranked, study, researcher, tmp_path, capsys):
    path = tmp_path / "rankings.jsonl"
    call_command("export_rankings", "pilot", "-o", str(path))
    assert f"Wrote {len(ranked)} rankings" in capsys.readouterr().err
    copy = services.create_study(owner=researcher, slug="copy2", title="Copy")
    outputs(copy, items=ITEMS)
    call_command("import_rankings", "copy2", str(path))
    assert Ranking.objects.filter(study=copy).count() == len(ranked)
    assert set(Ranking.objects.filter(study=copy).values_list("annotator_label", flat=True)) == {
        "annotator-1", "annotator-2", "annotator-3"}


def test_export_of_an_empty_study_is_empty_and_its_leaderboard_defined(api, study):
    outputs(study)
    assert api.get("/api/studies/pilot/rankings/export").getvalue() == b""
    doc = api.get("/api/studies/pilot/leaderboard/").json()
    assert doc["rankings_count"] == 0
    assert all(s["win1"] is None for s in doc["criteria"]["overall"]["systems"])


def test_import_with_a_file_from_a_different_study_names_the_missing_items(api, researcher, ranked):
    other = services.create_study(owner=researcher, slug="other", title="Other")
    outputs(other, items=("p1",))
    body = api.get("/api/studies/pilot/rankings/export").getvalue()
    reply = api.post("/api/studies/other/rankings/", {"file": SimpleUploadedFile("r.jsonl", body)},
                     format="multipart")
    assert reply.status_code == 400
    assert any("no item 'p2' in study 'other'" in e["message"] for e in reply.json()["errors"])
    assert not Ranking.objects.filter(study=other).exists()


def test_an_empty_studys_leaderboard_shows_its_chance_level(web, study):
    outputs(study)  # 4 systems, 4 responses per screen: chance Win@1 is 1/4
    page = " ".join(web.get("/studies/pilot/leaderboard/").content.decode().split())
    assert "No rankings yet" in page
    assert "Chance level of Win@1: <strong>25.0 %</strong>" in page
    assert "With 4 systems and 4 responses per screen" in page


def test_a_study_without_two_systems_has_no_chance_level_yet(web, study):
    page = web.get("/studies/pilot/leaderboard/").content.decode()
    assert "No rankings yet" in page and "Chance level" not in page
