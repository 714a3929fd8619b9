"""The vLLM backend over real HTTP, against the stand-in server on 127.0.0.1.
Covers concurrency, load sharing, retries, timeouts, malformed bodies, health and model listing.
"""
import socket
import time

import pytest

from generation.backends import (
    BackendError, GenerationError, GenerationRequest, GenerationResult, SamplingParams,
    get_backend,
)
from generation.backends.vllm import VLLMBackend, normalise_base_url
from generation.strategies import ParseError, get_strategy

from .standin import StandIn, reply_text


@pytest.fixture
def server():
    with StandIn() as standin:
        yield standin


def backend_for(*servers, **options):
    options = {"timeout": 5.0, "connect_timeout": 1.0, "backoff_base": 0.01,
               "backoff_max": 0.05, **options}
    urls = [s if isinstance(s, str) else s.url for s in servers]
    return VLLMBackend(urls, "standin-model", **options)


def requests_for(count, sampling=SamplingParams()):
    return [GenerationRequest(key=f"item-{i}", messages=[{"role": "user", "content": f"post {i}"}],
                              sampling=sampling) for i in range(count)]


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_each_request_gets_its_own_reply_in_request_order(server):
    requests = requests_for(20, SamplingParams(temperature=0.3, top_p=0.9, max_tokens=50,
                                               seed=7))
    results = backend_for(server).generate(requests)
    assert [r.key for r in results] == [r.key for r in requests]
    for request, result in zip(requests, results):
        assert result.ok and result.error is None
        assert result.text == reply_text(request.messages, seed=7)
        assert result.finish_reason == "stop"
        assert (result.prompt_tokens, result.completion_tokens) == (2, 7)
        assert result.attempts == 1 and result.server == server.url and result.seconds > 0
    body = server.calls[0].body
    assert body["model"] == "standin-model"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == \
        (0.3, 0.9, 50, 7)


def test_no_seed_is_sent_when_none_is_set(server):
    backend_for(server).generate(requests_for(1))
    assert "seed" not in server.calls[0].body


def test_api_key_is_sent_and_a_wrong_one_fails_without_retry():
    with StandIn(api_key="sekret") as server:
        [good] = backend_for(server, api_key="sekret").generate(requests_for(1))
        assert good.ok and server.calls[0].authorization == "Bearer sekret"
        [bad] = backend_for(server, api_key="wrong").generate(requests_for(1))
    assert not bad.ok and bad.error.status == 401 and not bad.error.retryable
    assert server.count == 2


def test_concurrency_reaches_the_bound_and_never_exceeds_it():
    with StandIn(delay=0.1) as server:
        started = time.monotonic()
        results = backend_for(server, max_in_flight=12).generate(requests_for(60))
        elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert server.max_in_flight == 12
    # Five rounds of twelve, not sixty requests one after another (6 s).
    assert elapsed < 1.5


def test_a_server_that_accepts_fewer_at_once_makes_the_rest_wait():
    with StandIn(delay=0.05, max_concurrent=2) as server:
        started = time.monotonic()
        results = backend_for(server, max_in_flight=8).generate(requests_for(8))
        elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert elapsed >= 4 * 0.05


def test_503_is_retried_with_growing_backoff_until_it_succeeds(server):
    server.script(503, 503)
    [result] = backend_for(server, backoff_base=0.1, backoff_max=1.0).generate(requests_for(1))
    assert result.ok and result.attempts == 3 and server.count == 3
    # Equal jitter waits at least half of each step: 0.05 s, then 0.1 s.
    assert result.seconds >= 0.15


@pytest.mark.parametrize("status", [500, 502, 429, 408])
def test_server_errors_and_rate_limits_are_retried(server, status):
    server.script(status)
    [result] = backend_for(server).generate(requests_for(1))
    assert result.ok and result.attempts == 2


def test_retry_after_is_respected():
    with StandIn(retry_after=0.3) as server:
        server.script(429)
        [result] = backend_for(server, backoff_max=1.0).generate(requests_for(1))
    assert result.ok and result.attempts == 2 and result.seconds >= 0.3


def test_giving_up_after_the_retry_limit_leaves_a_retryable_error(server):
    server.script(503, 503, 503, 503)
    [result] = backend_for(server, max_retries=2).generate(requests_for(1))
    assert not result.ok and result.text is None
    assert result.error.retryable and result.error.status == 503
    assert "HTTP 503" in result.error.message and "gave up after 3 attempts" in result.error.message
    assert result.attempts == 3 and server.count == 3


def test_400_is_not_retried_and_carries_the_server_s_message(server):
    server.script(400)
    [result] = backend_for(server).generate(requests_for(1))
    assert not result.ok and not result.error.retryable and result.error.status == 400
    assert "HTTP 400" in result.error.message
    assert "stand-in failure 400" in result.error.message
    assert server.count == 1


def test_an_unknown_model_is_a_clear_error_at_once(server):
    [result] = VLLMBackend(server.url, "no-such-model").generate(requests_for(1))
    assert not result.ok and not result.error.retryable and result.error.status == 404
    assert "The model `no-such-model` does not exist." in str(result.error)
    assert server.count == 1


def test_a_timed_out_attempt_is_retried():
    with StandIn(hang_seconds=5) as server:
        server.script("timeout")
        [result] = backend_for(server, timeout=0.3).generate(requests_for(1))
    assert result.ok and result.attempts == 2 and 0.3 <= result.seconds < 2


def test_timeouts_on_every_attempt_end_in_a_retryable_timeout_error():
    with StandIn(hang_seconds=5) as server:
        server.script("timeout", "timeout")
        started = time.monotonic()
        [result] = backend_for(server, timeout=0.2, max_retries=1).generate(requests_for(1))
        assert time.monotonic() - started < 2
    assert not result.ok and result.error.retryable and result.error.status is None
    assert "timeout" in result.error.message and result.attempts == 2


def test_a_cut_off_json_body_is_retried(server):
    server.script("malformed")
    [result] = backend_for(server).generate(requests_for(1))
    assert result.ok and result.attempts == 2


def test_a_cut_off_json_body_that_persists_is_a_retryable_error(server):
    server.script("malformed")
    [result] = backend_for(server, max_retries=0).generate(requests_for(1))
    assert not result.ok and result.error.retryable
    assert "malformed response" in result.error.message and "not JSON" in result.error.message


def test_json_that_is_not_a_chat_completion_is_not_retried(server):
    server.script("bad-shape")
    [result] = backend_for(server).generate(requests_for(1))
    assert not result.ok and not result.error.retryable
    assert "without choices[0].message" in result.error.message
    assert server.count == 1


def test_a_dropped_connection_is_retried(server):
    server.script("disconnect")
    [result] = backend_for(server).generate(requests_for(1))
    assert result.ok and result.attempts == 2


def test_a_request_that_cannot_be_encoded_fails_without_being_sent(server):
    bad = GenerationRequest("bad", [{"role": "user", "content": object()}])
    good, = requests_for(1)
    results = backend_for(server).generate([bad, good])
    assert not results[0].ok and not results[0].error.retryable
    assert "cannot be sent as JSON" in results[0].error.message
    assert results[1].ok and server.count == 1


def test_every_item_comes_back_exactly_once_when_a_fraction_of_calls_fail():
    with StandIn(fail_fraction=0.3, fail_attempts=2) as server:
        requests = requests_for(60)
        results = backend_for(server, max_in_flight=16).generate(requests)
        failed_calls = sum(1 for call in server.calls if call.action != "ok")
    assert [r.key for r in results] == [r.key for r in requests]
    assert all(r.ok for r in results)
    assert failed_calls >= 2 * 6  # at 30 %, some prompts were picked, each failing twice
    assert server.count == 60 + failed_calls
    assert sum(r.attempts for r in results) == server.count


def test_two_servers_share_the_load_each_within_its_bound():
    with StandIn(delay=0.05) as first, StandIn(delay=0.05) as second:
        results = backend_for(first, second, max_in_flight=4).generate(requests_for(48))
        counts = (first.count, second.count)
        peaks = (first.max_in_flight, second.max_in_flight)
    assert all(r.ok for r in results)
    assert sum(counts) == 48 and min(counts) >= 16
    assert peaks == (4, 4)
    assert {r.server for r in results} == {first.url, second.url}


def test_a_dead_server_is_left_alone_while_another_is_up():
    dead = closed_port_url()
    with StandIn(delay=0.02) as server:
        results = backend_for(server, dead, max_in_flight=4, max_retries=2, backoff_base=0.1,
                              backoff_max=1.0).generate(requests_for(40))
    assert all(r.ok for r in results)
    assert {r.server for r in results} == {server.url}
    assert server.count == 40
    # Only the first requests sent its way fail; the rest wait for the live server's room.
    assert sum(r.attempts for r in results) - 40 <= 6


def test_a_failing_server_gets_one_request_at_a_time_while_another_is_healthy():
    with StandIn(delay=0.05) as live, \
            StandIn(delay=0.05, fail_fraction=1.0, fail_attempts=10**6) as sick:
        results = backend_for(live, sick, max_in_flight=4, max_retries=6, backoff_base=0.05,
                              backoff_max=0.1).generate(requests_for(60))
        burst, later = sick.calls[:4], sick.calls[4:]
    assert all(r.ok for r in results) and {r.server for r in results} == {live.url}
    assert later, "the sick server should have been tried again after its cooldown"
    assert later[0].started >= max(call.finished for call in burst)
    for before, after in zip(later, later[1:]):
        assert after.started >= before.finished


def test_an_unreachable_server_gives_a_retryable_connection_error():
    [result] = backend_for(closed_port_url(), max_retries=1).generate(requests_for(1))
    assert not result.ok and result.error.retryable
    assert "connection to http://127.0.0.1:" in result.error.message


def test_stream_yields_results_as_they_finish_and_stopping_stops_sending():
    with StandIn(delay=0.05) as server:
        stream = backend_for(server, max_in_flight=4).stream(requests_for(200))
        first = [next(stream) for _ in range(5)]
        stream.close()
        time.sleep(0.1)  # a request already on the wire when the stream closed may still land
        sent = server.count
        time.sleep(0.3)
        assert server.count == sent
    assert all(r.ok for r in first)
    # What was consumed, what finished meanwhile, and what was in flight: a few rounds of four,
    # never the whole batch.
    assert sent <= 20


def test_keys_must_be_unique_and_an_empty_batch_is_fine(server):
    request, = requests_for(1)
    with pytest.raises(ValueError, match="share the key 'item-0'"):
        backend_for(server).generate([request, request])
    assert backend_for(server).generate([]) == []


@pytest.mark.parametrize("template,max_tokens,answer_ok", [
    ("<think>Level 1: shame. Level 4: reassure.</think><answer>{text}</answer>", 100, True),
    ("<think>Level 1: shame. Level 4: reassure.</think><answer>{text}</answer>", 4, False),
])
def test_outputs_parse_end_to_end_with_a_strategy(template, max_tokens, answer_ok):
    strategy = get_strategy("empathy-r1")
    messages = strategy.messages("I failed my driving test again.")
    request = GenerationRequest("a", messages, SamplingParams(max_tokens=max_tokens))
    with StandIn(template=template) as server:
        [result] = backend_for(server).generate([request])
    assert result.ok
    if answer_ok:
        parsed = strategy.parse(result.text, result.finish_reason)
        assert parsed.answer == reply_text(messages)
        assert parsed.reasoning == "Level 1: shame. Level 4: reassure."
    else:
        assert result.finish_reason == "length" and result.completion_tokens == 4
        with pytest.raises(ParseError, match="truncated inside <think>"):
            strategy.parse(result.text, result.finish_reason)


def test_health_reports_each_server(server):
    sick = StandIn().start()
    sick.healthy = False
    dead = closed_port_url()
    try:
        statuses = backend_for(server, sick, dead).health()
    finally:
        sick.stop()
    assert [(s.url, s.ok) for s in statuses] == [(server.url, True), (sick.url, False),
                                                 (dead, False)]
    assert statuses[0].detail == "ok"
    assert "HTTP 503" in statuses[1].detail and "unreachable" in statuses[2].detail


def test_models_are_listed_and_check_confirms_the_configured_one(server):
    backend = backend_for(server, closed_port_url())
    assert backend.list_models() == ["standin-model"]
    with pytest.raises(BackendError, match="not ready.*unreachable"):
        backend.check()
    backend_for(server).check()
    with pytest.raises(BackendError, match="do not serve model 'other'.*standin-model"):
        VLLMBackend(server.url, "other").check()
    with pytest.raises(BackendError, match="no vLLM server listed its models"):
        backend_for(closed_port_url()).list_models()


def test_configuration_errors_are_caught_early():
    assert normalise_base_url(" http://gpu-1:8000/v1/ ") == "http://gpu-1:8000"
    with pytest.raises(BackendError, match="must start with http"):
        VLLMBackend("gpu-1:8000", "m")
    with pytest.raises(BackendError, match="listed twice"):
        VLLMBackend(["http://a:1", "http://a:1/v1"], "m")
    with pytest.raises(BackendError, match="no model name"):
        VLLMBackend("http://a:1", "")
    with pytest.raises(BackendError, match="no vLLM base URL"):
        VLLMBackend([], "m")
    assert isinstance(get_backend("vllm", base_urls="http://a:1", model="m"), VLLMBackend)
    with pytest.raises(BackendError, match="unknown backend 'tgi'"):
        get_backend("tgi")


@pytest.mark.parametrize("options", [{"temperature": -1}, {"top_p": 0}, {"top_p": 1.5},
                                     {"max_tokens": 0}, {"max_tokens": 2.5}, {"seed": "7"}])
def test_sampling_params_are_validated(options):
    with pytest.raises(ValueError):
        SamplingParams(**options)


def test_a_result_has_text_or_an_error_never_both():
    with pytest.raises(ValueError):
        GenerationResult(key=1)
    with pytest.raises(ValueError):
        GenerationResult(key=1, text="x", error=GenerationError("boom", retryable=False))
    assert GenerationResult(key=1, text="").ok
