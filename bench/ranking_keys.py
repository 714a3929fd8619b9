"""Key presses and seconds a scripted annotator needs for one full ranking of the long-text screen,
before and after the rebuild for long texts (issue 12).

One screen: six long responses (1,000-1,500 characters, Markdown in them, as
tests/e2e/test_reading_screen.py builds them), four criteria, one English and one Chinese study.
The annotator ranks by keyboard alone, following each version's own help text:

  before (5867431, templates/annotating/partials/keys.html): "Tab to a letter, then press 1-9 to
    put it in that place". Tab walk (each Tab counted, the focus looked at after each, as a person
    looks at the focus ring) to a letter in the tray, a number key for its place among those
    already placed, again until every question is done, then Tab to "Submit ranking" and Enter.
    The order in which the letters are placed is the one that needs the fewest Tabs (all 720 tried
    per question on a model of the tab order; the walk itself is done for real).
  after (the working tree, the `?` help): a letter picks a response, a number puts it in that
    place of the current question, a finished question moves on by itself; Ctrl+Enter submits.
    The picked letter stays picked when the question moves on, so a question that begins with the
    response that ended the one before needs no letter. Also measured on the new screen: the plain
    path, a letter before every number (keys_after_plain).

Optionally (--mouse) the same ranking with the mouse: click each tray letter in order (both
versions put a clicked letter in the first free place), click Submit.

Counted: every keyboard.press/type call counts its keys (Control+Enter is 2 keys, and one press);
seconds from the screen being ready (#work[data-ready]) to the submit request's answer (the
ranking stored). The stored rankings are read back from the database and must equal the intended
ones, or the script fails.

Each version runs on its own live server (manage.py runserver --noreload, DEBUG=1, its own
PostgreSQL database, no Redis) from its own tree: the old one from a git worktree made here and
removed at the end. Usage:

    .venv/bin/python bench/ranking_keys.py [--reps 3] [--mouse] [--langs en,zh] [--only before|after]

Last line: RESULT {json}.
"""
import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD_REF = "5867431"
OLD_TREE = Path("/tmp/old_screen")
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
PG = "postgres://postgres@127.0.0.1:5432/"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
CRITERIA = ("fluency", "identification", "comforting", "suggestion")
ORDERS = {"fluency": "CAFBED", "identification": "ABCDEF", "comforting": "FEDCBA", "suggestion": "BADCFE"}
LETTERS = "ABCDEF"
PASSWORD = "bench-pass-123"

# The study, as tests/e2e/test_reading_screen.py builds it; made by each tree's own code.
SEED = r'''
import json, os
from django.contrib.auth import get_user_model
from annotations.models import Item, Membership, Response, Study, System
from annotations.studies.services import create_study
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
            + "You cared about this work, and that care has not gone anywhere. " * 16)[:1000 + 80 * n]
def zh_response(n):
    text = (f"## 第{n}部分\n\n听起来你这段时间真的很辛苦，晚上睡不着，白天还要面对工作的压力。**先做一件小事**：把领导说过的话写下来，"
            "再写下你担心它意味着什么。\n\n- 睡眠：每天同一时间起床。\n- 沟通：请领导举一个具体的例子。\n\n"
            + "你曾经热爱这份工作，这份在乎并没有消失。你的感受是真实的，也是可以被理解的。" * 40)
    return text[:1000 + 80 * n]
spec = json.loads(os.environ["BENCH_SEED"])
User = get_user_model()
owner = User.objects.create_user("bench-owner", password=spec["password"])
annotator = User.objects.create_user("bench", password=spec["password"])
lengths = []
for slug, lang in spec["studies"]:
    study = create_study(owner=owner, slug=slug, title="Counselling replies " + slug, criteria=spec["criteria"],
                         responses_per_screen=6, annotations_per_item=1, allow_ties=True)
    systems = System.objects.bulk_create(System(study=study, name=f"sys-{c}") for c in "abcdef")
    post, write = (ZH_POST, zh_response) if lang == "zh" else (EN_POST, en_response)
    item = Item.objects.create(study=study, external_id=lang + "-1", prompt=post)
    texts = [write(i + 1) for i in range(6)]
    lengths.append([len(t) for t in texts])
    Response.objects.bulk_create(Response(item=item, system=s, text=t) for s, t in zip(systems, texts))
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
    Membership.objects.create(study=study, user=annotator, role=Membership.Role.ANNOTATOR)
print("SEEDED " + json.dumps({"lengths": lengths}))
'''

# The stored rankings, per study and criterion, as tie groups of the letters the screen showed.
STORED = r'''
import json
from annotations.models import Assignment, Ranking, Response
out = {}
for a in Assignment.objects.filter(study__slug__startswith="b-").select_related("study"):
    system_of = dict(Response.objects.filter(pk__in=a.handles.values()).values_list("pk", "system_id"))
    letter_of = {system_of[a.handles[h]]: "ABCDEF"[i] for i, h in enumerate(a.shown_handles)}
    out[a.study.slug] = {"status": a.status, "rankings": {
        r.criterion.name: ["".join(letter_of[s] for s in group) for group in r.ranking]
        for r in Ranking.objects.filter(assignment=a, source="annotated").select_related("criterion")}}
print("STORED " + json.dumps(out))
'''


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_database(name):
    import psycopg
    with psycopg.connect(PG + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name):
    import psycopg
    with psycopg.connect(PG + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def site_env(database):
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "VAR_DIR", "MEDIA_ROOT", "PYTHONPATH")}
    env.update(DEBUG="1", DATABASE_URL=PG + database, LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    return env


def manage(tree, env, *args, stdin=None, extra_env=None):
    run_env = dict(env, **(extra_env or {}))
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=tree, env=run_env, capture_output=True, text=True,
                          input=stdin, timeout=600)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args[:1])} in {tree} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def marked(output, marker):
    line = next(line for line in output.splitlines() if line.startswith(marker + " "))
    return json.loads(line[len(marker) + 1:])


class Server:
    def __init__(self, tree, env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ranking_keys_server_", suffix=".log", delete=False)
        self.proc = subprocess.Popen([PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                                     cwd=tree, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(self.url + "/login/", timeout=5).read()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"server in {tree} did not start: {Path(self.log.name).read_text()[-3000:]}")
                time.sleep(0.3)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- The two keyboard paths ---------------------------------------------------------------------

class Counter:
    """Presses keys through Playwright and counts them: a press of "Control+Enter" is two keys."""

    def __init__(self, page):
        self.page = page
        self.keys = 0
        self.presses = 0
        self.clicks = 0
        self.words = []
        self.trail = []  # where the focus went on the first Tab walk
        self.first_walk = None

    def press(self, key, word=None):
        self.page.keyboard.press(key)
        self.presses += 1
        self.keys += len(key.split("+")) if len(key) > 1 else 1
        self.words.append(word or key)

    def click(self, locator, word):
        locator.click()
        self.clicks += 1
        self.words.append(word)


def focused(page):
    return page.evaluate("""() => {
        const e = document.activeElement;
        if (!e || e === document.body) return 'body';
        const token = e.closest && e.closest('.token');
        if (token) {
            const f = token.closest('fieldset.criterion');
            return 'token:' + f.dataset.criterion + ':' + token.dataset.letter + ':'
                + (token.parentElement.classList.contains('ranked') ? 'ranked' : 'tray');
        }
        if (e.matches('.rank-actions button.primary')) return 'submit';
        return e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : '');
    }""")


def insertion_place(placed, letter, order):
    """The place (1-based) that puts `letter` in its intended position among those placed so far."""
    return 1 + sum(1 for other in placed if order.index(other) < order.index(letter))


def old_plan(order):
    """The placing order with the fewest Tabs on the old screen's tab order: the focus stays on the
    letter just placed (now in the ranked row, which comes before the tray); Tab walks on through the
    ranked letters after it, then the tray in alphabetical order. Entering from before the question
    costs the tray index + 1; leaving costs the letters ranked after the last one placed."""
    best = None
    for perm in itertools.permutations(order):
        placed, tabs, focus = [], 0, None
        for letter in perm:
            tray = sorted(set(order) - set(placed))
            ahead = 0 if focus is None else len(placed) - 1 - placed.index(focus)
            tabs += ahead + tray.index(letter) + 1
            placed.insert(insertion_place(placed, letter, order) - 1, letter)
            focus = letter
        tabs += len(placed) - 1 - placed.index(focus)  # on to what comes after the question
        if best is None or tabs < best[0]:
            best = (tabs, perm)
    return best[1]


def tab_to(counter, want, limit=300):
    page = counter.page
    for _ in range(limit):
        counter.press("Tab")
        now = focused(page)
        if counter.trail is not None:
            counter.trail.append(now)
        if now == want:
            if counter.trail is not None:
                counter.first_walk, counter.trail = counter.trail, None  # the first walk only
            return
    raise RuntimeError(f"Tab never reached {want}")


def rank_old_keyboard(counter):
    """Old help: 'Tab to a letter, then press 1-9 to put it in that place'; then Tab to Submit, Enter."""
    page = counter.page
    for criterion in CRITERIA:
        order = ORDERS[criterion]
        placed = []
        for letter in old_plan(order):
            tab_to(counter, f"token:{criterion}:{letter}:tray")
            place = insertion_place(placed, letter, order)
            counter.press(str(place))
            placed.insert(place - 1, letter)
            if focused(page) != f"token:{criterion}:{letter}:ranked":
                raise RuntimeError(f"after {place} the focus is on {focused(page)}, not on {letter} in the ranking")
    tab_to(counter, "submit")
    counter.press("Enter")


def rank_new_keyboard(counter, plain=False):
    """New help: a letter picks it, 1-9 puts it in that place of the current question, a finished
    question moves on by itself, Ctrl+Enter submits. Unless plain, a question starts with the letter
    still picked from the question before (one letter key less)."""
    page = counter.page
    picked = None
    for criterion in CRITERIA:
        order = ORDERS[criterion]
        current = page.evaluate("() => document.querySelector('fieldset.criterion.current').dataset.criterion")
        if current != criterion:
            raise RuntimeError(f"the current question is {current}, not {criterion}")
        sequence = list(order)
        if not plain and picked in sequence:  # begin with the one still picked
            sequence.remove(picked)
            sequence.insert(0, picked)
        placed = []
        for letter in sequence:
            if letter != picked or plain:
                counter.press(letter.lower())
                picked = letter
                seen = look_new(page, criterion)
                if seen != (criterion, letter, None):
                    raise RuntimeError(f"after {letter.lower()} in {criterion}: {seen}")
            # The new number keys set absolute places: the intended place, whatever is placed so far.
            place = order.index(letter) + 1
            counter.press(str(place))
            placed.append(letter)
            seen = look_new(page, criterion)
            finished = len(placed) == len(order)
            if seen[1:] != (letter, place) or (seen[0] != criterion) != (finished and criterion != CRITERIA[-1]):
                raise RuntimeError(f"after {place} for {letter} in {criterion}: {seen}")
    counter.press("Control+Enter")


def look_new(page, criterion):
    """What a person sees after a key on the new screen: the current question, the picked letter
    and its place in `criterion` (None if not placed). One look per key, as the old walk looks per Tab."""
    return tuple(page.evaluate("""(criterion) => {
        const work = document.getElementById('work');
        const f = document.querySelector(`fieldset.criterion[data-criterion="${criterion}"]`);
        const letter = work.dataset.picked || null;
        const token = letter && f.querySelector(`.ranked .token[data-letter="${letter}"]`);
        return [document.querySelector('fieldset.criterion.current').dataset.criterion, letter,
                token ? Number(token.dataset.place) : null];
    }""", criterion))


def rank_mouse(counter, new):
    page = counter.page
    for criterion in CRITERIA:
        fieldset = page.locator(f"fieldset.criterion[data-criterion={criterion}]")
        for letter in ORDERS[criterion]:
            counter.click(fieldset.locator(f".tray .token[data-letter={letter}] .letter"), f"click {letter}")
    counter.click(page.locator(".rank-actions button.primary"), "click Submit")


# --- One run ---------------------------------------------------------------------------------------

def one_run(browser, server, slug, lang, mode, version, plain):
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN" if lang == "zh" else "en-GB")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/login/")
    page.fill("input[name=username]", "bench")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/annotate/{slug}/work/")
    page.wait_for_function("() => document.getElementById('work') && document.getElementById('work').dataset.ready")
    sizes = page.evaluate("""() => Array.from(document.querySelectorAll('#work article'))
                              .map(a => (a.querySelector('.text') || a).innerText.length)""")
    counter = Counter(page)
    with page.expect_response(lambda r: r.url.endswith("/submit/") and r.request.method == "POST",
                              timeout=60000) as answer:
        start = time.perf_counter()
        if mode == "mouse":
            rank_mouse(counter, version == "after")
        elif version == "before":
            rank_old_keyboard(counter)
        else:
            rank_new_keyboard(counter, plain or mode == "plain")
    log("   debug: keys done") if os.environ.get("BENCH_DEBUG") else None
    response = answer.value  # its status line comes after the view's transaction has committed
    seconds = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"submit answered {response.status}")
    log("   debug: answered") if os.environ.get("BENCH_DEBUG") else None
    refusal = page.locator("#rank-message .notice")
    if refusal.count():
        raise RuntimeError(f"submit refused: {refusal.first.inner_text()}")
    # Both versions then go on to the study's done page (its only item is ranked): let it load
    # before closing (closing a context mid-navigation hung once here).
    page.wait_for_url("**/done/", timeout=30000)
    page.wait_for_load_state()
    log("   debug: closing") if os.environ.get("BENCH_DEBUG") else None
    context.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return {"keys": counter.keys, "presses": counter.presses, "clicks": counter.clicks,
            "seconds": round(seconds, 3), "words": counter.words, "shown_text_lengths": sizes,
            "first_walk": counter.first_walk}


def describe(words):
    """'Tab x7, 2, Tab x1, 1, ...' from the pressed keys in order."""
    out = []
    for key, group in itertools.groupby(words):
        n = len(list(group))
        out.append(f"{key} x{n}" if n > 1 else key)
    return ", ".join(out)


def run_version(version, tree, database, runs, plain):
    from playwright.sync_api import sync_playwright
    log(f"== {version}: {tree} ({database})")
    recreate_database(database)
    env = site_env(database)
    manage(tree, env, "migrate", "--noinput")
    seeded = marked(manage(tree, env, "shell", "-c", SEED, extra_env={"BENCH_SEED": json.dumps(
        {"password": PASSWORD, "criteria": list(CRITERIA),
         "studies": [[slug, lang] for slug, lang, _, _ in runs]})}), "SEEDED")
    log(f"   response lengths (characters, per study): {seeded['lengths'][:2]}")
    server = Server(tree, env)
    results = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for slug, lang, mode, rep in runs:
                    r = one_run(browser, server, slug, lang, mode, version, plain)
                    results[slug] = dict(r, lang=lang, mode=mode, rep=rep)
                    log(f"   {slug}: {r['keys']} keys / {r['presses']} presses / {r['clicks']} clicks, "
                        f"{r['seconds']:.2f} s")
            finally:
                browser.close()
    finally:
        server.stop()
    stored = marked(manage(tree, env, "shell", "-c", STORED), "STORED")
    for slug, r in results.items():
        got = stored.get(slug)
        want = {c: list(ORDERS[c]) for c in CRITERIA}
        if not got or got["status"] != "submitted" or got["rankings"] != want:
            raise SystemExit(f"{version} {slug}: stored {got}, intended {want}: the count does not stand")
        r["verified"] = True
    drop_database(database)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--langs", default="en,zh")
    parser.add_argument("--mouse", action="store_true", help="also rank with the mouse (clicks)")
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--keep-worktree", action="store_true")
    parser.add_argument("--only", choices=("before", "after"))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    modes = ["keyboard"] + (["mouse"] if args.mouse else [])
    runs = [(f"b-{lang}-{mode[0]}-{rep}", lang, mode, rep)
            for rep in range(1, args.reps + 1) for lang in args.langs.split(",") for mode in modes]
    # The new screen also without keeping the picked letter (the plain path: a letter before every number).
    plain_runs = [(f"b-{lang}-p-{rep}", lang, "plain", rep)
                  for rep in range(1, args.reps + 1) for lang in args.langs.split(",")]
    made_tree = False
    if args.only != "after" and not OLD_TREE.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(OLD_TREE), args.old_ref],
                       check=True, capture_output=True)
        made_tree = True
    try:
        results = {}
        if args.only != "after":
            results["before"] = run_version("before", OLD_TREE, "evalsite_j_old", runs, False)
        if args.only != "before":
            results["after"] = run_version("after", REPO, "evalsite_j_new", runs + plain_runs, False)
    finally:
        if made_tree and not args.keep_worktree:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(OLD_TREE)],
                           capture_output=True)

    summary = {}
    for version, by_slug in results.items():
        tag = {"before": "before", "after": "after"}[version]
        keyboard = [r for r in by_slug.values() if r["mode"] == "keyboard"]
        summary[f"keys_{tag}"] = statistics.median_low(r["keys"] for r in keyboard)
        summary[f"seconds_{tag}"] = round(statistics.median(r["seconds"] for r in keyboard), 3)
        summary[f"keys_{tag}_runs"] = [r["keys"] for r in keyboard]
        summary[f"presses_{tag}_runs"] = [r["presses"] for r in keyboard]
        summary[f"seconds_{tag}_runs"] = [r["seconds"] for r in keyboard]
        summary[f"runs_{tag}"] = [f"{r['lang']}#{r['rep']}" for r in keyboard]
        plain = [r for r in by_slug.values() if r["mode"] == "plain"]
        if plain:
            summary[f"keys_{tag}_plain"] = statistics.median_low(r["keys"] for r in plain)
            summary[f"seconds_{tag}_plain"] = round(statistics.median(r["seconds"] for r in plain), 3)
            summary[f"keys_{tag}_plain_runs"] = [r["keys"] for r in plain]
            summary[f"seconds_{tag}_plain_runs"] = [r["seconds"] for r in plain]
            print(f"{version} plain keyboard path ({plain[0]['lang']}): {describe(plain[0]['words'])}")
        mouse = [r for r in by_slug.values() if r["mode"] == "mouse"]
        if mouse:
            summary[f"clicks_{tag}"] = statistics.median_low(r["clicks"] for r in mouse)
            summary[f"mouse_seconds_{tag}"] = round(statistics.median(r["seconds"] for r in mouse), 3)
            summary[f"clicks_{tag}_runs"] = [r["clicks"] for r in mouse]
            summary[f"mouse_seconds_{tag}_runs"] = [r["seconds"] for r in mouse]
        first = keyboard[0]
        print(f"{version} keyboard path ({first['lang']}): {describe(first['words'])}")
        print(f"{version} shown text lengths: {first['shown_text_lengths']}")
        if first.get("first_walk"):
            print(f"{version} first Tab walk went through: {' > '.join(first['first_walk'])}")
        lengths = {len(r["words"]) for r in keyboard}
        if len({tuple(r["words"]) for r in keyboard}) > 1:
            print(f"{version}: the key path differs between runs ({lengths})")
    summary["verified"] = all(r.get("verified") for by_slug in results.values() for r in by_slug.values())
    summary["machine"] = f"{os.cpu_count()} CPUs, loaded (CI running beside); chromium headless {VIEWPORT}"
    print("RESULT " + json.dumps(summary))


if __name__ == "__main__":
    main()
