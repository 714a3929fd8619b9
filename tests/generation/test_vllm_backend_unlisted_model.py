"""Servers whose /v1/models does not list the model they serve (`transformers serve` lists the
Hugging Face cache, and answers 500 offline without one): a job still starts when the server
answers a one-token request for the model, and otherwise fails with the server's own words.
"""
import pytest

from generation.backends import BackendError
from generation.backends.vllm import VLLMBackend

from .standin import StandIn


@pytest.fixture
def unlisting():
    with StandIn(models_status=500) as server:
        yield server


def test_a_server_that_cannot_list_its_models_still_serves_a_job(unlisting):
    backend = VLLMBackend(unlisting.url, "standin-model", max_retries=0)
    with pytest.raises(BackendError, match=r"/v1/models answered HTTP 500 .*name the model "
                                           r"yourself: a job asks the server"):
        backend.list_models()
    backend.check()
    [probe] = unlisting.calls
    assert probe.body["model"] == "standin-model" and probe.body["max_tokens"] == 1


def test_a_model_the_server_does_not_serve_is_named_with_the_servers_answer(unlisting):
    with pytest.raises(BackendError) as caught:
        VLLMBackend(unlisting.url, "other-model").check()
    message = str(caught.value)
    assert message.startswith("the vLLM servers do not serve model 'other-model': a one-token "
                              "request for it answered HTTP 404")
    assert "The model `other-model` does not exist." in message
    assert "/v1/models answered HTTP 500" in message


def test_a_listed_model_needs_no_request(standin):
    VLLMBackend(standin.url, "standin-model").check()
    assert standin.count == 0
