"""Take the README's screenshots from a running demo site (make demo), in Debian's chromium.

Usage: python docs/screenshots.py [BASE_URL]   (default http://127.0.0.1:8000)
"""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000").rstrip("/")
OUT = Path(__file__).resolve().parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def login(page, username, password):
    page.goto(f"{BASE}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


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
        page.goto(f"{BASE}/studies/empathy-demo/items/post-26/")
        page.screenshot(path=OUT / "item-page.png", full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
