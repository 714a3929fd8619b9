"""The Content-Security-Policy in a real browser (Debian's chromium through Playwright): every
page a researcher or an annotator reaches loads with no policy violation and no console error,
the pieces moved out of inline attributes (bar widths, chart label colours, the public link
field) still work, and the ranking screen still ranks by mouse and keyboard under the policy."""
import pytest

from annotations.annotating import services as annotating_services
from annotations.models import Item, Ranking, Study
from tests.e2e.test_ranking_browser import (  # noqa: F401 - fixtures, shared with the ranking tests
    _orm_beside_playwright, browser, playwright_api, site,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts: records each violation the page reports.
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                          " at " + (e.sourceFile || location.pathname) + ":" + e.lineNumber);
});
"""


class Watched:
    """A browser context whose pages report CSP violations, console errors and script errors."""

    def __init__(self, browser, site):
        self.site = site
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.problems = []
        self.page.on("console", self.console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"script: {exc}"))

    def console(self, message):
        # The browser asks for /favicon.ico on its own; the site has none, and that is no error of a page.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.problems.append(f"console: {message.text} ({message.location.get('url')})")

    def visit(self, path, ready="main", blocked_on_purpose=None):
        reply = self.page.goto(f"{self.site}{path}")
        assert reply.status < 400, (path, reply.status)
        policy = reply.header_value("content-security-policy") or ""
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        self.page.wait_for_selector(ready)
        self.check(path, blocked_on_purpose)
        return reply

    def check(self, where, blocked_on_purpose=None):
        self.page.wait_for_timeout(300)  # violations are reported asynchronously
        violations = self.page.evaluate("window.__violations")
        if blocked_on_purpose:
            assert any(blocked_on_purpose in v for v in violations), (where, violations)
            violations = [v for v in violations if blocked_on_purpose not in v]
            self.problems = [p for p in self.problems if blocked_on_purpose not in p]
        assert violations == [], (where, violations)
        assert self.problems == [], (where, self.problems)

    def log_in(self, username, password):
        self.visit("/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("main button[type=submit]")
        self.page.wait_for_url(f"{self.site}/")
        self.check("/ after logging in")


def bars_are_drawn(page):
    """Widths come from data-width (no style attributes under the policy): each bar is as wide as it says."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-width]')].every(
        n => n.style.width === n.dataset.width + '%')""")


def test_every_researcher_page_loads_under_the_policy(browser, site):
    researcher = Watched(browser, site)
    researcher.log_in("researcher", "researcher-demo")
    researcher.visit("/")
    researcher.visit("/studies/empathy-demo/")
    item = Item.objects.filter(study__slug="empathy-demo").order_by("pk").first()
    researcher.visit(f"/studies/empathy-demo/items/{item.external_id}/")

    # an upload's result is swapped in by htmx
    researcher.visit("/studies/empathy-demo/")
    page = researcher.page
    page.set_input_files("#upload input[type=file]", files=[
        {"name": "outputs.jsonl", "mimeType": "application/json", "buffer": b'{"item_id": "p1"}\n'}])
    page.click("#upload button[type=submit]")
    page.wait_for_function("() => document.querySelector('#upload-result').textContent.trim().length > 0")
    researcher.check("the upload result")

    researcher.visit("/studies/empathy-demo/progress/")
    assert page.locator("[data-width]").count() > 0 and bars_are_drawn(page)

    researcher.visit("/studies/empathy-demo/leaderboard/", ready="#public-link")
    page.wait_for_selector(".chart svg text.in-bar[data-fill]")
    fills = page.evaluate("""() => [...document.querySelectorAll('[data-fill]')].map(
        n => [n.dataset.fill, n.style.fill])""")
    assert fills and all(style for _, style in fills), fills  # label colours applied by site.js
    page.click("#public-link button[type=submit]")  # create a public link
    page.wait_for_selector("input.public-url")
    researcher.check("the public link")
    page.click("input.public-url")  # one click selects the whole link, ready to copy
    selected = page.evaluate("() => { const f = document.querySelector('input.public-url');"
                             " return f.value.substring(f.selectionStart, f.selectionEnd); }")
    assert "/public/leaderboard/" in selected
    public_token = Study.objects.get(slug="empathy-demo").public_token
    researcher.visit(f"/public/leaderboard/{public_token}/")

    researcher.visit("/account/token/")
    researcher.visit("/studies/empathy-demo/generate/")
    researcher.visit("/api/docs/", ready=".swagger-ui .info")
    # Redoc fetches its maker's logo from their CDN: the policy keeps that request from leaving
    # the browser, and Redoc hides the image when it fails.
    researcher.visit("/api/redoc/", ready=".api-content", blocked_on_purpose="https://cdn.redoc.ly/")


def test_an_annotator_joins_ranks_by_mouse_and_keyboard_and_finishes_under_the_policy(browser, site):
    study = Study.objects.get(slug="empathy-demo")
    annotator = Watched(browser, site)
    annotator.visit(f"/join/{study.invite_token}/")
    page = annotator.page
    page.fill("input[name=username]", "new-annotator")
    page.fill("input[name=password1]", "a long new passphrase 42")
    page.fill("input[name=password2]", "a long new passphrase 42")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site}/annotate/empathy-demo/")
    annotator.check("the start page")
    assert bars_are_drawn(page)
    page.click("a.button.primary")
    page.wait_for_selector("#work")
    annotator.check("the ranking screen")
    assert bars_are_drawn(page)

    # by mouse: a click places a letter at the end of each criterion's ranking
    for criterion in page.locator("fieldset.criterion").all():
        for letter in "EDCBA":
            criterion.locator(f".tray .token[data-letter={letter}]").click()
    page.click(".rank-actions button.primary")
    playwright_api.expect(page.locator("#progress")).to_contain_text("1 of 30 done")
    annotator.check("the next item, swapped in by htmx")
    assert bars_are_drawn(page)

    # by keyboard alone: Enter places the focused letter last, Tab moves to the next one
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'work-title'",
                           timeout=5000)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('token')"):
            break
    for _ in range(2):
        for _ in range(5):
            page.keyboard.press("Enter")
            page.keyboard.press("Tab")
    page.locator(".rank-actions button.primary").focus()
    page.keyboard.press("Enter")
    playwright_api.expect(page.locator("#progress")).to_contain_text("2 of 30 done")
    annotator.check("after ranking by keyboard")
    assert Ranking.objects.filter(source="annotated", assignment__annotator__username="new-annotator").count() == 4

    annotator.visit("/annotate/empathy-demo/done/")
    annotator.visit("/")


def test_a_crowd_worker_enters_and_the_login_page_is_clean(browser, site):
    study = Study.objects.get(slug="empathy-demo")
    annotating_services.update_annotation_settings(
        study, crowd_platform="prolific", completion_code="C0DE", completion_url="https://app.prolific.com/done")
    crowd = Watched(browser, site)
    crowd.visit("/login/")
    crowd.visit(f"/join/{study.invite_token}/?PROLIFIC_PID=5f0c0ffee0c0ffee0c0ffee0&STUDY_ID=s&SESSION_ID=x",
                ready="main")
    crowd.page.wait_for_url(f"{site}/annotate/empathy-demo/**")
    crowd.check("the crowd entry")
    crowd.page.click("a.button.primary")
    crowd.page.wait_for_selector("#work")
    crowd.check("the crowd worker's ranking screen")
