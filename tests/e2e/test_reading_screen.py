"""The reading-first ranking screen in a real browser (Debian's chromium through Playwright), on a
study like the one this site serves: long posts, Chinese and English, six long responses each with
Markdown in them, four criteria. At 1440x900 and 390x844: the page needs little scrolling outside the
texts, each response is one action from the ranking panel, the keyboard ranks everything as the help
says, and how each response was read is stored and exported.

EVALSITE_SCREENSHOTS=docs/screenshots saves the screens there (else in a temporary folder)."""
import json
import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from annotations.models import Assignment, Item, Membership, Ranking, Response, Study, System
from tests.e2e.test_ranking_browser import ARGS, CHROMIUM, browser, _orm_beside_playwright  # noqa: F401
from tests.factories import StudyFactory, UserFactory

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
CRITERIA = ("fluency", "identification", "comforting", "suggestion")
SYSTEMS = ("sys-a", "sys-b", "sys-c", "sys-d", "sys-e", "sys-f")

EN_POST = ("I am writing this at three in the morning because I cannot sleep again. " * 4 + "\n\n"
           + "My manager told me last week that my work has been slipping, and since then I replay every "
             "conversation in my head. I used to love this job. Now I dread opening my laptop, and I snap at "
             "my partner over nothing. " * 3)
ZH_POST = ("我最近总是睡不着，白天上班也没有精神。领导上周说我的工作做得不好，从那以后我每天都在想这件事。" * 6
           + "\n\n" + "我不知道该和谁说，家里人只会说我想太多。朋友们都很忙，我不想打扰他们。" * 4)


def en_response(n):
    part = (f"## Part {n}\n\nIt sounds exhausting to lie awake replaying those conversations. **Move** one small "
            "thing at a time: write down what your manager actually said, and what you fear it means. ")
    return (part + "\n\n" + "- Sleep: keep the same hour to get up, even after a bad night.\n"
            "- Talk: ask your manager for one concrete example and one thing to change.\n\n" * 2
            + "You cared about this work, and that care has not gone anywhere. " * 9)[:1000 + 80 * n]


def zh_response(n):
    text = (f"## 第{n}部分\n\n听起来你这段时间真的很辛苦，晚上睡不着，白天还要面对工作的压力。**先做一件小事**：把领导说过的话写下来，"
            "再写下你担心它意味着什么。\n\n- 睡眠：每天同一时间起床。\n- 沟通：请领导举一个具体的例子。\n\n"
            + "你曾经热爱这份工作，这份在乎并没有消失。你的感受是真实的，也是可以被理解的。" * 30)
    return text[:1000 + 80 * n]


@pytest.fixture
def long_study(live_server):
    researcher = UserFactory(username="rhea")
    study = StudyFactory(owner=researcher, slug="long", title="Counselling replies", criteria=CRITERIA,
                         responses_per_screen=6, annotations_per_item=1, allow_ties=True)
    systems = System.objects.bulk_create(System(study=study, name=name) for name in SYSTEMS)
    for external_id, post, write in (("zh-1", ZH_POST, zh_response), ("en-1", EN_POST, en_response)):
        item = Item.objects.create(study=study, external_id=external_id, prompt=post)
        Response.objects.bulk_create(Response(item=item, system=s, text=write(i + 1)) for i, s in enumerate(systems))
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
    annotator = get_user_model().objects.create_user("reader", password="reader-pass-123")
    Membership.objects.create(study=study, user=annotator, role=Membership.Role.ANNOTATOR)
    study.refresh_from_db()
    return study


def screen(browser, live_server, viewport, item="zh-1", locale="en-GB"):  # noqa: F811
    context = browser.new_context(viewport=viewport, locale=locale, has_touch=viewport is PHONE,
                                  is_mobile=viewport is PHONE)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password]", "reader-pass-123")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    if item == "en-1":  # the least-ranked item comes first: hand the Chinese one to nobody first
        Item.objects.filter(external_id="zh-1").update(rankings_done=5)
    page.goto(f"{live_server.url}/annotate/long/work/")
    page.wait_for_function("() => document.getElementById('work') && document.getElementById('work').dataset.ready")
    return page


def shot(page, name, tmp_path):
    folder = Path(os.environ.get("EVALSITE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / name)


def page_height_outside_texts(page):
    """The document's scroll height, in screens: the texts scroll inside their panes, not the page."""
    return page.evaluate("() => document.documentElement.scrollHeight / window.innerHeight")


def in_view(page, letter):
    return page.evaluate("""(letter) => {
        const node = document.getElementById('response-' + letter);
        if (!node || node.offsetParent === null) return false;
        const box = node.getBoundingClientRect();
        return box.top >= 0 && box.top < window.innerHeight && box.width > 0;
    }""", letter)


def stored_letters(criterion):
    ranking = Ranking.objects.select_related("assignment").get(criterion__name=criterion, source="annotated")
    a = ranking.assignment
    system_of = dict(Response.objects.filter(pk__in=a.handles.values()).values_list("pk", "system_id"))
    letter_of = {system_of[a.handles[h]]: "ABCDEF"[i] for i, h in enumerate(a.shown_handles)}
    return ["".join(letter_of[s] for s in group) for group in ranking.ranking]


@pytest.mark.parametrize("viewport, name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_long_texts_need_little_page_scrolling_and_each_response_is_one_action_away(
        browser, live_server, long_study, viewport, name, tmp_path):  # noqa: F811
    page = screen(browser, live_server, viewport)
    height = page_height_outside_texts(page)
    print(f"{name}: document {page.evaluate('() => document.documentElement.scrollHeight')} px "
          f"= {height:.2f} screens")
    assert height <= 1.6
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    # Each text scrolls inside its own pane.
    body = page.locator(".pane[data-pane='0'] .pane-body")
    assert body.evaluate("(b) => b.scrollHeight > b.clientHeight")
    shot(page, f"reading-{name}-zh.png", tmp_path)
    for letter in "ABCDEF":
        if name == "phone":
            page.click(".sheet-toggle")  # raise the ranking sheet, then one tap on the letter
        page.click(f".read-strip .tab[data-show={letter}]")
        assert in_view(page, letter), letter
        page.wait_for_function("(l) => document.querySelector(`.read-strip .tab[data-show=${l}]`)"
                               ".classList.contains('opened')", arg=letter)
    if name == "desktop":
        # Any two side by side: A on the left, D on the right.
        page.click(".pane[data-pane='0'] .tab[data-show=A]")
        page.click(".pane[data-pane='1'] .tab[data-show=D]")
        a, d = page.locator("#response-A").bounding_box(), page.locator("#response-D").bounding_box()
        assert abs(a["y"] - d["y"]) < 2 and d["x"] > a["x"] + a["width"]
    else:
        # One at a time: swipe left for the next response.
        shown = page.locator(".pane[data-pane='0'] article").get_attribute("data-letter")
        box = body.bounding_box()
        y = box["y"] + box["height"] / 2
        page.evaluate("""([x0, x1, y]) => {
            const body = document.querySelector(".pane[data-pane='0'] .pane-body");
            const touch = (x) => new Touch({identifier: 1, target: body, clientX: x, clientY: y});
            body.dispatchEvent(new TouchEvent('touchstart', {changedTouches: [touch(x0)], bubbles: true}));
            body.dispatchEvent(new TouchEvent('touchend', {changedTouches: [touch(x1)], bubbles: true}));
        }""", [box["x"] + box["width"] - 20, box["x"] + 20, y])
        after = page.locator(".pane[data-pane='0'] article").get_attribute("data-letter")
        assert after == "ABCDEF"["ABCDEF".index(shown) + 1 if shown != "F" else 0]
        page.click(".sheet-toggle")
        shot(page, f"reading-{name}-sheet.png", tmp_path)
    assert page.errors == []


def test_a_full_keyboard_ranking_as_the_help_says_stores_the_ranking_and_how_it_was_read(
        browser, live_server, long_study, tmp_path):  # noqa: F811
    page = screen(browser, live_server, DESKTOP, item="en-1")
    page.keyboard.press("?")
    help_text = page.locator("#keys-help").inner_text()
    assert "Put the picked response in that place" in help_text and "Ctrl" in help_text
    shot(page, "reading-desktop-keys.png", tmp_path)
    page.keyboard.press("Escape")
    # Read B to its end (Space scrolls the left pane), so the reading report has something to say.
    page.keyboard.press("b")
    for _ in range(8):
        page.keyboard.press("Space")
    page.wait_for_timeout(1200)
    orders = {"fluency": "CAFBED", "identification": "ABCDEF", "comforting": "FEDCBA", "suggestion": "BADCFE"}
    presses = 0
    for criterion in CRITERIA:
        for place, letter in enumerate(orders[criterion], start=1):
            page.keyboard.press(letter.lower())
            page.keyboard.press(str(place))
            presses += 2
    page.keyboard.press("Control+Enter")
    presses += 1
    playwright_api.expect(page.locator("#progress")).to_contain_text("1 of 2 done")
    print(f"keyboard ranking of 6 responses on 4 criteria: {presses} key presses (no Tab)")
    for criterion in CRITERIA:
        assert stored_letters(criterion) == list(orders[criterion]), criterion
    a = Assignment.objects.get(status="submitted")
    names = dict(System.objects.values_list("pk", "name"))
    assert set(a.reading) == {str(pk) for pk in names}
    letter_of = {str(Response.objects.get(pk=a.handles[h]).system_id): "ABCDEF"[i]
                 for i, h in enumerate(a.shown_handles)}
    by_letter = {letter_of[s]: entry for s, entry in a.reading.items()}
    assert by_letter["B"]["opened"] and by_letter["B"]["read_to_end"] and by_letter["B"]["seconds"] >= 1
    assert all(entry["opened"] for entry in by_letter.values())  # every letter key showed its response
    # ... and exported with each ranking, by system name.
    researcher = long_study.owner
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", researcher.username)
    page.fill("input[name=password]", "pw-for-tests-only")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    body = page.request.get(f"{live_server.url}/studies/long/rankings/export/").text()
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == 4 and all(set(line["reading"]) == set(SYSTEMS) for line in lines)
    assert lines[0]["reading"][names[int(next(s for s, l in letter_of.items() if l == "B"))]]["read_to_end"]
    assert page.errors == []


def test_a_number_key_sets_the_place_it_names(browser, live_server, long_study):  # noqa: F811
    page = screen(browser, live_server, DESKTOP)
    for letter, place in zip("ABCDE", "54321"):
        page.keyboard.press(letter.lower())
        page.keyboard.press(place)
    first = page.locator("fieldset.criterion").first
    assert first.locator(".ranked .token").evaluate_all("ts => ts.map(t => t.dataset.letter)") == list("EDCBA")
    assert first.locator(".ranked .pos").all_inner_texts() == ["1", "2", "3", "4", "5"]
    page.keyboard.press("c")
    page.keyboard.press("1")  # C to first: E, who held it, takes C's old place
    assert first.locator(".ranked .token").evaluate_all("ts => ts.map(t => t.dataset.letter)") == list("CDEBA")


def test_placements_are_kept_per_screen_not_per_browser(browser, live_server, long_study):  # noqa: F811
    page = screen(browser, live_server, DESKTOP)
    page.keyboard.press("a")
    page.keyboard.press("2")
    public_id = page.locator("#work").get_attribute("data-screen")
    # Another screen's placements in the same browser (a second tab, another study) do not touch these.
    page.evaluate("""() => localStorage.setItem('evalsite-screen:someone-else',
                      JSON.stringify({saved: Date.now(), places: {fluency: []}, reading: {}}))""")
    page.reload()
    page.wait_for_function("() => document.getElementById('work').dataset.ready")
    first = page.locator("fieldset.criterion").first
    assert first.locator(".ranked .token").evaluate_all("ts => ts.map(t => [t.dataset.letter, t.dataset.place])") \
        == [["A", "2"]]
    assert page.evaluate("(id) => !!localStorage.getItem('evalsite-screen:' + id)", public_id)


def test_skip_asks_first_and_says_the_item_comes_back(browser, live_server, long_study):  # noqa: F811
    page = screen(browser, live_server, DESKTOP)
    first = page.locator("#work").get_attribute("data-screen")
    page.keyboard.press("s")
    playwright_api.expect(page.locator(".skip-confirm")).to_be_visible()
    playwright_api.expect(page.locator(".skip-confirm")).to_contain_text("comes back after the others")
    page.keyboard.press("Enter")  # the confirmation has the focus
    playwright_api.expect(page.locator(".screen-notice")).to_contain_text("comes back after the others")
    assert page.locator("#work").get_attribute("data-screen") != first


def test_a_refusal_is_shown_in_full_in_the_ranking_panel(browser, live_server, long_study):  # noqa: F811
    page = screen(browser, live_server, DESKTOP)
    page.click(".rank-actions button.primary")
    message = page.locator("#rank-message .notice")
    playwright_api.expect(message).to_be_visible()
    box = message.bounding_box()
    panel = page.locator(".rank-panel").bounding_box()
    assert box["y"] >= panel["y"] and box["y"] + box["height"] <= min(panel["y"] + panel["height"], DESKTOP["height"])
