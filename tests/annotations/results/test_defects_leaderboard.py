"""Leaderboard defects found on a tour (issue 12): the public page's language switch refused by
the CSRF check, Win@1 labels drawn over the chance line, a position-bias verdict from three
rankings, and float noise in the downloads."""
import csv
import io
import json
import re

import pytest
from django.test import Client

from annotations import formatting
from annotations.results import charts
from annotations.results import services as results
from tests.factories import load_rankings, outputs, random_rankings

pytestmark = pytest.mark.django_db

ITEMS = tuple(f"p{i}" for i in range(1, 9))


@pytest.fixture
def ranked(study):
    outputs(study, items=ITEMS)
    load_rankings(study, random_rankings(ITEMS, ("rater-a", "rater-b", "rater-c"), seed=3))


# --- The public page's language switch ----------------------------------------------------------

def origin_a_browser_sends(reply, site):
    """The Origin of a form POST from this page, by the Fetch standard ("serializing a request
    origin"): "null" under the referrer policy "no-referrer", else the page's own origin."""
    return "null" if reply["Referrer-Policy"] == "no-referrer" else site


def test_the_public_leaderboard_switches_language_with_the_csrf_check_on(ranked, study):
    token = results.create_public_link(study)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(f"/public/leaderboard/{token}/")
    assert page.status_code == 200
    # Links to other sites must not carry the token; the site's own forms need an origin.
    assert page["Referrer-Policy"] == "same-origin"
    html = page.content.decode()
    assert 'action="/i18n/setlang/"' in html
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    reply = browser.post("/i18n/setlang/", {"csrfmiddlewaretoken": csrf, "language": "zh-hans",
                                            "next": f"/public/leaderboard/{token}/"},
                         HTTP_ORIGIN=origin_a_browser_sends(page, "http://testserver"))
    assert reply.status_code == 302 and reply["Location"] == f"/public/leaderboard/{token}/"
    assert '<html lang="zh-hans">' in browser.get(reply["Location"]).content.decode()


# --- Win@1 labels and the chance line -----------------------------------------------------------

def _board(values, chance):
    return {"chance_win1": chance, "systems": [
        {"system": f"system-{i}", "win1": v, "win1_ci": [max(0.0, v - 0.04), min(1.0, v + spread)]}
        for i, (v, spread) in enumerate(values)]}


@pytest.mark.parametrize("chance", [1 / 6, 0.2, 0.25, 0.5])
def test_no_win1_label_crosses_the_chance_line(chance):
    # Every interval end from 0 to 70 %, in steps finer than a label: some end just left of the
    # line, some on it, some just right of it.
    values = [(v / 200, w) for v in range(0, 120) for w in (0.0, 0.02)]
    chart = charts.win1_chart(_board(values, chance))
    line = chart["chance"]["x"]
    for row in chart["rows"]:
        # 11 px text: under 7 px a character (measured in chromium: "44.3 %" is 38.4 px wide).
        left, right = row["label_x"], row["label_x"] + 7 * len(row["label"])
        assert not left - 1 <= line <= right + 1, (row["label"], row["hi"], left, right, line)
        assert left > row["hi"], row  # and never on the whisker
        assert right <= chart["width"], row  # nor cut off at the edge


def test_labels_far_from_the_chance_line_stay_beside_their_whisker():
    chart = charts.win1_chart(_board([(0.6, 0.05), (0.02, 0.01)], 1 / 6))
    assert [row["label_x"] for row in chart["rows"]] == [row["hi"] + 6 for row in chart["rows"]]


# --- Position bias from a handful of rankings ---------------------------------------------------

def test_three_rankings_make_no_position_bias_claim(web, study):
    outputs(study, items=ITEMS)
    records = random_rankings(ITEMS[:3], ("rater-a",), seed=3)
    for record in records:  # every winner shown first
        record["display_order"] = [record["ranking"][0][0]] + [
            s for s in record["display_order"] if s != record["ranking"][0][0]]
    load_rankings(study, records)
    page = web.get("/studies/pilot/leaderboard/").content.decode()
    assert "Position bias" in page
    assert "Too few rankings to test (n = 3; needs at least 20, 5 per slot)." in page
    assert "the slot matters" not in page and "p = " not in page


def test_enough_rankings_are_tested(web, ranked):
    page = web.get("/studies/pilot/leaderboard/?exclude=none").content.decode()
    assert re.search(r"χ² = [\d.]+, df = 3, p = [\d.]+", page)  # 24 rankings of 4
    assert "Too few rankings" not in page


# --- Figures in downloads -----------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.-])-?\d+\.\d+(?:e[-+]?\d+)?(?![\w.])")


def significant_digits(text):
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


def test_rounded_removes_float_noise_and_keeps_everything_else():
    assert formatting.rounded(0.1 + 0.1 + 0.1 - 0.1) == 0.2  # 0.19999999999999998
    assert formatting.rounded(0.19999999999999996) == 0.2
    assert formatting.rounded(1106.2616998661697) == 1106.26
    assert formatting.rounded(2 * 0.5 ** 30) == 1.86265e-09
    assert formatting.rounded({"a": [0.30000000000000004, None, 3, "0.19999999999999996", True],
                               "b": (1.0, float("nan"))})["a"] == [0.3, None, 3, "0.19999999999999996", True]


@pytest.mark.parametrize("file_format", ["json", "csv", "md"])
def test_downloads_carry_at_most_six_significant_digits(web, ranked, file_format):
    for query in ("", "?unit=item"):
        body = web.get(f"/studies/pilot/leaderboard/download.{file_format}{query}").content.decode("utf-8-sig")
        if file_format == "json":
            body = re.sub(r'"computed_at": "[^"]*"', "", body)
        numbers = NUMBER.findall(body)
        assert numbers, body[:500]
        noisy = [n for n in numbers if significant_digits(n) > 6]
        assert noisy == [], noisy[:10]


def test_rounded_downloads_still_agree_with_each_other(web, ranked):
    doc = json.loads(web.get("/studies/pilot/leaderboard/download.json").content)
    rows = list(csv.DictReader(io.StringIO(
        web.get("/studies/pilot/leaderboard/download.csv").content.decode("utf-8-sig"))))
    systems = doc["criteria"]["overall"]["systems"]
    assert [float(r["win1"]) for r in rows] == [s["win1"] for s in systems]
    assert [float(r["bt_elo"]) for r in rows] == [s["bt_elo"] for s in systems]
    assert sum(s["win1"] for s in systems) == pytest.approx(1.0, abs=1e-5)
