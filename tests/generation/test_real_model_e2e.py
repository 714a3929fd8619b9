"""End to end with a real model: SmolLM2-135M-Instruct served by `transformers serve` on this CPU,
a real Celery worker on Redis, and the vLLM HTTP backend. A job per strategy on long posts; every
item ends with a response annotators can rank, or kept raw and flagged with the parser's reason.

The table of parse rates, tokens and seconds per strategy is printed (pytest -s) and, when
GENERATE_REAL_REPORT names a file, written there as JSON.
"""
import json
import os
import re

import pytest

from annotations.models import Response
from annotations.studies.selectors import systems_with_responses
from generation import services
from generation.selectors import job_stats
from generation.strategies import STRATEGIES
from tests.factories import ItemFactory, StudyFactory

from tests.celery_broker import publishing_to

from .test_worker_e2e import Worker, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STRATEGY_NAMES = [name for name in STRATEGIES if name != "custom"]
# Modest, so that six jobs fit in a few minutes on two busy cores; SmolLM2 rarely ends a reply
# this soon, so most outputs are cut off: what the parsers must then do is part of the test.
MAX_TOKENS = int(os.environ.get("GENERATE_REAL_MAX_TOKENS", "96"))
POSTS = [
    "I moved to a new city six months ago for a job I thought I wanted, and I still don't know "
    "anyone here. My coworkers are polite but they all have their own lives, and every weekend I "
    "end up alone in my apartment scrolling through photos of my old friends having fun without "
    "me. I call my mum on Sundays but I pretend everything is great because she was so proud when "
    "I got this job. Lately I've started to dread the evenings. I don't know if I made a huge "
    "mistake or if this is just what adult life is like.",
    "My younger brother failed his exams again and my parents keep asking me to talk sense into "
    "him, as if I were his third parent. I have my own deadlines and a part-time job, and every "
    "phone call turns into an argument about what I should be doing for him. When I said I was "
    "tired they told me family comes first. I love him, but I feel guilty for wanting to say no, "
    "and angry that nobody asks how I am doing.",
]
TAG = re.compile(r"</?\s*(think|answer)\s*>", re.IGNORECASE)


@pytest.fixture
def real_broker():
    """A Redis database of its own (not the stand-in tests' one), so that workers of other test
    runs on the same Redis never take these tasks."""
    with publishing_to(os.environ.get("REAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")) as url:
        yield url


def test_every_strategy_runs_on_smollm2_behind_transformers_serve(
        researcher, real_broker, smollm2_server, tmp_path):
    study = StudyFactory(owner=researcher, slug="real")
    for i, post in enumerate(POSTS):
        ItemFactory(study=study, external_id=f"long-{i}", prompt=post)
    worker = Worker(real_broker, smollm2_server, tmp_path, "gen-real")
    worker.env.update({
        # One request at a time: the server generates on one thread, and seeded sampling stays
        # reproducible only without requests interleaving.
        "GENERATION_MAX_IN_FLIGHT": "1", "GENERATION_CHUNK_SIZE": "2",
        "GENERATION_REQUEST_TIMEOUT": "240", "GENERATION_BACKEND_RETRIES": "1",
        "CELERY_VISIBILITY_TIMEOUT": "600",
    })
    worker.start()
    try:
        jobs = {name: services.start_job(
            study, user=researcher, system_name=f"smollm2-{name}", model=smollm2_server.model,
            strategy=name, temperature=0.7, top_p=0.9, max_tokens=MAX_TOKENS, seed=7)
            for name in STRATEGY_NAMES}
        for job in jobs.values():
            wait_for(lambda: _status(job) in ("completed", "failed"), 600,
                     f"job {job.strategy} to finish", worker)
    finally:
        worker.kill()

    table = {}
    for name, job in jobs.items():
        assert job.status == "completed", f"{name}: {job.error}"
        stats = job_stats(job)
        table[name] = {"outputs": stats.outputs, "parsed": stats.parsed,
                       "parse_rate": stats.parse_rate, "prompt_tokens": stats.prompt_tokens,
                       "completion_tokens": stats.completion_tokens,
                       "seconds": round(stats.request_seconds, 1),
                       "reasons": sorted({g.error for g in job.items.filter(status="unparsed")})}
        # The server answered every request: a failure here is a prompt or protocol problem.
        assert stats.failed == 0 and stats.outputs == len(POSTS), job.items.values("error")
        for item in job.items.all():
            assert item.prompt_tokens > 0 and 0 < item.completion_tokens <= MAX_TOKENS
            assert item.seconds > 0
            responses = Response.objects.filter(item=item.item, system=job.system)
            if item.status == "done":
                [response] = responses
                assert response.source == "generated" and response.text.strip()
                assert not TAG.search(response.text), response.text  # blinding holds
            else:
                assert item.status == "unparsed" and item.raw_output.strip() and item.error
                assert not responses.exists()
        # Parsed outputs are what annotators rank; a system with none stays out of the study.
        assert (job.system in systems_with_responses(study)) == bool(stats.parsed)
    # The strategies' prompts really differ: the reasoning strategies ask for much more.
    base_prompt = table["base"]["prompt_tokens"]
    assert all(row["prompt_tokens"] > base_prompt + 100 * len(POSTS)
               for name, row in table.items() if name != "base")
    _report(table)


def _status(job):
    job.refresh_from_db()
    return job.status


def _report(table):
    lines = [f"SmolLM2-135M-Instruct via transformers serve, max_tokens {MAX_TOKENS}, "
             f"{len(POSTS)} posts:"]
    for name, row in table.items():
        rate = "n/a" if row["parse_rate"] is None else f"{row['parse_rate']:.0%}"
        lines.append(f"  {name:11} parsed {row['parsed']}/{row['outputs']} ({rate}), tokens in "
                     f"{row['prompt_tokens']}, out {row['completion_tokens']}, "
                     f"{row['seconds']} s; {'; '.join(row['reasons']) or '-'}")
    print("\n".join(lines))
    if os.environ.get("GENERATE_REAL_REPORT"):
        with open(os.environ["GENERATE_REAL_REPORT"], "w") as handle:
            json.dump({"max_tokens": MAX_TOKENS, "posts": len(POSTS), "strategies": table},
                      handle, indent=2)
