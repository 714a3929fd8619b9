"""The embedded default (SQLite, DEBUG on, tasks in process) with many people at once: the site
runs for real in a subprocess and a dozen annotators sign up, fetch screens and rank together."""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ANNOTATORS = 12
RANKINGS_EACH = 2

SETUP = """
import io, json
from django.contrib.auth import get_user_model
from annotations.models import Study
from annotations.studies import services
owner = get_user_model().objects.create_user("rita", password="not-used-here")
study = services.create_study(owner=owner, slug="busy", title="Busy study",
                              criteria=["overall", "comforting"], responses_per_screen=3,
                              annotations_per_item=3)
rows = [{"item_id": f"p{i}", "prompt": f"Post {i}: I feel lost at work.", "system": system,
         "response": f"{system} answers post {i}."}
        for i in range(20) for system in ("alpha", "beta", "gamma")]
services.import_outputs(study, io.BytesIO("\\n".join(json.dumps(r) for r in rows).encode()),
                        filename="outputs.jsonl")
services.set_study_status(study, Study.Status.OPEN)
print("TOKEN", Study.objects.get(slug="busy").invite_token)
"""

COUNT = """
import json
from annotations.models import Ranking
print("ROWS", json.dumps(list(Ranking.objects.values_list("assignment__public_id", "criterion__name"))))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sqlite_site(tmp_path):
    """(base url, invitation token, a `shell` runner) for a site on a fresh SQLite file."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS")}
    env.update(DEBUG="1", VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               PYTHONUNBUFFERED="1")

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "--verbosity", "0")
    token = re.search(r"TOKEN (\S+)", manage("shell", "-c", SETUP)).group(1)
    port = _free_port()
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"the site did not start:\n{log.read()}")
                time.sleep(0.2)
        yield base, token, lambda code: manage("shell", "-c", code)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _csrf(html):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def _annotator(base, token, n, barrier):
    """Sign up through the invitation, then rank RANKINGS_EACH screens; return what went wrong
    (every 5xx, with its path) and the assignments submitted."""
    failures, submitted = [], []

    def check(reply):
        if reply.status_code >= 500:
            failures.append(f"{reply.request.method} {reply.request.url.path}: {reply.status_code}")
        return reply

    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as web:
        form = check(web.get(f"/join/{token}/"))
        barrier.wait()  # everyone signs up at the same instant
        reply = check(web.post(f"/join/{token}/", data={
            "csrfmiddlewaretoken": _csrf(form.text), "username": f"annotator{n}",
            "password1": "a-long-enough-passphrase-7", "password2": "a-long-enough-passphrase-7"}))
        if reply.status_code != 200:
            return failures, submitted
        for _ in range(RANKINGS_EACH):
            screen = check(web.get("/annotate/busy/work/"))
            action = re.search(r'action="(/annotate/busy/([^/"]+)/submit/)"', screen.text)
            if screen.status_code != 200 or action is None:
                break
            handles = list(dict.fromkeys(re.findall(r'data-handle="([^"]+)"', screen.text)))
            ranking = json.dumps([[h] for h in handles])
            check(web.post(unescape(action.group(1)), data={
                "csrfmiddlewaretoken": _csrf(screen.text), "rank-overall": ranking,
                "rank-comforting": ranking}))
            submitted.append(action.group(2))
    return failures, submitted


def test_a_dozen_annotators_at_once_on_sqlite_get_no_errors_and_every_ranking_is_stored_once(sqlite_site):
    base, token, shell = sqlite_site
    barrier = threading.Barrier(ANNOTATORS, timeout=120)
    with ThreadPoolExecutor(ANNOTATORS) as pool:
        results = list(pool.map(lambda n: _annotator(base, token, n, barrier), range(ANNOTATORS)))

    failures = [f for fails, _ in results for f in fails]
    assert failures == [], f"{len(failures)} server errors: {failures[:10]}"
    submitted = [public_id for _, ids in results for public_id in ids]
    assert len(submitted) == ANNOTATORS * RANKINGS_EACH

    rows = json.loads(re.search(r"ROWS (.*)", shell(COUNT)).group(1))
    stored = sorted((public_id, criterion) for public_id, criterion in rows)
    expected = sorted((public_id, criterion) for public_id in submitted for criterion in ("overall", "comforting"))
    assert stored == expected  # each submitted ranking once, per criterion; nothing else
