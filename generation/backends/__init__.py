"""Generation backends behind one interface (`base.Backend`), looked up by name.
Each is imported only when chosen, so a worker never loads a backend's heavy extras unasked.
"""
from importlib import import_module

from .base import (
    Backend, BackendError, GenerationError, GenerationRequest, GenerationResult, SamplingParams,
)

# name -> "module:class"; adding a backend is adding its file and one line here.
BACKENDS = {
    "vllm": "generation.backends.vllm:VLLMBackend",
    "vllm-offline": "generation.backends.vllm_offline:VLLMOfflineBackend",
    "transformers": "generation.backends.transformers:TransformersBackend",
}

__all__ = [
    "BACKENDS", "Backend", "BackendError", "GenerationError", "GenerationRequest",
    "GenerationResult", "SamplingParams", "get_backend",
]


def get_backend(name, **options):
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise BackendError(f"unknown backend {name!r}; choose one of: {known}") from None
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)(**options)
