"""Benchmark: 2,000 prompts through the vLLM backend against the stand-in server, which answers
each request after 200 ms and accepts 64 at once; reports the wall time over the ideal.

Run: .venv/bin/python bench/generate.py [--requests N]. Last line: RESULT {json}.
"""
import argparse
import json
import sys
import time
from pathlib import Path

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
    args = parser.parse_args()

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
    print("RESULT " + json.dumps({
        "wall_over_ideal": round(ratio, 4),
        "responses_per_s": round(args.requests / wall, 2),
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "requests": args.requests,
        "peak_in_flight": peak,
        "failed": len(failed) + len(wrong),
    }))
    # A non-zero status lets CI or a script notice a regression without parsing the output.
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
