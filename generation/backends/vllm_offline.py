"""vLLM inside the worker (`vllm.LLM`), one GPU per worker process started with --pool=solo; the
model is loaded once per process, and vllm is imported only when this backend is chosen.
"""
import threading
import time

from .base import Backend, BackendError, GenerationError, GenerationResult, check_unique_keys

INSTALL_HINT = ("the vllm-offline backend needs vLLM: install the vllm extra on a GPU worker "
                "(pip install -e \".[vllm]\"); start the worker with --pool=solo")

_LOADED = {}
_LOCK = threading.Lock()


def load(model):
    with _LOCK:
        if model not in _LOADED:
            try:
                import vllm
            except ImportError as exc:
                raise BackendError(f"{INSTALL_HINT} ({exc})") from exc
            try:
                _LOADED[model] = vllm.LLM(model=model)
            except Exception as exc:  # vLLM raises many kinds; the job shows the reason
                raise BackendError(f"vLLM cannot load {model!r}: {exc}") from exc
        return _LOADED[model]


class VLLMOfflineBackend(Backend):
    name = "vllm-offline"

    def __init__(self, model):
        if not isinstance(model, str) or not model.strip():
            raise BackendError("no model given (a Hugging Face model name or a local path)")
        self.model = model.strip()

    def check(self):
        load(self.model)

    def generate(self, requests):
        requests = list(requests)
        check_unique_keys(requests)
        if not requests:
            return []
        import vllm

        llm = load(self.model)
        started = time.monotonic()
        # vLLM batches one call's prompts itself, so the whole chunk goes in one call.
        params = [vllm.SamplingParams(temperature=r.sampling.temperature, top_p=r.sampling.top_p,
                                      max_tokens=r.sampling.max_tokens, seed=r.sampling.seed)
                  for r in requests]
        try:
            outputs = llm.chat([r.messages for r in requests], params, use_tqdm=False)
        except Exception as exc:
            return [GenerationResult(key=r.key, attempts=1, error=GenerationError(
                f"vLLM generation failed: {exc}", retryable=False)) for r in requests]
        seconds = time.monotonic() - started
        results = []
        for request, output in zip(requests, outputs):
            completion = output.outputs[0]
            results.append(GenerationResult(
                key=request.key, text=completion.text, finish_reason=completion.finish_reason,
                prompt_tokens=len(output.prompt_token_ids or []),
                completion_tokens=len(completion.token_ids), seconds=seconds, attempts=1,
                server="vllm.LLM",
            ))
        return results
