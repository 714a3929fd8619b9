"""Command-line tools: create_study, import_outputs and the demo."""
import pytest
from django.core.management import CommandError, call_command

from annotations.results import services as results
from annotations.models import Membership, Ranking, Response, Study

pytestmark = pytest.mark.django_db


def test_create_study_from_the_command_line(researcher, tmp_path, capsys):
    instructions = tmp_path / "instructions.md"
    instructions.write_text("Rank by **warmth**.", encoding="utf-8")
    call_command("create_study", "coe", "--title", "CoE study", "--owner", "rita",
                 "--criteria", "fluency,comforting", "--responses-per-screen", "6",
                 "--instructions-file", str(instructions), "--allow-ties")
    assert "Created study 'coe' with criteria fluency, comforting." in capsys.readouterr().out
    study = Study.objects.get(slug="coe")
    assert (study.responses_per_screen, study.allow_ties, study.instructions) == (6, True, "Rank by **warmth**.")


@pytest.mark.parametrize("args,message", [
    (["x", "--title", "X", "--owner", "nobody"], "no user 'nobody'"),
    (["Bad Slug", "--title", "X", "--owner", "rita"], "slug: use lower-case letters"),
    (["x", "--title", "X", "--owner", "rita", "--criteria", ""], "criteria: give at least one criterion"),
    (["x", "--title", "X", "--owner", "rita", "--instructions-file", "/nonexistent.md"], "cannot read"),
])
def test_create_study_errors_say_what_to_fix(researcher, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_study", *args)
    assert not Study.objects.filter(slug="x").exists()


def test_import_outputs_names_a_missing_study_or_file(study, tmp_path):
    with pytest.raises(CommandError, match="no study 'nope'"):
        call_command("import_outputs", "nope", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="cannot open"):
        call_command("import_outputs", study.slug, str(tmp_path / "missing.jsonl"))


def test_demo_loads_study_and_accounts_and_is_idempotent(settings, capsys):
    settings.DEBUG = True
    call_command("demo")
    out = capsys.readouterr().out
    assert "30 posts, 5 systems (loaded)" in out
    assert "researcher  researcher / researcher-demo" in out
    assert "annotator   annotator / annotator-demo" in out
    study = Study.objects.get(slug="empathy-demo")
    assert study.status == "open"
    assert Response.objects.filter(item__study=study).count() == 150
    assert Response.objects.filter(item__study=study).exclude(reasoning="").count() == 90
    assert study.items.filter(metadata__language="zh").count() == 6
    assert set(study.memberships.values_list("user__username", "role")) == {
        ("researcher", Membership.Role.RESEARCHER), ("annotator", Membership.Role.ANNOTATOR)}
    assert all(s.description for s in study.systems.all())
    assert "Demo rankings: 240 by 4 raters (imported)." in out
    board = results.fresh(study).data
    assert [c["name"] for c in board["criteria"]] == ["overall", "comforting"]
    for criterion in board["criteria"]:
        systems = criterion["leaderboard"]["systems"]
        assert len(systems) == 5 and all(s["n"] == 120 for s in systems)
        assert systems[0]["system"] == "empathy-r1-style" and systems[-1]["system"] == "short-baseline"
    call_command("demo")
    out = capsys.readouterr().out
    assert "(already loaded)" in out and "Demo rankings: 240 by 4 raters (already imported)." in out
    assert Response.objects.filter(item__study=study).count() == 150
    assert Ranking.objects.filter(study=study).count() == 240


def test_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("demo")
