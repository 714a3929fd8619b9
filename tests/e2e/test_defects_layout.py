"""Defects a tour in a real browser found (issue 12), checked in Debian's chromium: the public
leaderboard's language switch, the leaderboards on a 390 px phone with a realistic study, Win@1
labels against the chance line, the "Allow ties" checkbox beside its label, and the favicon."""
import pytest
from django.contrib.auth import get_user_model

from annotations.results import services as results
from tests.e2e.test_ranking_browser import (  # noqa: F401 - fixtures, shared with the ranking tests
    PHONE, _orm_beside_playwright, browser, playwright_api, site,
)
from tests.factories import StudyFactory, load_rankings, outputs, random_rankings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Six systems named as researchers name them, four criteria of long counselling texts, 20 raters.
SYSTEMS = ("Empathy-R1 (Qwen2.5-7B-Instruct)", "GPT-4o · chain of empathy (CBT)", "Llama-3.1-8B-Instruct",
           "DeepSeek-R1-Distill-Qwen-7B", "Qwen2.5-7B-Instruct · direct", "人类咨询师 (human counsellor)")
CRITERIA = ("fluency", "identification", "comforting", "suggestion")


def log_in(page, site, username="researcher", password="researcher-demo"):
    page.goto(f"{site}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site}/")


@pytest.fixture
def realistic(site):
    owner = get_user_model().objects.get(username="researcher")
    study = StudyFactory(owner=owner, slug="long-texts", criteria=CRITERIA, responses_per_screen=6,
                         title="Replies to long counselling posts (six systems, four criteria)")
    items = tuple(f"post-{i:03d}" for i in range(20))
    outputs(study, items=items, systems=SYSTEMS)
    load_rankings(study, random_rankings(items, tuple(f"rater-{i:02d}" for i in range(20)), systems=SYSTEMS,
                                         criteria=CRITERIA, seed=12))
    results.fresh(study)  # computed before the page asks, as a worker would have
    results.create_public_link(study)
    study.refresh_from_db()
    return study


def widths(page):
    return page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")


def sticking_out(page):
    """What reaches past the right edge (outside the boxes that scroll on their own), for the message."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')].filter(n =>
        n.getBoundingClientRect().right > window.innerWidth + 1 && !n.parentElement.closest('.table-wrap, .table-scroll'))
        .slice(0, 8).map(n => n.tagName.toLowerCase() + '.' + n.className + ' ' + Math.round(n.getBoundingClientRect().right))""")


def labels_crossing_the_chance_line(page):
    """Each Win@1 chart's value labels whose drawn box covers the dashed chance line."""
    return page.evaluate("""() => [...document.querySelectorAll('.chart svg')].flatMap(svg => {
        const line = svg.querySelector('line[stroke-dasharray="5 4"]');
        if (!line) { return []; }
        const x = parseFloat(line.getAttribute('x1'));
        return [...svg.querySelectorAll('text.value')].map(t => t.getBBox())
            .filter(b => b.x - 1 <= x && x <= b.x + b.width + 1).map(b => [b.x, b.width, x]);
    })""")


def test_the_leaderboards_fit_a_390_px_phone(browser, site, realistic):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    page = context.new_page()
    log_in(page, site)
    for path in (f"/studies/{realistic.slug}/leaderboard/", f"/public/leaderboard/{realistic.public_token}/"):
        page.goto(f"{site}{path}")
        page.wait_for_selector("table.leaderboard")
        assert page.locator("table.leaderboard").count() == len(CRITERIA)
        assert widths(page) == [PHONE["width"], PHONE["width"]], (path, sticking_out(page))
        # The wide table scrolls in its own box, which a keyboard can reach.
        wrap = page.locator(".table-wrap").first
        assert wrap.evaluate("n => n.scrollWidth > n.clientWidth") and wrap.get_attribute("tabindex") == "0"
        assert labels_crossing_the_chance_line(page) == [], path
    context.close()


def test_the_study_page_and_an_item_preview_fit_a_390_px_phone(browser, site, realistic):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="en-GB")
    page = context.new_page()
    log_in(page, site)
    for path in (f"/studies/{realistic.slug}/", f"/studies/{realistic.slug}/items/post-000/"):
        page.goto(f"{site}{path}")
        page.wait_for_selector("h1")
        assert widths(page) == [PHONE["width"], PHONE["width"]], (path, sticking_out(page))
    context.close()


def test_the_public_leaderboards_language_switch_works(browser, site, realistic):
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{site}/public/leaderboard/{realistic.public_token}/")
    with page.expect_navigation() as navigation:
        page.click(".lang-switch button[value=zh-hans]")
    assert navigation.value.status == 200  # was 403: "Origin checking failed - null"
    assert page.url == f"{site}/public/leaderboard/{realistic.public_token}/"
    assert page.evaluate("() => document.documentElement.lang") == "zh-hans"
    context.close()


def test_a_checkbox_sits_beside_its_label(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, site)
    for path in ("/studies/new/", "/studies/empathy-demo/edit/"):
        page.goto(f"{site}{path}")
        box = page.locator("input[name=allow_ties]").bounding_box()
        text = page.get_by_text("Allow ties", exact=True).bounding_box()
        assert abs((box["y"] + box["height"] / 2) - (text["y"] + text["height"] / 2)) < 4, (path, box, text)
        assert 0 <= text["x"] - (box["x"] + box["width"]) < 16, (path, box, text)
        before = page.locator("input[name=allow_ties]").is_checked()
        page.get_by_text("Allow ties", exact=True).click()  # the label ticks its own box
        assert page.locator("input[name=allow_ties]").is_checked() != before
    context.close()


def test_the_favicon_is_linked_and_served(browser, site):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site}/login/")
    icons = page.evaluate("() => [...document.querySelectorAll('link[rel=icon]')].map(l => l.href)")
    assert icons
    for url in icons + [f"{site}/favicon.ico"]:
        reply = page.request.get(url)
        assert reply.status == 200 and reply.headers["content-type"].startswith("image/"), url
    context.close()
