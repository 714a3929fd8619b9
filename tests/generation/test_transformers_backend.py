"""The transformers backend for real, on a tiny random-weight Llama and a word-level tokenizer
that the test builds and saves to tmp_path (no download: HF_HUB_OFFLINE=1); and vllm-offline's
message when vLLM is not installed.
"""
import pytest

from annotations.models import Response
from generation import services
from generation.backends import BackendError, GenerationRequest, SamplingParams, get_backend
from generation.backends import transformers as tf_backend

import torch  # noqa: E402 (a test extra: a missing torch fails here, it never skips)

WORDS = ("i feel so tired and alone at work every day you are not alone it sounds hard "
         "thank for sharing this with me").split()
CHAT_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> "
                 "{% endfor %}{% if add_generation_prompt %}<s> assistant : {% endif %}")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, \
        PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(set(WORDS)) + [":"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>",
                                   pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, bos_token_id=2, eos_token_id=3,
                         pad_token_id=1)
    model = LlamaForCausalLM(config)
    # Random weights give a near-uniform next token, so </s> comes about one token in 25: an
    # answer is never empty (</s> is barred first) and rarely reaches max_tokens.
    model.generation_config = GenerationConfig(
        bos_token_id=2, eos_token_id=3, pad_token_id=1, begin_suppress_tokens=[3],
        suppress_tokens=[0, 1, 2])
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def requests_for(n, sampling):
    return [GenerationRequest(key=i, sampling=sampling, messages=[
        {"role": "system", "content": "you are not alone"},
        {"role": "user", "content": f"i feel so tired {'and alone ' * i}"}]) for i in range(n)]


def test_generates_text_from_a_local_model_once_loaded(tiny_model):
    backend = get_backend("transformers", model=tiny_model)
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=300, seed=11)
    results = backend.generate(requests_for(3, sampling))
    assert [r.key for r in results] == [0, 1, 2]
    for result in results:
        assert result.ok, result.error
        assert result.text.strip() and result.finish_reason == "stop"
        assert set(result.text.split()) <= set(WORDS) | {":"}
        assert result.completion_tokens >= 1 and result.prompt_tokens > 10
    # The model is loaded once per process and a seed makes the output reproducible.
    assert (tiny_model, "cpu") in tf_backend._LOADED
    again = backend.generate(requests_for(3, sampling))
    assert [r.text for r in again] == [r.text for r in results]
    # The chat template frames the prompt: role markers and the generation cue.
    tokenizer, _ = tf_backend.load(tiny_model)
    prompt = tf_backend.render_prompt(tokenizer, requests_for(1, sampling)[0].messages)
    assert prompt.endswith("<s> assistant : ") and "user : i feel so tired" in prompt


def test_max_tokens_cuts_with_length_and_greedy_is_deterministic(tiny_model):
    backend = get_backend("transformers", model=tiny_model)
    greedy = SamplingParams(temperature=0, max_tokens=2)
    first, second = backend.generate(requests_for(1, greedy) + [
        GenerationRequest(key="again", messages=requests_for(1, greedy)[0].messages,
                          sampling=greedy)])
    assert first.text == second.text
    assert first.completion_tokens <= 2
    if first.completion_tokens == 2:
        assert first.finish_reason == "length"


def test_plain_join_without_a_chat_template():
    class NoTemplate:
        chat_template = None

    text = tf_backend.render_prompt(NoTemplate(), [{"role": "user", "content": "hello"}])
    assert text == "user: hello\nassistant:"


def test_a_missing_model_path_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError, match="cannot load local path"):
        get_backend("transformers", model=str(tmp_path)).check()


@pytest.mark.postgres
def test_a_job_end_to_end_with_the_base_strategy(tiny_model, study_with_items, researcher,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.start_job(study_with_items, user=researcher, system_name="tiny-base",
                                 backend="transformers", model=tiny_model, strategy="base",
                                 temperature=1.0, top_p=1.0, max_tokens=300, seed=5)
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert sorted(set(job.items.values_list("status", flat=True))) == ["done"]
    responses = Response.objects.filter(system=job.system)
    assert responses.count() == 10
    assert all(r.source == "generated" and r.text.strip() for r in responses)
    assert job.items.filter(completion_tokens__gt=0).count() == 10


@pytest.mark.postgres
def test_a_missing_model_fails_the_job(tmp_path, study_with_items, researcher,
                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.start_job(study_with_items, user=researcher, system_name="nothing",
                                 backend="transformers", model=str(tmp_path / "none"),
                                 strategy="base")
    job.refresh_from_db()
    assert job.status == "failed" and "cannot load" in job.error


def test_vllm_offline_without_vllm_says_how_to_install():
    # vLLM's wheel is CUDA-only, so it is absent here.
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    backend = get_backend("vllm-offline", model="some/model")
    with pytest.raises(BackendError) as caught:
        backend.check()
    message = str(caught.value)
    assert "install the vllm extra on a GPU worker" in message
    assert "start the worker with --pool=solo" in message
