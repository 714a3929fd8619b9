"""Benchmark: 100,000 output rows (6 systems) through the upload API, against PostgreSQL COPY;
then the peak memory of one upload per format (JSONL, CSV, AlpacaEval JSON, a file with one huge line).

Both throughput runs are in the same process on the same database, one after the other, so the
ratio holds on a noisy machine. Each memory case runs in a fresh process of its own, streaming its
request body from disk, so that neither the benchmark's data nor an earlier upload's freed memory
hides what the upload costs. Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite
python bench/ingest.py [--rows N] [--huge-mb 200] [--skip-throughput]. The last line printed is
`RESULT {json}` with rows_per_s, ratio_vs_copy and peak_memory_over_file (peak resident memory
growth during the upload, divided by the file's size, per format).
"""
import argparse
import csv
import gc
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalsite")
BENCH_DB = "evalsite_bench"

WORDS = ("I feel tired anxious lonely work exam family friend sleep night worry future hope "
         "心情 压力 朋友 家人 考试 睡不着 and the a to of it is that was for with my me").split()


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_rows(n_rows, n_systems=6, seed=7):
    rng = random.Random(seed)
    systems = [f"system-{s}" for s in range(n_systems)]
    rows = []
    for i in range((n_rows + n_systems - 1) // n_systems):
        prompt = text(rng, 120)
        for system in systems:
            if len(rows) == n_rows:
                break
            rows.append({"item_id": f"post-{i}", "prompt": prompt, "system": system,
                         "response": text(rng, 100), "metadata": {"language": "en"}})
    return rows


def write_file(path, rows, file_format):
    """The rows as an upload file: JSONL, CSV (metadata as JSON text), or AlpacaEval JSON (one
    list on one line, as json.dump writes it: the whole file is a single physical line)."""
    with open(path, "wb") as handle:
        if file_format == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        elif file_format == "csv":
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(["item_id", "prompt", "system", "response", "metadata"])
            for row in rows:
                writer.writerow([row["item_id"], row["prompt"], row["system"], row["response"],
                                 json.dumps(row["metadata"])])
            text.flush()
            text.detach()
        else:
            entries = [{"instruction": r["prompt"], "output": r["response"], "generator": r["system"],
                        "item_id": r["item_id"], "dataset": "bench"} for r in rows]
            handle.write(json.dumps(entries, ensure_ascii=False).encode())


def write_huge_line_file(path, megabytes, rng):
    """A JSONL file whose second line is one row of about `megabytes` MB (far over any row's
    limit), between good rows and followed by a bad one: refused with every problem located."""
    good = make_rows(2, n_systems=2, seed=11)
    piece = json.dumps(text(rng, 200), ensure_ascii=False)[1:-1] + " "
    with open(path, "wb") as handle:
        handle.write(json.dumps(good[0], ensure_ascii=False).encode() + b"\n")
        handle.write(b'{"item_id": "huge", "prompt": "A post", "system": "system-0", "response": "')
        block = (piece * (2**20 // len(piece.encode()) + 1)).encode()[:2**20]
        block = block.decode("utf-8", "ignore").encode()
        for _ in range(megabytes * 10**6 // len(block)):
            handle.write(block)
        handle.write(b'"}\n')
        handle.write(json.dumps(good[1], ensure_ascii=False).encode() + b"\n")
        handle.write(b'{"item_id": "bad", "prompt": "A post", "system": "system-0"}\n')


def write_body(body_path, file_path, filename, boundary="BoUnDaRy"):
    """A multipart/form-data request body holding one file, written to disk without loading it."""
    with open(body_path, "wb") as body, open(file_path, "rb") as upload:
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                   "Content-Type: application/octet-stream\r\n\r\n".encode())
        shutil.copyfileobj(upload, body, 2**20)
        body.write(f"\r\n--{boundary}--\r\n".encode())


class PeakMemory:
    """The peak resident memory of this process while the block runs, above what it held before.

    Linux keeps the peak (VmHWM) and lets a process reset it (writing 5 to clear_refs), which sees
    even a peak inside one C call. Where that is not allowed, a thread samples the resident size
    every 2 ms instead (it misses a peak shorter than that, or one that holds the interpreter lock).
    """

    def __enter__(self):
        gc.collect()
        self.before = self._resident()
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self._sampler = None
        except OSError:
            self._peak = self.before
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *exc):
        if self._sampler is None:
            status = Path("/proc/self/status").read_text()
            self.peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
        else:
            self._stop.set()
            self._sampler.join()
            self.peak = max(self._peak, self._resident())
        self.growth = max(0, self.peak - self.before)
        return False

    def _sample(self):
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, self._resident())

    @staticmethod
    def _resident():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_case(warmup_body, body, expect):
    """In a fresh process: one upload through the API, its request body streamed from disk.

    A small upload of the same format first loads every module the path needs, so the peak
    measured is the upload's own. Prints one JSON line."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from annotations.studies import services

    settings.ALLOWED_HOSTS = ["testserver"]
    # The upload itself is measured, not the hand-over of a large file to a background worker.
    settings.EVALSITE_BACKGROUND_BYTES = 2**62
    user = get_user_model().objects.get(username="bench")
    client = APIClient()
    client.force_authenticate(user)
    tag = f"{os.getpid()}-{time.monotonic_ns()}"

    def post(path, slug):
        study = services.create_study(owner=user, slug=slug, title="Memory benchmark")
        size = os.path.getsize(path)
        with open(path, "rb") as stream:
            return client.generic("POST", f"/api/studies/{study.slug}/outputs/", "",
                                  content_type="multipart/form-data; boundary=BoUnDaRy",
                                  CONTENT_LENGTH=str(size), **{"wsgi.input": stream})

    warm = post(warmup_body, f"warm-{tag}")
    assert warm.status_code == 201, (warm.status_code, warm.content[:300])
    started = time.perf_counter()
    with PeakMemory() as memory:
        reply = post(body, f"mem-{tag}")
    seconds = time.perf_counter() - started
    errors = [e["text"][:200] for e in reply.json().get("errors", [])] if reply.status_code >= 400 else []
    print(json.dumps({"status": reply.status_code, "expected": expect, "seconds": round(seconds, 2),
                      "growth_bytes": memory.growth, "errors": errors[:5]}))


MEMORY_CASES = {"jsonl": ("outputs.jsonl", 201), "csv": ("outputs.csv", 201),
                 "alpaca": ("model_outputs.json", 201), "huge_line": ("huge.jsonl", 400)}


def measure_memory(rows, huge_mb, cases=tuple(MEMORY_CASES)):
    """Peak memory of one upload per format, each in a fresh process: {case: (growth, file size)}."""
    results = {}
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        folder = Path(folder)
        for case in cases:
            filename, expect = MEMORY_CASES[case]
            file_format = "jsonl" if case == "huge_line" else case
            upload, body = folder / filename, folder / "body"
            warm_file, warm_body = folder / f"warm-{filename}", folder / "warm-body"
            write_file(warm_file, make_rows(60, seed=3), file_format)
            write_body(warm_body, warm_file, filename)
            if case == "huge_line":
                write_huge_line_file(upload, huge_mb, rng)
            else:
                write_file(upload, rows, file_format)
            write_body(body, upload, filename)
            size = os.path.getsize(upload)
            upload.unlink()
            done = subprocess.run([sys.executable, __file__, "--memory-case", str(warm_body), str(body), str(expect)],
                                  capture_output=True, text=True, env=os.environ)
            body.unlink()
            if done.returncode != 0:
                sys.exit(f"memory case {case} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
            report = json.loads(done.stdout.strip().splitlines()[-1])
            if report["status"] != expect:
                sys.exit(f"memory case {case}: expected {expect}, got {report}")
            print(f"memory, {case}: file {size / 2**20:.1f} MiB, peak growth {report['growth_bytes'] / 2**20:.1f} MiB "
                  f"({report['growth_bytes'] / size:.2f} of the file), {report['seconds']:.1f} s"
                  + (f"; refused: {report['errors'][0]}" if report["errors"] else ""))
            results[case] = (report["growth_bytes"], size)
    return results


def use_bench_database():
    """Point Django at a fresh database of its own, so the benchmark never touches real data."""
    import dj_database_url
    import psycopg

    url = dj_database_url.parse(os.environ["DATABASE_URL"])
    if url["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench/ingest.py compares against PostgreSQL COPY: set DATABASE_URL to PostgreSQL")
    admin = psycopg.connect(host=url["HOST"], port=url["PORT"] or 5432, user=url["USER"],
                            password=url["PASSWORD"], dbname="postgres", autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {BENCH_DB}")
    admin.close()
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    os.environ["DATABASE_URL"] = f"{base}/{BENCH_DB}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds of each (median kept)")
    parser.add_argument("--huge-mb", type=int, default=200, help="size of the one huge line, in MB")
    parser.add_argument("--skip-throughput", action="store_true", help="measure memory only")
    parser.add_argument("--cases", default=",".join(MEMORY_CASES), help="memory cases, comma-separated")
    parser.add_argument("--memory-case", nargs=3, metavar=("WARMUP_BODY", "BODY", "EXPECTED_STATUS"),
                        help=argparse.SUPPRESS)  # the child process of one memory case
    args = parser.parse_args()
    if args.memory_case:
        warmup_body, body, expect = args.memory_case
        return memory_case(warmup_body, body, int(expect))

    use_bench_database()
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.client import encode_multipart
    from rest_framework.test import APIClient

    from annotations import db
    from annotations.studies import services
    from annotations.models import Item, Response, System
    from django.db import transaction
    from django.utils import timezone

    settings.ALLOWED_HOSTS = ["testserver"]
    # The upload itself is measured, not the hand-over of a large file to a background worker.
    settings.EVALSITE_BACKGROUND_BYTES = 2**62
    call_command("migrate", verbosity=0)
    rows = make_rows(args.rows)
    print(f"{len(rows):,} rows, {len({r['item_id'] for r in rows}):,} items, 6 systems")
    if args.skip_throughput:
        get_user_model().objects.create_user("bench", password="bench-only")
        memory = measure_memory(rows, args.huge_mb, args.cases.split(","))
        print("RESULT " + json.dumps({"rows": len(rows), **memory_result(memory)}))
        return

    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        path = handle.name
    size = os.path.getsize(path)
    print(f"file: {size / 2**20:.1f} MiB JSONL")


    tuples = [(r["item_id"], r["prompt"], r["system"], r["response"], json.dumps(r["metadata"])) for r in rows]
    binary_tuples = [(r["item_id"], r["prompt"], r["system"], r["response"], r["metadata"]) for r in rows]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy (item_id text, prompt text, system text, response text, "
                       "metadata jsonb)")
    User = get_user_model()
    user = User.objects.create_user("bench", password="bench-only")
    client = APIClient()
    client.force_authenticate(user)
    with open(path, "rb") as upload:
        body = encode_multipart("BoUnDaRy", {"file": upload})
    os.unlink(path)

    def copy_once(binary=False):
        """COPY of the same rows into a plain table (parsing excluded: the floor for any import).

        The target is against COPY as it comes (text format). The upload itself uses binary COPY,
        so the same in binary is measured too and reported beside it, for context."""
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE bench_copy")
        raw = connection.connection
        started = time.perf_counter()
        with raw.cursor() as cursor:
            options = " (FORMAT BINARY)" if binary else ""
            with cursor.copy(f"COPY bench_copy (item_id, prompt, system, response, metadata) FROM STDIN{options}") as copy:
                if binary:
                    copy.set_types(["text", "text", "text", "text", "jsonb"])
                for values in binary_tuples if binary else tuples:
                    copy.write_row(values)
        raw.commit()
        return time.perf_counter() - started

    def schema_copy_once(round_no):
        """For context, not the target: COPY of the same data straight into the site's own tables
        (items once per prompt, responses with their indexes and foreign keys), with no parsing or
        checks: what the schema alone costs, which no upload path can beat."""
        study = services.create_study(owner=user, slug=f"schema-{round_no}", title="Schema floor")
        systems = {name: System.objects.create(study=study, name=name).pk for name in {r["system"] for r in rows}}
        prompts = {r["item_id"]: r["prompt"] for r in rows}
        now = timezone.now()
        started = time.perf_counter()
        with transaction.atomic():
            db.bulk_insert(Item, ["study_id", "external_id", "prompt", "metadata", "created_at"],
                                 [(study.pk, key, prompt, {}, now) for key, prompt in prompts.items()])
            items = dict(Item.objects.filter(study=study).values_list("external_id", "id"))
            db.bulk_insert(Response, services.RESPONSE_COLUMNS, [
                (items[r["item_id"]], systems[r["system"]], r["response"], "")
                for r in rows])
        return time.perf_counter() - started

    def upload_once(round_no):
        """The upload API, in process: multipart parsing, validation, bulk writes, one transaction."""
        study = services.create_study(owner=user, slug=f"bench-{round_no}", title="Ingest benchmark")
        started = time.perf_counter()
        reply = client.generic("POST", f"/api/studies/{study.slug}/outputs/", body,
                               content_type="multipart/form-data; boundary=BoUnDaRy")
        seconds = time.perf_counter() - started
        if reply.status_code != 201:
            sys.exit(f"upload failed: {reply.status_code} {reply.content[:500]!r}")
        assert Response.objects.filter(item__study=study).count() == len(rows)
        return seconds, study

    # Alternate the two, several rounds, and compare medians: this machine is noisy.
    copy_times, binary_copy_times, api_times, schema_times = [], [], [], []
    for round_no in range(args.repeat):
        schema_times.append(schema_copy_once(round_no))
        copy_times.append(copy_once())
        binary_copy_times.append(copy_once(binary=True))
        seconds, study = upload_once(round_no)
        api_times.append(seconds)
        print(f"round {round_no + 1}: COPY {copy_times[-1]:.2f} s, upload API {seconds:.2f} s, "
              f"COPY into the site's tables {schema_times[-1]:.2f} s")
    copy_rate = len(rows) / statistics.median(copy_times)
    api_rate = len(rows) / statistics.median(api_times)
    schema_rate = len(rows) / statistics.median(schema_times)
    binary_copy_rate = len(rows) / statistics.median(binary_copy_times)
    print(f"COPY into a plain table: median {statistics.median(copy_times):.2f} s, {copy_rate:,.0f} rows/s")
    print(f"the same, binary COPY: median {statistics.median(binary_copy_times):.2f} s, "
          f"{binary_copy_rate:,.0f} rows/s")
    print(f"COPY into the site's own tables (indexes, keys; no parsing): median "
          f"{statistics.median(schema_times):.2f} s, {schema_rate:,.0f} rows/s "
          f"({schema_rate / copy_rate:.3f} of plain COPY: the ceiling for any upload path)")
    print(f"upload API: median {statistics.median(api_times):.2f} s, {api_rate:,.0f} rows/s")

    # Re-uploading the same file is a no-op, and shows the cost of checking against stored rows.
    started = time.perf_counter()
    again = client.generic("POST", f"/api/studies/{study.slug}/outputs/", body,
                           content_type="multipart/form-data; boundary=BoUnDaRy")
    noop_seconds = time.perf_counter() - started
    assert again.status_code == 200 and again.json()["responses_unchanged"] == len(rows)
    print(f"same file again (no-op): {noop_seconds:.2f} s")

    ratio = api_rate / copy_rate
    print(f"ratio vs COPY: {ratio:.3f} (target >= 0.25); vs binary COPY: {api_rate / binary_copy_rate:.3f}")
    memory = measure_memory(rows, args.huge_mb, args.cases.split(","))
    print("RESULT " + json.dumps({"rows": len(rows), "rows_per_s": round(api_rate, 1),
                                  "copy_rows_per_s": round(copy_rate, 1),
                                  "binary_copy_rows_per_s": round(binary_copy_rate, 1),
                                  "ratio_vs_binary_copy": round(api_rate / binary_copy_rate, 3),
                                  "schema_copy_rows_per_s": round(schema_rate, 1), "ratio_vs_copy": round(ratio, 3),
                                  "noop_seconds": round(noop_seconds, 2), **memory_result(memory)}))


def memory_result(memory):
    """The RESULT keys of the memory cases: the ratio per format, and the sizes it came from."""
    return {"peak_memory_over_file": {case: round(growth / size, 2) for case, (growth, size) in memory.items()},
            "peak_memory_mib": {case: round(growth / 2**20, 1) for case, (growth, size) in memory.items()},
            "file_mib": {case: round(size / 2**20, 1) for case, (growth, size) in memory.items()}}


if __name__ == "__main__":
    main()
