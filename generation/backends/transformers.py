"""Local generation with Hugging Face transformers, for small models and CPU (checkpoints or GGUF
files): the model is loaded once per worker process and requests are generated one at a time.
"""
import threading
import time
from pathlib import Path

from ..checkpoints import split_gguf
from .base import Backend, BackendError, GenerationError, GenerationResult, check_unique_keys

# (model, device) -> (tokenizer, model): a worker process loads each model once, not per task.
_LOADED = {}
_LOCK = threading.Lock()


def load(model, device="cpu"):
    key = (model, device)
    with _LOCK:
        if key not in _LOADED:
            try:
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:  # torch missing makes the model classes unavailable
                raise BackendError(f"the transformers backend needs transformers and torch: "
                                   f"{exc}") from exc
            source, gguf_file = split_gguf(model)
            # A GGUF file is dequantised to float on loading (transformers needs the gguf and
            # accelerate packages for it: the "real" extra).
            options = {"gguf_file": gguf_file} if gguf_file else {}
            try:
                tokenizer = AutoTokenizer.from_pretrained(source, **options)
                loaded = AutoModelForCausalLM.from_pretrained(source, **options).to(device)
            except (OSError, ValueError, ImportError) as exc:
                where = "local path" if Path(model).exists() else "model name or local path"
                hint = (" (GGUF files need the gguf and accelerate packages: "
                        "pip install -e \".[real]\")") if gguf_file else ""
                raise BackendError(f"cannot load {where} {model!r} with transformers{hint}: "
                                   f"{exc}") from exc
            loaded.eval()
            _LOADED[key] = (tokenizer, loaded)
        return _LOADED[key]


def render_prompt(tokenizer, messages):
    """The chat template when the tokenizer has one; otherwise "role: text" lines, then a cue."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines + ["assistant:"])


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, model, *, device="cpu", gguf_file=None):
        """`model` is a Hugging Face model name, a checkpoint folder, or a GGUF file (a path
        ending in .gguf, or a folder or Hub repository with `gguf_file` naming the file in it)."""
        if not isinstance(model, str) or not model.strip():
            raise BackendError("no model given (a Hugging Face model name or a local path)")
        model = model.strip()
        if gguf_file:
            model = f"{model.rstrip('/')}/{gguf_file}"
        self.model, self.device = model, device

    def check(self):
        load(self.model, self.device)

    def generate(self, requests):
        return list(self.stream(requests))

    def stream(self, requests, *, send_until=None, wait_until=None):
        requests = list(requests)
        check_unique_keys(requests)
        return self._stream(requests, send_until)

    def _stream(self, requests, send_until):
        # One request at a time, so a request that starts before send_until is the one in flight.
        tokenizer, model = load(self.model, self.device)
        for request in requests:
            if send_until is not None and time.monotonic() >= send_until:
                return
            yield self._one(tokenizer, model, request)

    def _one(self, tokenizer, model, request):
        import torch

        started = time.monotonic()
        sampling = request.sampling
        try:
            prompt = render_prompt(tokenizer, request.messages)
            # The chat template already holds any special tokens the model expects.
            inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
            options = {"max_new_tokens": sampling.max_tokens}
            if sampling.temperature > 0:
                options.update(do_sample=True, temperature=sampling.temperature,
                               top_p=sampling.top_p)
            else:
                options.update(do_sample=False)
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
                else tokenizer.eos_token_id
            with torch.no_grad():
                output = model.generate(**inputs, pad_token_id=pad, **options)
        except Exception as exc:  # one bad request fails its item, not the whole batch
            return GenerationResult(
                key=request.key, seconds=time.monotonic() - started, attempts=1,
                server=self.device,
                error=GenerationError(f"transformers generation failed: {type(exc).__name__}: "
                                      f"{exc}", retryable=False))
        new = output[0, inputs["input_ids"].shape[1]:].tolist()
        eos = model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        stopped = bool(new) and new[-1] in eos
        finish_reason = "length" if len(new) >= sampling.max_tokens and not stopped else "stop"
        return GenerationResult(
            key=request.key, text=tokenizer.decode(new, skip_special_tokens=True),
            finish_reason=finish_reason, prompt_tokens=int(inputs["input_ids"].shape[1]),
            completion_tokens=len(new), seconds=time.monotonic() - started, attempts=1,
            server=self.device,
        )
