"""Take the README's screenshots from a running demo site (make demo), in Debian's chromium.

Usage: python docs/screenshots.py [BASE_URL] [--ranking]   (default http://127.0.0.1:8000;
--ranking takes only the annotator's ranking screens)
"""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

URLS = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
BASE = (URLS[0] if URLS else "http://127.0.0.1:8000").rstrip("/")
OUT = Path(__file__).resolve().parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def login(page, username, password):
    page.goto(f"{BASE}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")  # the topbar has buttons too (language, log out)


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, "researcher", "researcher-demo")
        page.goto(f"{BASE}/studies/empathy-demo/")
        page.screenshot(path=OUT / "study-page.png", full_page=True)
        page.set_input_files("input[type=file]", files=[{
            "name": "outputs.jsonl", "mimeType": "application/jsonl",
            "buffer": b'{"item_id": "post-01", "prompt": "edited", "system": "base-7b", "response": "x"}\n'
                      b'{"item_id": "post-31", "prompt": "A new post", "system": "base-7b"}\n'}])
        page.click("#upload button[type=submit]")
        page.wait_for_selector("#upload-result .notice")
        page.locator("#upload").screenshot(path=OUT / "upload-errors.png")
        page.goto(f"{BASE}/studies/empathy-demo/leaderboard/")
        # The first criterion in full (the second repeats its layout).
        box = page.locator("#criterion-overall").bounding_box()
        page.screenshot(path=OUT / "leaderboard.png", full_page=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": box["y"] + box["height"] + 16})
        page.goto(f"{BASE}/studies/empathy-demo/items/post-26/")
        page.screenshot(path=OUT / "item-page.png", full_page=False)
        page.goto(f"{BASE}/studies/design/")
        page.click("main form button[type=submit]")
        page.wait_for_selector("main svg")
        page.screenshot(path=OUT / "designer.png", full_page=True)
        ranking_screens(browser)
        browser.close()


def ranking_screens(browser):
    """The annotator's ranking screen: desktop and phone widths, and the desktop in Chinese."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    login(page, "annotator", "annotator-demo")
    page.goto(f"{BASE}/annotate/empathy-demo/work/")
    page.wait_for_function("() => document.getElementById('work') && document.getElementById('work').dataset.ready")
    overall, comforting = page.locator("fieldset.criterion").all()
    for letter in "CAEBD":
        overall.locator(f".tray .token[data-letter={letter}]").click()
    page.keyboard.press("a")
    page.keyboard.press("=")  # A tied with C
    comforting.locator(".tray .token[data-letter=A]").click()
    page.keyboard.press("Shift+c")  # C beside A, to compare
    page.mouse.move(0, 0)
    page.screenshot(path=OUT / "ranking-desktop.png")
    page.click("button[lang=zh-hans]")  # a reload: the placements come back from the browser
    page.wait_for_selector("html[lang=zh-hans]")
    page.wait_for_function("() => document.getElementById('work') && document.getElementById('work').dataset.ready")
    page.screenshot(path=OUT / "ranking-desktop-zh.png")
    page.keyboard.press("?")
    page.wait_for_timeout(300)
    page.screenshot(path=OUT / "ranking-keys-zh.png")
    page.keyboard.press("Escape")
    page.click("button[lang=en]")
    page.close()
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    login(phone, "annotator", "annotator-demo")
    phone.goto(f"{BASE}/annotate/empathy-demo/work/")
    phone.wait_for_function("() => document.getElementById('work') && document.getElementById('work').dataset.ready")
    phone.screenshot(path=OUT / "ranking-phone.png")
    phone.click(".sheet-toggle")
    phone.wait_for_timeout(300)
    phone.screenshot(path=OUT / "ranking-phone-sheet.png")
    phone.close()


if __name__ == "__main__":
    if "--ranking" in sys.argv:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            ranking_screens(chromium)
            chromium.close()
    else:
        main()
