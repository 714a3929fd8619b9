"""The study designer: its page shows the grid and the recommendation from metrics.design_grid, bad
inputs are refused field by field (never a 500), its button carries the chosen cell into the
new-study form, and POST /api/design/ answers the same grid with its method named."""
import re

import pytest
from django.core.cache import cache

from annotations import metrics
from annotations.formatting import percent
from annotations.studies import designer

pytestmark = pytest.mark.django_db

SMALL = {"n_systems": 4, "responses_per_screen": 4, "criteria": 1, "best_win1": 50, "next_win1": 25,
         "tie_rate": 0, "reliability_sd": 0.5, "seconds_per_screen": 60, "target": 80, "alpha": 0.05,
         "items": "20, 60", "per_item": "1, 3"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def grid(**overrides):
    values = {**SMALL, **overrides}
    return metrics.design_grid(
        [values["best_win1"] / 100, values["next_win1"] / 100], values["n_systems"], values["responses_per_screen"],
        items=[int(v) for v in values["items"].split(",")], per_item=[int(v) for v in values["per_item"].split(",")],
        tie_rate=values["tie_rate"] / 100, reliability_sd=values["reliability_sd"],
        seconds_per_screen=values["seconds_per_screen"], alpha=values["alpha"], target=values["target"] / 100,
        n_studies=designer.SIMULATED_STUDIES, seed=designer.SEED)


def test_the_page_starts_from_the_empathy_r1_setting_without_simulating(web):
    page = web.get("/studies/design/").content.decode()
    assert 'name="best_win1"' in page and 'value="44.3"' in page and 'value="16.3"' in page
    assert "Annotator reliability spread" in page and "decisive" in page
    assert "design-grid" not in page


def test_the_page_shows_the_grid_the_recommendation_and_a_plot(web):
    expected = grid()
    rec = expected["recommended"]
    assert rec is not None
    reply = web.get("/studies/design/", SMALL)
    page = reply.content.decode()
    assert reply.status_code == 200
    for cell in expected["cells"]:
        assert f"<strong>{percent(cell['p_separated'])}</strong>" in page
        assert f"{cell['rankings']} screens · {cell['hours']:.1f} h" in page
    recommended = re.findall(r'<td class="num cell recommended[^"]*">(.*?)</td>', page, re.S)
    assert len(recommended) == 1 and f"{rec['rankings']} screens" in recommended[0]
    assert (f"The cheapest design that reaches 80 % is {rec['items']} items with {rec['per_item']} "
            f"annotation{'s' if rec['per_item'] != 1 else ''} each") in page
    assert "<svg" in page and "<polyline" in page and "style=" not in page.split("<svg", 1)[1].split("</svg>")[0]
    assert "Create a study with these settings" in page


def test_the_create_button_carries_the_cell_into_the_new_study_form(web):
    rec = grid()["recommended"]
    page = web.get("/studies/design/", SMALL).content.decode()
    link = re.search(r'<a class="button primary" href="([^"]+)">Create a study with these settings', page).group(1)
    link = link.replace("&amp;", "&")
    assert link.startswith("/studies/new/?")
    form = web.get(link).content.decode()
    assert re.search(r'name="responses_per_screen" value="4"', form)
    assert re.search(rf'name="annotations_per_item" value="{rec["per_item"]}"', form)
    assert f"<strong>{rec['items']} items</strong> to upload" in form


def test_the_new_study_form_links_to_the_designer_and_ignores_junk_in_the_query(web):
    form = web.get("/studies/new/?responses_per_screen=99&annotations_per_item=x").content.decode()
    assert 'href="/studies/design/"' in form
    assert 'name="responses_per_screen" value="4"' in form  # the default, not 99


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"responses_per_screen": 5}, "responses_per_screen", "at most the number of systems"),
    ({"next_win1": 60}, "next_win1", "must be below the best"),
    ({"n_systems": 6, "best_win1": 30, "next_win1": 5}, "next_win1", "more than the runner-up"),
    ({"items": "10, ten"}, "items", "whole numbers"),
    ({"items": "5000"}, "items", "between 5 and 2000"),
    ({"per_item": "1,2,3,4,5,6"}, "per_item", "at most 5"),
    ({"alpha": 0.5}, "alpha", "less than or equal to 0.2"),
    ({"n_systems": 12, "responses_per_screen": 6}, "responses_per_screen", "different screens"),
    ({"n_systems": 12, "responses_per_screen": 12, "best_win1": 20, "next_win1": 10,
      "items": "1000,1500,2000", "per_item": "10,15,20"}, "items", "too large"),
    ({"tie_rate": ""}, "tie_rate", "required"),
])
def test_bad_inputs_are_refused_at_their_field(web, api, change, field, words):
    reply = web.get("/studies/design/", {**SMALL, **change})
    assert reply.status_code == 400
    page = reply.content.decode()
    block = page.split(f'name="{field}"', 1)[1].split('<div class="field', 1)[0]
    assert words in block, block
    if field != "tie_rate":
        body = {**SMALL, **change}
        for name in ("items", "per_item"):
            body[name] = [int(v) if v.strip().isdigit() else v for v in str(body[name]).split(",")]
        answer = api.post("/api/design/", body, format="json")
        assert answer.status_code == 400 and field in answer.json()


def test_an_effect_the_model_cannot_give_is_refused_at_the_best_systems_win1(web, api):
    impossible = {**SMALL, "n_systems": 6, "responses_per_screen": 6, "best_win1": 44.3, "next_win1": 16.3,
                  "tie_rate": 20, "reliability_sd": 1.0}
    reply = web.get("/studies/design/", impossible)
    assert reply.status_code == 400
    block = reply.content.decode().split('name="best_win1"', 1)[1].split('<div class="field', 1)[0]
    assert "no system strengths give these Win@1 values" in block
    answer = api.post("/api/design/", {**impossible, "items": [20, 60], "per_item": [1, 3]}, format="json")
    assert answer.status_code == 400 and "tie rate" in answer.json()["best_win1"][0]


def test_the_api_returns_the_grid_with_its_method(api):
    body = {**SMALL, "items": [20, 60], "per_item": [1, 3]}
    answer = api.post("/api/design/", body, format="json")
    assert answer.status_code == 200
    data = answer.json()
    expected = grid()
    assert "leaderboard does" in data["method"]
    assert [c["p_separated"] for c in data["cells"]] == [c["p_separated"] for c in expected["cells"]]
    assert data["recommended"] == expected["recommended"]
    assert data["explanation"] and data["n_studies"] == designer.SIMULATED_STUDIES


def test_the_api_needs_a_login_and_is_documented(client, api):
    assert client.post("/api/design/", {}, content_type="application/json").status_code in (401, 403)
    schema = api.get("/api/schema/").content.decode()
    assert "/api/design/" in schema and "DesignGrid" in schema
