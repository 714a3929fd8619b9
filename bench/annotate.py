"""Benchmark: simulated annotators ranking over HTTP against gunicorn on PostgreSQL.

Starts the site under gunicorn (gunicorn.conf.py, bound to 127.0.0.1) on a database of its own
(evalsite_bench_annotate, created here and dropped at the end), seeds an open study, and runs:
  floor      N clients GET /healthz (a trivial Django view: one SELECT 1) as fast as they can;
  capacity   N annotators submit rankings as fast as they can: one POST per item, which stores
             the ranking and answers with the next item's screen, as htmx does in the browser.
             Floor and capacity alternate for --rounds rounds; their medians are compared.
  paced      N annotators with a think time per item (0..2 x --think-ms, far quicker than people,
             who take 30 s or more), for the latency an annotator feels: p50 and p95;
  burst      --burst annotators open the ranking screen at the same instant on a study of 20 items
             x 3 rankings and rank until nothing is left: no item may get more than its quota.
Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/annotate.py
       [--annotators 50]. Last line: RESULT {json} with submissions_per_s, p95_ms, over_assigned
       and ratio_vs_floor (capacity submissions per second / floor requests per second; a measure of
       the site's cost per submission, with no target: see README, "Benchmarks").
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "evalsite_bench_annotate"
SLUG, BURST_SLUG = "bench-annotate", "bench-burst"
HOST = "127.0.0.1"

FORM_ACTION = re.compile(r'hx-post="(/annotate/[^"]+/submit/)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CRITERION = re.compile(r'<fieldset class="criterion" data-criterion="([^"]+)">(.*?)</fieldset>', re.S)
HANDLE = re.compile(r'data-handle="([^"]+)"')
WORDS = ("I feel tired anxious lonely work exam family friend sleep night worry future hope "
         "心情 压力 朋友 家人 考试 睡不着 and the a to of it is that was for with my me").split()


def admin_connection():
    import dj_database_url
    import psycopg

    url = dj_database_url.parse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    if url["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/annotate.py measures PostgreSQL: set DATABASE_URL to a PostgreSQL server")
    connection = psycopg.connect(host=url["HOST"] or HOST, port=url["PORT"] or 5432, user=url["USER"],
                                 password=url["PASSWORD"], dbname="postgres", autocommit=True)
    base = f"postgres://{url['USER']}{':' + url['PASSWORD'] if url['PASSWORD'] else ''}@" \
           f"{url['HOST'] or HOST}:{url['PORT'] or 5432}"
    return connection, f"{base}/{BENCH_DB}"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def seed(annotators, items, burst_annotators):
    """An open study (5 systems, 5 per screen, 2 criteria, ties allowed) and annotator sessions."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from annotations.studies import services
    from annotations.models import Item, Membership, Response, Study, System

    call_command("migrate", verbosity=0)
    User = get_user_model()
    owner = User.objects.create_user("bench-researcher", password="bench-only")
    rng = random.Random(3)

    def study(slug, n_items):
        made = services.create_study(owner=owner, slug=slug, title="Annotation benchmark",
                                     criteria=["overall", "comforting"], responses_per_screen=5,
                                     annotations_per_item=3, allow_ties=True, instructions="Rank them.")
        systems = System.objects.bulk_create(System(study=made, name=f"system-{s}") for s in range(5))
        rows = Item.objects.bulk_create(
            Item(study=made, external_id=f"post-{i}", prompt=" ".join(rng.choice(WORDS) for _ in range(150)))
            for i in range(n_items))
        Response.objects.bulk_create(
            Response(item=item, system=system, text=" ".join(rng.choice(WORDS) for _ in range(120)))
            for item in rows for system in systems)
        Study.objects.filter(pk=made.pk).update(status=Study.Status.OPEN)
        return made

    def sessions(made, n, prefix):
        users = User.objects.bulk_create(User(username=f"{prefix}-{i}", password="!") for i in range(n))
        Membership.objects.bulk_create(Membership(study=made, user=u, role=Membership.Role.ANNOTATOR) for u in users)
        keys = []
        for user in users:
            store = SessionStore()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.create()
            keys.append(store.session_key)
        return keys

    main_study = study(SLUG, items)
    burst_study = study(BURST_SLUG, 20)
    return (sessions(main_study, annotators, "ann"), sessions(burst_study, burst_annotators, "burst"),
            settings.SESSION_COOKIE_NAME)


class Annotator:
    """One simulated annotator: a session cookie, a connection, and the screen in front of them."""

    def __init__(self, port, session_key, cookie_name, slug):
        self.port, self.slug = port, slug
        self.cookies = {cookie_name: session_key}
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)
        self.screen = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):  # a sync worker closes the connection after each response
            try:
                self.connection.request(method, path, body=body, headers=headers)
                reply = self.connection.getresponse()
                data = reply.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt:
                    raise
        for header, value in reply.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return reply, data.decode("utf-8", "replace")

    def open_screen(self):
        reply, page = self.request("GET", f"/annotate/{self.slug}/work/")
        if reply.status != 200:
            return False
        self._read(page, initial=True)
        return True

    def _read(self, page, initial=False):
        action = FORM_ACTION.search(page)
        if not action:
            self.screen = None
            return
        token = CSRF.search(page).group(1) if initial else self.screen["csrf"]
        criteria = {name: HANDLE.findall(body) for name, body in CRITERION.findall(page)}
        self.screen = {"action": action.group(1), "csrf": token, "criteria": criteria}

    def submit(self, rng):
        """Rank the screen's responses (a random weak order per criterion) and read the next screen."""
        fields = {"csrfmiddlewaretoken": self.screen["csrf"], "rationale": ""}
        for name, handles in self.screen["criteria"].items():
            handles = handles[:]
            rng.shuffle(handles)
            groups = [[handles[0]]]
            for handle in handles[1:]:
                if rng.random() < 0.15:
                    groups[-1].append(handle)
                else:
                    groups.append([handle])
            fields[f"rank-{name}"] = json.dumps(groups)
        body = urlencode(fields)
        reply, page = self.request("POST", self.screen["action"], body, {
            "Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
            "Referer": f"http://{HOST}:{self.port}/annotate/{self.slug}/work/",
            "Origin": f"http://{HOST}:{self.port}"})
        if reply.status != 200:
            raise RuntimeError(f"submit answered {reply.status}: {page[:300]}")
        if reply.getheader("HX-Redirect"):
            self.screen = None
        else:
            self._read(page)
        return True


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server_group):
    """CPU seconds used so far by the web server (its process group, workers already reaped
    included), by PostgreSQL (every process of the cluster) and by this client process."""
    used = {"server": 0.0, "database": 0.0}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name, fields = stat[stat.find("(") + 1:stat.rfind(")")], stat[stat.rfind(")") + 2:].split()
        seconds = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
        if int(fields[2]) == server_group:
            used["server"] += seconds
        elif name.startswith("postgres"):
            used["database"] += seconds
    own = os.times()
    used["client"] = own.user + own.system
    return used


def run_clients(n, seconds, body, warmup=1.0, server_group=None):
    """n threads run body(i, deadline, record) until the deadline; returns the latencies in the
    window and, given the server's process group, the CPU seconds each side used in it ({} if not)."""
    start = time.perf_counter() + warmup
    deadline = start + seconds
    latencies, errors, lock = [], [], threading.Lock()
    cpu = {}

    def meter():
        time.sleep(max(0.0, start - time.perf_counter()))
        before = cpu_seconds(server_group)
        time.sleep(max(0.0, deadline - time.perf_counter()))
        after = cpu_seconds(server_group)
        cpu.update({side: after[side] - before[side] for side in after})

    def record(started, finished):
        if start <= started and finished <= deadline:
            with lock:
                latencies.append(finished - started)

    def target(i):
        try:
            body(i, deadline, record)
        except Exception as exc:  # noqa: BLE001 - reported below, and the run fails
            errors.append(repr(exc))

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    if server_group is not None:
        threads.append(threading.Thread(target=meter, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + warmup + 60)
    if errors:
        sys.exit(f"{len(errors)} client errors, e.g. {errors[0]}")
    return latencies, cpu


def per_request_ms(rounds):
    """The median over rounds of each side's CPU milliseconds per request."""
    return {side: round(statistics.median(r[side] for r in rounds) * 1000, 2) for side in rounds[0]}


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] * 1000 if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating floor and capacity rounds")
    parser.add_argument("--think-ms", type=float, default=2000.0,
                        help="mean think time per item in the paced phase (people take 30 s or more)")
    parser.add_argument("--burst", type=int, default=200, help="annotators opening the screen at once")
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()

    admin, bench_url = admin_connection()
    admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {BENCH_DB}")
    os.environ["DATABASE_URL"] = bench_url
    os.environ.update(DEBUG="0", SECRET_KEY="bench-annotate-only-" + "x" * 40, ALLOWED_HOSTS=HOST,
                      SECURE_SSL_REDIRECT="0", DJANGO_SETTINGS_MODULE="evalsite.settings",
                      CSRF_TRUSTED_ORIGINS=f"http://{HOST}")
    server = None
    try:
        keys, burst_keys, cookie_name = seed((args.rounds + 1) * args.annotators, args.items, args.burst)
        port = free_port()
        env = dict(os.environ, GUNICORN_ACCESS_LOG="", CSRF_TRUSTED_ORIGINS=f"http://{HOST}:{port}")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "evalsite.wsgi", "-c", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"{HOST}:{port}"], cwd=ROOT, env=env, start_new_session=True)
        for _ in range(100):
            try:
                http.client.HTTPConnection(HOST, port, timeout=2).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit("gunicorn did not start")
        workers = env.get("GUNICORN_WORKERS") or os.cpu_count() * 2 + 1
        print(f"gunicorn on {HOST}:{port}, {workers} workers, {os.cpu_count()} CPUs; "
              f"{args.items} items x 3 rankings; {args.annotators} annotators")

        # floor: the same server, the same number of clients, a trivial Django view
        def floor(i, deadline, record):
            connection = http.client.HTTPConnection(HOST, port, timeout=30)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                connection.request("GET", "/healthz")
                reply = connection.getresponse()
                reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"/healthz answered {reply.status}")
                record(started, time.perf_counter())
                if reply.getheader("Connection", "").lower() == "close":
                    connection.close()

        def annotating(sessions, think_ms):
            def body(i, deadline, record):
                rng = random.Random(i)
                person = Annotator(port, sessions[i], cookie_name, SLUG)
                if not person.open_screen():
                    raise RuntimeError("the ranking screen did not open")
                for _ in range(100_000):
                    if time.perf_counter() >= deadline or person.screen is None:
                        return
                    if think_ms:
                        time.sleep(rng.uniform(0, 2 * think_ms) / 1000)
                    started = time.perf_counter()
                    person.submit(rng)
                    record(started, time.perf_counter())
            return body

        # Warm up first: the workers boot one after another, and the first seconds measure that.
        run_clients(args.annotators, 2.0, floor, warmup=0.0)
        # Floor and capacity alternate, several rounds, and the medians are compared: this machine
        # is shared, and its load changes from one second to the next. Each side's CPU time is
        # metered over the same windows: the server, PostgreSQL and the clients share two cores,
        # so CPU per request says where the cycle's cost lies, which the rates alone cannot.
        floor_rates, capacity_rates, capacity = [], [], []
        floor_cpu, capacity_cpu = [], []
        for round_no in range(args.rounds):
            latencies, cpu = run_clients(args.annotators, args.seconds, floor, server_group=server.pid)
            floor_rates.append(len(latencies) / args.seconds)
            floor_cpu.append({side: used / max(1, len(latencies)) for side, used in cpu.items()})
            sessions = keys[round_no * args.annotators:(round_no + 1) * args.annotators]
            latencies, cpu = run_clients(args.annotators, args.seconds, annotating(sessions, 0),
                                         server_group=server.pid)
            capacity_rates.append(len(latencies) / args.seconds)
            capacity_cpu.append({side: used / max(1, len(latencies)) for side, used in cpu.items()})
            capacity += latencies
            print(f"round {round_no + 1}: floor (GET /healthz) {floor_rates[-1]:,.0f} requests/s, "
                  f"annotation {capacity_rates[-1]:,.0f} submissions/s")
        floor_rps = statistics.median(floor_rates)
        submissions_per_s = statistics.median(capacity_rates)
        cpu_floor, cpu_cycle = per_request_ms(floor_cpu), per_request_ms(capacity_cpu)
        # When the CPUs are the limit, throughput goes as 1 / CPU per request. With a web tier that
        # cost nothing, a submission would still cost its database and client time: the ratio's ceiling.
        ceiling = sum(cpu_floor.values()) / (cpu_cycle["database"] + cpu_cycle["client"])
        print(f"CPU ms per floor request: {cpu_floor}; per submission: {cpu_cycle}")
        print(f"the ratio if the web server's own work per submission cost nothing: {ceiling:.2f}")
        print(f"capacity: median {submissions_per_s:,.0f} submissions/s (p50 {percentile(capacity, 50):.0f} ms, "
              f"p95 {percentile(capacity, 95):.0f} ms with no think time: that latency is queueing)")
        sessions = keys[args.rounds * args.annotators:]
        paced, _cpu = run_clients(args.annotators, args.seconds * 2, annotating(sessions, args.think_ms))
        p50, p95 = percentile(paced, 50), percentile(paced, 95)
        print(f"paced: {args.annotators} annotators thinking 0..{2 * args.think_ms / 1000:.1f} s per item: "
              f"{len(paced) / (args.seconds * 2):,.0f} submissions/s, p50 {p50:.1f} ms, p95 {p95:.1f} ms")

        # burst: everyone opens the screen at the same instant, then ranks until nothing is left
        barrier = threading.Barrier(args.burst)
        burst_errors = []

        def burst(i):
            try:
                person = Annotator(port, burst_keys[i], cookie_name, BURST_SLUG)
                barrier.wait(timeout=60)
                if not person.open_screen():
                    return
                rng = random.Random(i)
                for _ in range(50):
                    if person.screen is None:
                        return
                    person.submit(rng)
            except Exception as exc:  # noqa: BLE001
                burst_errors.append(repr(exc))

        threads = [threading.Thread(target=burst, args=(i,), daemon=True) for i in range(args.burst)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        if burst_errors:
            sys.exit(f"burst: {len(burst_errors)} errors, e.g. {burst_errors[0]}")

        from django.db.models import Count
        from django.utils import timezone

        from annotations.models import Assignment, Item

        now = timezone.now()
        over, items_checked = 0, 0
        for slug in (SLUG, BURST_SLUG):
            for item in Item.objects.filter(study__slug=slug).only("pk", "study"):
                items_checked += 1
                taken = Assignment.objects.live(now).filter(item=item).count()
                over += taken > 3
        twice = (Assignment.objects.values("item", "annotator").order_by().annotate(n=Count("pk"))
                 .filter(n__gt=1).count())
        burst_full = Assignment.objects.filter(study__slug=BURST_SLUG, status="submitted").count()
        print(f"burst: {args.burst} annotators at once on 20 items x 3: {burst_full} rankings stored; "
              f"over-assigned items: {over} of {items_checked}; an annotator twice on an item: {twice}")
        ratio = submissions_per_s / floor_rps
        # No target for the ratio: on a 2-core machine PostgreSQL's own work per submission caps it
        # near 0.27 (README, "Benchmarks"); it is reported to follow the site's cost per submission.
        print(f"ratio vs floor: {ratio:.2f}; p95 {p95:.1f} ms (target < 100)")
        print("RESULT " + json.dumps({
            "submissions_per_s": round(submissions_per_s, 1), "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
            "p95_ms_at_capacity": round(percentile(capacity, 95), 1), "over_assigned": over + twice,
            "floor_requests_per_s": round(floor_rps, 1), "ratio_vs_floor": round(ratio, 3),
            "cpu_ms_per_floor_request": cpu_floor, "cpu_ms_per_submission": cpu_cycle,
            "ratio_ceiling_free_web_tier": round(ceiling, 3),
            "annotators": args.annotators, "think_ms": args.think_ms, "burst_annotators": args.burst}))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
