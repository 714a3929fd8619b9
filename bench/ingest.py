"""Benchmark: 100,000 output rows (6 systems) through the upload API, against PostgreSQL COPY.

Both run in the same process on the same database, one after the other, so the ratio holds on a
noisy machine. Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite python bench/ingest.py
[--rows N]. The last line printed is `RESULT {json}` with rows_per_s and ratio_vs_copy.
"""
import argparse
import json
import os
import random
import statistics
import sys
import tempfile
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
    args = parser.parse_args()

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
    call_command("migrate", verbosity=0)
    rows = make_rows(args.rows)
    print(f"{len(rows):,} rows, {len({r['item_id'] for r in rows}):,} items, 6 systems")

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
    print("RESULT " + json.dumps({"rows": len(rows), "rows_per_s": round(api_rate, 1),
                                  "copy_rows_per_s": round(copy_rate, 1),
                                  "binary_copy_rows_per_s": round(binary_copy_rate, 1),
                                  "ratio_vs_binary_copy": round(api_rate / binary_copy_rate, 3),
                                  "schema_copy_rows_per_s": round(schema_rate, 1), "ratio_vs_copy": round(ratio, 3),
                                  "noop_seconds": round(noop_seconds, 2)}))


if __name__ == "__main__":
    main()
