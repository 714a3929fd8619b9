"""vLLM's OpenAI-compatible server (`vllm serve`) as a generation backend: one or more base URLs
serving the same model, each kept busy with up to `max_in_flight` requests for continuous batching.
"""
import asyncio
import collections
import contextlib
import json
import logging
import math
import queue
import random
import threading
import time
from dataclasses import dataclass

import httpx

from .base import (
    Backend, BackendError, GenerationError, GenerationResult, check_unique_keys,
)

log = logging.getLogger(__name__)

# 408 is the server timing out on us, so it is treated like our own timeout.
RETRYABLE_4XX = frozenset({408, 429})
# Statuses that say the server itself is down or overloaded, so it is skipped for a while when
# another server has room.
SERVER_DOWN_STATUSES = frozenset({429, 502, 503, 504})
PREVIEW_CHARS = 200
# httpcore 1.0 rescans every connection of a pool, some of them once per other connection,
# whenever a request starts or ends: one pool of 64 connections spends more CPU scanning than
# sending. Several small pools ("lanes") per server keep each scan short.
LANE_CONNECTIONS = 8


@dataclass(frozen=True)
class ServerHealth:
    url: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class _Failure:
    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    server_down: bool = False


@dataclass(frozen=True)
class _Success:
    text: str
    finish_reason: str | None
    reasoning: str
    prompt_tokens: int
    completion_tokens: int


class _Lane:
    def __init__(self, client):
        self.client = client
        self.in_flight = 0


class _Server:
    def __init__(self, url, lanes):
        self.url = url
        self.lanes = lanes
        self.in_flight = 0
        self.failures = 0
        self.cool_until = 0.0

    def lane(self):
        # Least busy, so no lane's pool is asked for more connections than it holds.
        return min(self.lanes, key=lambda lane: lane.in_flight)


class _Balancer:
    """Hands out servers with room: least in flight first, round robin among equals.

    A server that failed to answer at all (connection refused, 429, 502-504) cools down, longer
    after each failure in a row. While another server is healthy, requests wait for its room
    rather than go to a cooling one, and a server that failed gets one request at a time until
    it answers again, so a dead server costs one attempt per cooldown, not a burst of them.
    With no healthy server left, they are all used as usual and the retries' backoff paces them.
    """

    def __init__(self, servers, per_server, cooldown_base, cooldown_max):
        self.servers = servers
        self.per_server = per_server
        self.cooldown_base, self.cooldown_max = cooldown_base, cooldown_max
        self.turn = 0
        self.waiters = collections.deque()

    async def acquire(self):
        while True:
            server, wake_at = self._choose()
            if server is not None:
                server.in_flight += 1
                return server
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            timeout = None if wake_at is None else max(0.0, wake_at - time.monotonic())
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                pass

    def release(self, server):
        server.in_flight -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _choose(self):
        """(server, None) to send to; or (None, when a cooldown ends, or None) to wait."""
        now = time.monotonic()
        self.turn += 1
        count = len(self.servers)
        any_healthy = any(server.failures == 0 for server in self.servers)
        best, best_rank = None, None
        for i in range(count):
            server = self.servers[(self.turn + i) % count]
            room = self.per_server if server.failures == 0 or not any_healthy else 1
            if server.in_flight >= room:
                continue
            rank = (server.cool_until > now, server.in_flight, server.cool_until)
            if best is None or rank < best_rank:
                best, best_rank = server, rank
        if best is None or best.cool_until <= now or not any_healthy:
            return best, None
        return None, best.cool_until

    def record(self, server, outcome):
        if isinstance(outcome, _Success):
            server.failures, server.cool_until = 0, 0.0
        elif outcome.server_down:
            server.failures += 1
            pause = min(self.cooldown_max, self.cooldown_base * 2 ** (server.failures - 1))
            server.cool_until = time.monotonic() + pause


def normalise_base_url(url):
    url = str(url).strip().rstrip("/")
    # People paste the OpenAI-client form ending in /v1; the endpoints below add it themselves.
    if url.endswith("/v1"):
        url = url[:-3]
    if not url.startswith(("http://", "https://")):
        raise BackendError(f"vLLM base URL {url!r} must start with http:// or https://")
    return url


def _describe(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _preview(content):
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else str(content)
    text = " ".join(text.split())
    return text[:PREVIEW_CHARS] + ("..." if len(text) > PREVIEW_CHARS else "")


def _error_detail(response):
    """The server's own words: vLLM answers {"message": ...} or {"error": {"message": ...}}."""
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        for candidate in (data.get("message"), error.get("message") if isinstance(error, dict)
                          else error, data.get("detail")):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
    return _preview(response.content) or response.reason_phrase or "no details"


def _retry_after(response):
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _count(value):
    return value if isinstance(value, int) and value >= 0 else 0


class VLLMBackend(Backend):
    """Chat completions on vLLM servers over HTTP.

    `max_in_flight` is per server, so adding a server adds capacity. `timeout` is how long an
    attempt may wait for the server's answer; a generation of max_tokens must fit in it. Failed
    attempts are retried `max_retries` times with exponential backoff and jitter when they timed
    out, could not connect, got 5xx, 408 or 429, or got a body that is not JSON (a cut-off body
    is usually a proxy or network hiccup). Other 4xx, and JSON that is not a chat completion (a
    server speaking another API), fail at once with the server's message.
    """

    name = "vllm"

    def __init__(self, base_urls, model, *, api_key=None, max_in_flight=64, timeout=600.0,
                 connect_timeout=10.0, max_retries=5, backoff_base=0.5, backoff_max=30.0):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise BackendError("no vLLM base URL configured")
        self.base_urls = [normalise_base_url(url) for url in urls]
        if len(set(self.base_urls)) != len(self.base_urls):
            raise BackendError("a vLLM base URL is listed twice")
        if not isinstance(model, str) or not model.strip():
            raise BackendError("no model name given (vLLM's --served-model-name)")
        if max_in_flight < 1 or max_retries < 0 or timeout <= 0 or connect_timeout <= 0:
            raise BackendError("max_in_flight must be at least 1, max_retries at least 0, and "
                               "timeouts above 0")
        self.model = model
        self.max_in_flight, self.max_retries = max_in_flight, max_retries
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def generate(self, requests):
        requests = list(requests)
        finished = {result.key: result for result in self.stream(requests)}
        return [finished[request.key] for request in requests]

    def stream(self, requests, *, send_until=None, wait_until=None):
        requests = list(requests)
        check_unique_keys(requests)
        return self._stream(requests, send_until, wait_until)

    def _stream(self, requests, send_until, wait_until):
        # The event loop runs in its own thread so that the caller stays synchronous: a Celery
        # task can write each result through the ORM, which refuses to run inside an event loop.
        run = _Run(self, requests, send_until)
        run.start()
        try:
            for _ in requests:
                try:
                    timeout = None if wait_until is None else wait_until - time.monotonic()
                    if timeout is not None and timeout <= 0:
                        return
                    item = run.results.get(timeout=timeout)
                except queue.Empty:
                    return  # past wait_until: what is still in flight is abandoned
                if item is _SENT_ALL:
                    return  # send_until passed before every request was sent
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Cancelling closes the connections, and vLLM aborts a request whose client went
            # away, so a cancelled job stops using the GPUs too.
            run.stop()

    async def _run_all(self, requests, emit, stop, send_until=None):
        """Send every request (none after the monotonic time `send_until`), emitting each result;
        setting `stop` abandons what is left."""
        lane_size = min(LANE_CONNECTIONS, self.max_in_flight)
        lanes_per_server = math.ceil(self.max_in_flight / lane_size)
        limits = httpx.Limits(max_connections=lane_size, max_keepalive_connections=lane_size)
        timeout = httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout),
                                pool=None)
        headers = {**self.headers, "Content-Type": "application/json"}
        ssl_context = httpx.create_ssl_context()  # shared: building one per lane is slow
        async with contextlib.AsyncExitStack() as stack:
            servers = []
            for url in self.base_urls:
                lanes = []
                for _ in range(lanes_per_server):
                    client = httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout,
                                               verify=ssl_context)
                    lanes.append(_Lane(await stack.enter_async_context(client)))
                servers.append(_Server(url, lanes))
            balancer = _Balancer(servers, self.max_in_flight, self.backoff_base,
                                 self.backoff_max)
            work = asyncio.create_task(self._send_all(balancer, requests, emit, send_until))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            # Only the sending is cancelled, never this task: a cancellation landing while the
            # clients close would leave their sockets open.
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work

    async def _send_all(self, balancer, requests, emit, send_until=None):
        async with asyncio.TaskGroup() as group:
            # Requests start as servers have room rather than all at once, so a batch of any
            # size costs memory only for what is in flight.
            for request in requests:
                if send_until is not None and time.monotonic() >= send_until:
                    break
                server = await balancer.acquire()
                if send_until is not None and time.monotonic() >= send_until:
                    balancer.release(server)
                    break
                group.create_task(self._complete(balancer, server, request, emit))

    async def _complete(self, balancer, server, request, emit):
        """Send one request, retrying on another server pick each time; `server` is acquired."""
        started = time.monotonic()
        try:
            body = self._encode(request)
            if isinstance(body, _Failure):
                emit(self._result(request, body, 0, started, ""))
                return
            attempt = 0
            while True:
                attempt += 1
                lane = server.lane()
                lane.in_flight += 1
                try:
                    outcome = await self._attempt(lane.client, server.url, body)
                finally:
                    lane.in_flight -= 1
                balancer.record(server, outcome)
                if (isinstance(outcome, _Success) or not outcome.retryable
                        or attempt > self.max_retries):
                    emit(self._result(request, outcome, attempt, started, server.url))
                    return
                # A request waiting to retry gives its place to one that can be sent now.
                balancer.release(server)
                server = None
                await asyncio.sleep(self._backoff(attempt, outcome.retry_after))
                server = await balancer.acquire()
        finally:
            if server is not None:
                balancer.release(server)

    def _encode(self, request):
        sampling = request.sampling
        body = {
            "model": self.model,
            "messages": request.messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        try:
            return json.dumps(body).encode()
        except (TypeError, ValueError) as exc:
            return _Failure(f"the request cannot be sent as JSON: {exc}", retryable=False)

    def _backoff(self, attempt, retry_after):
        step = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        # Jitter spreads a batch's retries out, so a server coming back is not hit by all of
        # them at the same instant; keeping half the step fixed keeps the backoff exponential.
        delay = step / 2 + random.uniform(0, step / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    async def _attempt(self, client, url, body):
        try:
            response = await client.post(f"{url}/v1/chat/completions", content=body)
        except httpx.ConnectTimeout:
            return _Failure(f"timed out connecting to {url}", retryable=True, server_down=True)
        except httpx.TimeoutException:
            return _Failure(f"no answer from {url} within {self.timeout:g} s (timeout)",
                            retryable=True)
        except httpx.TransportError as exc:
            return _Failure(f"connection to {url} failed: {_describe(exc)}", retryable=True,
                            server_down=isinstance(exc, httpx.ConnectError))
        except httpx.RequestError as exc:
            return _Failure(f"unreadable response from {url}: {_describe(exc)}", retryable=True)
        return self._read(response, url)

    def _read(self, response, url):
        status = response.status_code
        if not 200 <= status < 300:
            retryable = status >= 500 or status in RETRYABLE_4XX
            return _Failure(
                f"HTTP {status} from {url}: {_error_detail(response)}", retryable=retryable,
                status=status, retry_after=_retry_after(response) if retryable else None,
                server_down=status in SERVER_DOWN_STATUSES,
            )
        try:
            data = json.loads(response.content)
        except ValueError:
            return _Failure(f"malformed response from {url}: not JSON: "
                            f"{_preview(response.content)!r}", retryable=True, status=status)
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            return _Failure(f"malformed response from {url}: JSON without choices[0].message: "
                            f"{_preview(response.content)!r}", retryable=False, status=status)
        if text is None:
            # vLLM sends null content when everything went to reasoning (cut off while thinking);
            # the strategy's parser then reports the output as empty or truncated.
            text = ""
        if not isinstance(text, str):
            return _Failure(f"malformed response from {url}: message content is "
                            f"{type(text).__name__}, not text", retryable=False, status=status)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        return _Success(
            text=text,
            finish_reason=choice.get("finish_reason"),
            reasoning=reasoning if isinstance(reasoning, str) else "",
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
        )

    def _result(self, request, outcome, attempts, started, url):
        seconds = time.monotonic() - started
        if isinstance(outcome, _Success):
            return GenerationResult(
                key=request.key, text=outcome.text, finish_reason=outcome.finish_reason,
                reasoning=outcome.reasoning, prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens, seconds=seconds,
                attempts=attempts, server=url,
            )
        message = outcome.message
        if attempts > 1:
            message = f"{message} (gave up after {attempts} attempts)"
        return GenerationResult(
            key=request.key, seconds=seconds, attempts=attempts, server=url,
            error=GenerationError(message, retryable=outcome.retryable, status=outcome.status),
        )

    def health(self):
        """One ServerHealth per base URL, from vLLM's /health (200 once the model is loaded)."""
        statuses = []
        with httpx.Client(headers=self.headers, timeout=self.connect_timeout) as client:
            for url in self.base_urls:
                try:
                    response = client.get(f"{url}/health")
                except httpx.HTTPError as exc:
                    statuses.append(ServerHealth(url, False, f"unreachable: {_describe(exc)}"))
                    continue
                if response.status_code == 200:
                    statuses.append(ServerHealth(url, True, "ok"))
                else:
                    statuses.append(ServerHealth(
                        url, False, f"HTTP {response.status_code}: {_error_detail(response)}"))
        return statuses

    def list_models(self):
        """Model names served, from each server's /v1/models; BackendError if none answers."""
        names, problems, answered = [], [], False
        with httpx.Client(headers=self.headers, timeout=self.connect_timeout) as client:
            for url in self.base_urls:
                try:
                    response = client.get(f"{url}/v1/models")
                except httpx.HTTPError as exc:
                    problems.append(f"{url}: unreachable: {_describe(exc)}")
                    continue
                if response.status_code != 200:
                    # The server is up but cannot say what it serves (transformers serve lists
                    # the Hugging Face cache, and answers 500 offline without one): a job still
                    # runs, as check() then asks the server itself with a one-token request.
                    problems.append(f"{url}: /v1/models answered HTTP {response.status_code} "
                                    f"({_error_detail(response)})")
                    answered = True
                    continue
                try:
                    served = [entry["id"] for entry in json.loads(response.content)["data"]]
                except (ValueError, KeyError, TypeError):
                    problems.append(f"{url}: /v1/models is not a model list: "
                                    f"{_preview(response.content)!r}")
                    continue
                names.extend(name for name in served if name not in names)
        if problems and not names:
            hint = ("; name the model yourself: a job asks the server with a one-token request "
                    "whether it serves it") if answered else ""
            raise BackendError("no vLLM server listed its models: " + "; ".join(problems) + hint)
        return names

    def probe(self):
        """None when every server completes a one-token chat request for `model`; else what the
        first one that did not answered."""
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": "Hi"}],
                           "max_tokens": 1, "temperature": 0}).encode()
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        headers = {**self.headers, "Content-Type": "application/json"}
        with httpx.Client(headers=headers, timeout=timeout) as client:
            for url in self.base_urls:
                try:
                    response = client.post(f"{url}/v1/chat/completions", content=body)
                except httpx.HTTPError as exc:
                    return f"{url}: {_describe(exc)}"
                outcome = self._read(response, url)
                if isinstance(outcome, _Failure):
                    return outcome.message
        return None

    def check(self):
        """Raise BackendError unless every server is healthy and serves `model`.

        /v1/models decides when it lists the model. When it does not, or cannot list at all, a
        one-token request does: OpenAI-compatible servers other than vLLM list what they could
        load rather than what they serve (`transformers serve` lists the Hugging Face cache, and
        answers 500 when there is none), and a job must not be refused for that.
        """
        sick = [f"{status.url}: {status.detail}" for status in self.health() if not status.ok]
        if sick:
            raise BackendError("vLLM server not ready: " + "; ".join(sick))
        try:
            served = self.list_models()
            listing = f"their /v1/models lists: {', '.join(served) or 'nothing'}"
        except BackendError as exc:
            served, listing = [], str(exc).partition("; name the model yourself")[0]
        if self.model in served:
            return
        refused = self.probe()
        if refused is None:
            log.warning("model %r: %s, but the servers answered a one-token request for it, so "
                        "the job goes on", self.model, listing)
            return
        raise BackendError(f"the vLLM servers do not serve model {self.model!r}: a one-token "
                           f"request for it answered {refused} ({listing})")


# Put on a stream's queue once every request that was sent has its result.
_SENT_ALL = object()


class _Run:
    """One stream's event loop, in a thread of its own, handing results over a queue."""

    def __init__(self, backend, requests, send_until=None):
        self.backend, self.requests, self.send_until = backend, requests, send_until
        self.results = queue.Queue()
        self.stopping = False
        self.loop = self.stop_event = None
        self.thread = threading.Thread(target=self._main, name="vllm-backend", daemon=True)

    def start(self):
        self.thread.start()

    def _main(self):
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self.results.put(exc)

    async def _run(self):
        self.stop_event = asyncio.Event()
        # Set after the event and before reading `stopping`, while stop() sets `stopping` before
        # reading `loop`: so either this sees the stop or stop() sees the loop to signal.
        self.loop = asyncio.get_running_loop()
        if self.stopping:
            return
        await self.backend._run_all(self.requests, self.results.put, self.stop_event,
                                    self.send_until)
        # Tells the caller that no more results come (fewer than requests when send_until passed).
        self.results.put(_SENT_ALL)

    def stop(self):
        self.stopping = True
        loop = self.loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.stop_event.set)
            except RuntimeError:
                pass  # the loop has already finished
        self.thread.join()
