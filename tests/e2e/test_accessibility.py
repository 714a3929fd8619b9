"""axe-core in a real browser (Debian's chromium): every kind of page a researcher, an annotator or
a visitor can open has no critical and no serious accessibility violation. The rest (moderate,
minor) are printed with the counts, for the record.

axe-core is vendored under tests/e2e/vendor/axe-core/ (MPL-2.0, see its LICENSE): the tests inject
it through the browser's debugging protocol, which the Content-Security-Policy does not govern,
so the site never serves it."""
from pathlib import Path

import pytest

from django.utils import timezone

from annotations.models import FileJob, Item, Study
from annotations.results import services as results
from tests.e2e.test_ranking_browser import (  # noqa: F401 - fixtures, shared with the ranking tests
    DESKTOP, PHONE, _orm_beside_playwright, browser, playwright_api, site,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
BLOCKING = ("critical", "serious")
IMPACTS = ("critical", "serious", "moderate", "minor")

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + '  ' + n.html.replace(/\\s+/g, ' ').slice(0, 160)),
  }));
}"""


class Audit:
    """One browser context (one person); `check` runs axe on the page it is on and keeps the result."""

    def __init__(self, browser, site, viewport=DESKTOP):
        self.site = site
        self.context = browser.new_context(viewport=viewport, locale="en-GB",
                                           is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
        self.page = self.context.new_page()
        self.found = {}

    def log_in(self, username, password):
        self.page.goto(f"{self.site}/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("main button[type=submit]")
        self.page.wait_for_url(f"{self.site}/")

    def visit(self, path, name=None, ready="main"):
        reply = self.page.goto(f"{self.site}{path}")
        assert reply.status < 400, (path, reply.status)
        self.page.wait_for_selector(ready)
        self.check(name or path)

    def check(self, name):
        self.page.evaluate(AXE)
        self.found[name] = self.page.evaluate(RUN_AXE)

    def report(self):
        """Prints every violation, and returns the blocking ones as text lines."""
        blocking = []
        for name, violations in self.found.items():
            counts = {impact: sum(len(v["nodes"]) for v in violations if v["impact"] == impact) for impact in IMPACTS}
            print(f"axe {name}: " + ", ".join(f"{n} {impact}" for impact, n in counts.items()))
            for v in violations:
                lines = [f"    {v['impact']} {v['id']}: {v['help']}"] + [f"      {node}" for node in v["nodes"]]
                print("\n".join(lines))
                if v["impact"] in BLOCKING:
                    blocking.append(f"{name}: " + "\n".join(lines))
        self.context.close()
        return blocking


def test_the_researchers_pages(browser, site, settings):
    settings.VLLM_BASE_URLS = ["http://127.0.0.1:9"]  # no server: the generation page says so
    study = Study.objects.get(slug="empathy-demo")
    item = Item.objects.filter(study=study).order_by("pk").first()
    token = results.create_public_link(study)
    audit = Audit(browser, site)
    audit.log_in("researcher", "researcher-demo")
    audit.visit("/", "home (study list)")
    audit.visit("/studies/new/", "new study")
    audit.visit("/studies/empathy-demo/", "study detail")
    audit.visit("/studies/empathy-demo/edit/", "study settings")
    audit.visit("/studies/empathy-demo/researchers/", "researchers")
    audit.visit(f"/studies/empathy-demo/items/{item.external_id}/", "item preview")
    audit.visit("/account/token/", "API token")
    audit.visit("/studies/empathy-demo/progress/", "progress")
    audit.visit("/studies/empathy-demo/leaderboard/", "leaderboard", ready="table.leaderboard")
    audit.visit(f"/public/leaderboard/{token}/", "public leaderboard (researcher)", ready="table.leaderboard")
    audit.visit("/studies/design/", "study designer (form)")
    audit.page.click("main form button[type=submit]")
    audit.page.wait_for_selector("main svg")
    audit.check("study designer (grid)")
    refused = FileJob.objects.create(
        study=study, kind=FileJob.Kind.OUTPUTS_UPLOAD, status=FileJob.Status.FAILED, filename="big.jsonl",
        size=9 << 20, finished_at=timezone.now(), result={
            "detail": "The upload was refused: 1 problem found.", "truncated": False, "http_status": 400,
            "errors": [{"line": 3, "column": None, "field": "prompt", "message": "is empty", "text": "line 3: is empty"}]})
    audit.visit(f"/studies/empathy-demo/uploads/{refused.pk}/", "upload job (refused)")
    running = FileJob.objects.create(study=study, kind=FileJob.Kind.RANKINGS_IMPORT, status=FileJob.Status.RUNNING,
                                     filename="rankings.jsonl", size=9 << 20, started_at=timezone.now())
    audit.visit(f"/studies/empathy-demo/rankings/jobs/{running.pk}/", "rankings import job (running)")
    audit.visit("/studies/empathy-demo/generate/", "generation")
    # A job (it fails at once without a server: the page shows the error and the resume button)
    audit.page.goto(f"{site}/studies/empathy-demo/generate/")
    audit.page.fill("input[name=system_name]", "coe-audit")
    audit.page.fill("input[name=model]", "some-model")
    audit.page.check("input[name=strategy][value=coe-cbt]")
    audit.page.click(".generate-form button[type=submit]")
    audit.page.wait_for_selector("#job-progress")
    audit.check("generation job")
    blocking = audit.report()

    phone = Audit(browser, site, viewport=PHONE)
    phone.log_in("researcher", "researcher-demo")
    phone.visit("/studies/empathy-demo/leaderboard/", "leaderboard at 390 px", ready="table.leaderboard")
    phone.visit(f"/public/leaderboard/{token}/", "public leaderboard at 390 px", ready="table.leaderboard")
    blocking += phone.report()
    assert blocking == [], "\n".join(blocking)


def test_the_annotators_pages(browser, site):
    audit = Audit(browser, site)
    audit.log_in("annotator", "annotator-demo")
    audit.visit("/", "annotator home")
    audit.visit("/annotate/empathy-demo/", "annotator start")
    audit.visit("/annotate/empathy-demo/work/", "annotator work", ready="#work")
    audit.visit("/annotate/empathy-demo/done/", "annotator done")
    blocking = audit.report()

    phone = Audit(browser, site, viewport=PHONE)
    phone.log_in("annotator", "annotator-demo")
    phone.visit("/annotate/empathy-demo/work/", "annotator work at 390 px", ready="#work")
    blocking += phone.report()
    assert blocking == [], "\n".join(blocking)


def test_the_pages_anyone_can_open(browser, site):
    study = Study.objects.get(slug="empathy-demo")
    token = results.create_public_link(study)
    audit = Audit(browser, site)
    audit.visit("/login/", "login")
    audit.visit(f"/join/{study.invite_token}/", "join")
    audit.visit(f"/public/leaderboard/{token}/", "public leaderboard", ready="table.leaderboard")
    blocking = audit.report()
    assert blocking == [], "\n".join(blocking)
