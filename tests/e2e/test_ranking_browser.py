"""The ranking screen in a real browser (Debian's chromium, headless, through Playwright): log in,
rank by dragging, rank with the keyboard alone, submit, see progress move, reload and resume;
the layout at desktop and phone widths, in English and Chinese. (Long texts: test_reading_screen.)"""
import os
import shutil

import pytest
from django.core.management import call_command

from annotations.models import Assignment, Ranking, Response

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there
    unless told. Only for these tests: set at import, it would leak into every later subprocess."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_orm_beside_playwright):
    if not shutil.which(CHROMIUM):
        message = f"needs Debian's chromium at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server):
    call_command("demo", "--force", verbosity=0)
    return live_server.url


def annotator_page(browser, site, viewport=DESKTOP, locale=None):
    context = browser.new_context(viewport=viewport, locale=locale or "en-GB",
                                  has_touch=viewport is PHONE, is_mobile=viewport is PHONE)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(f"{site}/login/")
    page.fill("input[name=username]", "annotator")
    page.fill("input[name=password]", "annotator-demo")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{site}/")
    return page


def drag_to_end(token, ranked):
    """Drag a letter to the end of the ranking's row, after its last entry (where a person would drop it).

    With the mouse, as a person does: press on the letter, move in steps to just right of the last
    placed letter (Sortable appends what is dropped past the last one), release. (Locator.drag_to
    re-checks its drop point after the ranking row has grown under the pointer, and then finds the
    tray there instead.)"""
    page = token.page
    token.scroll_into_view_if_needed()
    ranked.scroll_into_view_if_needed()
    start = token.bounding_box()
    tokens = ranked.locator(".token")
    box = ranked.bounding_box()
    if tokens.count():
        last = tokens.last.bounding_box()
        x, y = last["x"] + last["width"] + 6, last["y"] + last["height"] / 2
        if x > box["x"] + box["width"] - 10:  # the row is full: past the last letter, in the row's bottom corner
            x, y = box["x"] + box["width"] - 6, box["y"] + box["height"] - 2
    else:
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    # Along the row's right edge, then in: the pointer passes over no placed letter on its way.
    page.mouse.move(box["x"] + box["width"] - 6, start["y"] + start["height"] / 2, steps=8)
    page.mouse.move(x, y, steps=12)
    page.mouse.move(x + 1, y, steps=2)
    page.mouse.up()
    page.wait_for_timeout(200)  # Sortable's 120 ms animation


def drag_before(token, other):
    """Drag a placed letter onto the left part of another, in steps, as a person moves the mouse."""
    page = token.page
    start, end = token.bounding_box(), other.bounding_box()
    # On the letter itself, not on its = or x buttons.
    page.mouse.move(start["x"] + 10, start["y"] + start["height"] / 2)
    page.mouse.down()
    row_y = end["y"] + end["height"] / 2
    page.mouse.move(end["x"] + 3, row_y, steps=1)
    page.mouse.move(end["x"] + 2, row_y, steps=1)
    page.mouse.up()
    page.wait_for_timeout(200)


def stored(criterion):
    """The stored ranking for a criterion, as tie groups of letters in the assignment's display."""
    ranking = Ranking.objects.select_related("assignment").get(criterion__name=criterion, source="annotated")
    assignment = ranking.assignment
    system_of = dict(Response.objects.filter(pk__in=assignment.handles.values()).values_list("pk", "system_id"))
    letter_of = {system_of[assignment.handles[h]]: "ABCDE"[i] for i, h in enumerate(assignment.shown_handles)}
    return ["".join(letter_of[s] for s in group) for group in ranking.ranking]


def test_rank_by_dragging_submit_and_see_progress(browser, site):
    page = annotator_page(browser, site)
    playwright_api.expect(page.locator("h1")).to_have_text("Your annotation work")
    page.click("text=Start")
    page.click("a.button.primary")  # the start page: instructions, then Start
    page.wait_for_selector("#work")
    playwright_api.expect(page.locator("#progress")).to_contain_text("0 of 30 done")
    overall, comforting = page.locator("fieldset.criterion").all()
    for letter in "DBEAC":
        drag_to_end(overall.locator(f".tray .token[data-letter={letter}]"), overall.locator(".ranked"))
    # reorder inside the ranking by dragging C above B
    drag_before(overall.locator(".ranked .token[data-letter=C]"), overall.locator(".ranked .token[data-letter=B]"))
    comforting.scroll_into_view_if_needed()  # the ranking panel scrolls inside itself
    for letter in "ABCDE":
        drag_to_end(comforting.locator(f".tray .token[data-letter={letter}]"), comforting.locator(".ranked"))
    page.click(".rank-actions button.primary")
    playwright_api.expect(page.locator("#progress")).to_contain_text("1 of 30 done")
    assert stored("overall") == ["D", "C", "B", "E", "A"]
    assert stored("comforting") == ["A", "B", "C", "D", "E"]
    assert page.errors == []


def test_rank_with_the_keyboard_alone(browser, site):
    """As the help (?) says: a letter picks a response, a number sets its place, = ties, [ ] change
    the question, W writes why, Ctrl+Enter submits. No Tab walk through the page."""
    page = annotator_page(browser, site)
    page.goto(f"{site}/annotate/empathy-demo/work/")
    page.wait_for_function("() => document.getElementById('work') && document.getElementById('work').dataset.ready")
    for letter, place in zip("abcde", "12345"):  # overall: A..E in order; once complete, on to the next question
        page.keyboard.press(letter)
        page.keyboard.press(place)
    page.keyboard.press("[")  # back to overall
    page.keyboard.press("e")
    page.keyboard.press("2")  # E takes place 2; B, who held it, takes E's place 5
    page.keyboard.press("=")  # E tied with the one above it, A
    page.keyboard.press("]")
    for letter, place in zip("abcde", "12345"):
        page.keyboard.press(letter)
        page.keyboard.press(place)
    page.keyboard.press("w")
    page.keyboard.type("Warm and specific.")
    page.keyboard.press("Control+Enter")
    playwright_api.expect(page.locator("#progress")).to_contain_text("1 of 30 done")
    assert stored("overall") == ["AE", "C", "D", "B"]
    assert stored("comforting") == ["A", "B", "C", "D", "E"]
    assert Assignment.objects.get(status="submitted").rationale == "Warm and specific."
    # the next item has the keyboard focus on its title, so the keyboard path goes on
    # A function, not an expression string: Playwright evaluates strings with eval, which the CSP forbids.
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'work-title'",
                           timeout=5000)
    assert page.errors == []


def test_an_incomplete_ranking_is_refused_in_place(browser, site):
    page = annotator_page(browser, site)
    page.goto(f"{site}/annotate/empathy-demo/work/")
    overall = page.locator("fieldset.criterion").first
    overall.locator(".tray .token[data-letter=B]").click()  # a click places it at the end
    page.click(".rank-actions button.primary")
    playwright_api.expect(page.locator("#rank-message")).to_contain_text("Place every response")
    assert overall.locator(".ranked .token").count() == 1  # what was placed stays placed
    assert not Ranking.objects.filter(source="annotated").exists()


def test_reload_mid_item_resumes_the_same_item_in_the_same_order(browser, site):
    page = annotator_page(browser, site)
    page.goto(f"{site}/annotate/empathy-demo/work/")
    letters = "ts => Object.fromEntries(ts.map(t => [t.dataset.letter, t.dataset.handle]))"
    cards = page.locator(".response-card .text").all_inner_texts()
    overall = page.locator("fieldset.criterion").first
    handles = overall.locator(".token").evaluate_all(letters)
    overall.locator(".tray .token[data-letter=C]").click()
    overall.locator(".tray .token[data-letter=A]").click()
    page.reload()
    # the same item, the same responses under the same letters, in the same order
    assert page.locator(".response-card .text").all_inner_texts() == cards
    assert overall.locator(".token").evaluate_all(letters) == handles
    # ... and what was already placed is still placed
    assert overall.locator(".ranked .token").evaluate_all("ts => ts.map(t => t.dataset.letter)") == ["C", "A"]
    assert Assignment.objects.count() == 1


def test_desktop_layout_two_panes_side_by_side_and_the_panel_beside_them(browser, site, tmp_path):
    page = annotator_page(browser, site)
    page.goto(f"{site}/annotate/empathy-demo/work/")
    a = page.locator("#response-A").bounding_box()
    b = page.locator("#response-B").bounding_box()
    assert a["y"] == b["y"] and b["x"] > a["x"] + a["width"]  # side by side
    panel = page.locator(".rank-panel").bounding_box()
    assert panel["x"] > b["x"]  # the ranking sits to the right of the texts
    page.click(".read-strip .tab[data-show=E]")  # one click from the panel
    e = page.locator("#response-E").bounding_box()
    assert e is not None and 0 <= e["y"] < DESKTOP["height"]
    panel = page.locator(".rank-panel").bounding_box()
    assert 0 <= panel["y"] and panel["y"] + panel["height"] <= DESKTOP["height"]  # whole, on screen
    page.screenshot(path=tmp_path / "desktop.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]


def test_phone_layout_one_response_at_a_time_and_the_ranking_at_hand(browser, site, tmp_path):
    page = annotator_page(browser, site, viewport=PHONE)
    page.goto(f"{site}/annotate/empathy-demo/work/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    assert page.locator("#response-A").is_visible() and not page.locator("#response-B").is_visible()
    page.click(".pane[data-pane='0'] .step[data-step='1']")  # next
    assert page.locator("#response-B").is_visible() and not page.locator("#response-A").is_visible()
    submit = page.locator(".rank-actions button.primary").bounding_box()
    assert submit["y"] + submit["height"] <= PHONE["height"]  # the bottom sheet stays on screen
    page.click(".sheet-toggle")  # raise the sheet and rank by tapping
    for criterion in page.locator("fieldset.criterion").all():
        for letter in "EDCBA":
            criterion.locator(f".tray .token[data-letter={letter}]").tap()
    page.screenshot(path=tmp_path / "phone.png")
    page.click(".rank-actions button.primary")
    playwright_api.expect(page.locator("#progress")).to_contain_text("1 of 30 done")
    assert stored("overall") == ["E", "D", "C", "B", "A"]
    assert page.errors == []


def test_the_chinese_interface_in_the_browser(browser, site):
    page = annotator_page(browser, site)
    page.goto(f"{site}/annotate/empathy-demo/work/")
    page.click("button[lang=zh-hans]")
    playwright_api.expect(page.locator("#work-title")).to_have_text("为回复排序")
    playwright_api.expect(page.locator(".rank-actions button.primary")).to_have_text("提交排序")
    page.click(".rank-actions button.primary")
    playwright_api.expect(page.locator("#rank-message")).to_contain_text("提交前请在每个问题下排好每一条回复")
