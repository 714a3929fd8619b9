"""A stand-in for vLLM's OpenAI-compatible server, started on loopback by tests and the benchmark
(no GPU or model here): it answers like `vllm serve`, and delays, fails or hangs on demand.
"""
import asyncio
import collections
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           408: "Request Timeout", 422: "Unprocessable Entity", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


def prompt_digest(messages, seed=None):
    payload = json.dumps([messages, seed], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def reply_text(messages, seed=None):
    """The stand-in's deterministic reply: seven words derived from the request."""
    digest = prompt_digest(messages, seed)
    return "Reply " + " ".join(digest[i:i + 4] for i in range(0, 24, 4))


@dataclass
class Call:
    body: object  # the parsed JSON, or None when it was not JSON
    authorization: str | None
    action: object
    started: float  # time.monotonic() on arrival
    finished: float | None = None  # when answered (or dropped); None while in flight


def _words(text):
    return re.findall(r"\S+\s*", text)


class StandIn:
    """Serves /health, /v1/models and /v1/chat/completions from a thread of its own.

        with StandIn(delay=0.2, max_concurrent=64) as server:
            backend = VLLMBackend(server.url, server.model)

    It is an asyncio HTTP/1.1 server with keep-alive, so a thousand delayed requests cost a
    thousand sleeping coroutines, not threads; `max_concurrent` (set before start) makes extra
    requests wait their turn, as a full server would. Its reply to a chat completion is
    `reply_text(messages, seed)`, a hash of the request, wrapped in `template` (e.g.
    "<think>why</think><answer>{text}</answer>"); one whitespace-separated word is one token, and a
    request's max_tokens cuts the reply with finish_reason "length".

    Behaviour per chat completion call, first match wins:
    - `script(*actions)` queues actions for the next calls in arrival order;
    - `fail_fraction` picks prompts by their hash (so always the same ones) and fails each of them
      `fail_attempts` times with `fail_status`, then answers it;
    - otherwise "ok".
    Actions: "ok", an HTTP status int (400, 429, 500, 503, ...), "timeout" (answers only after
    `hang_seconds`), "malformed" (200 with cut-off JSON), "bad-shape" (200, JSON but not a chat
    completion), "disconnect" (closes the connection without answering).
    It records `calls` (a `Call` each, in arrival order), `count` and the most requests it held
    at once, `max_in_flight`; `healthy = False` makes /health answer 503.
    """

    def __init__(self, *, delay=0.0, max_concurrent=None, template="{text}", fail_fraction=0.0,
                 fail_status=503, fail_attempts=1, hang_seconds=30.0, retry_after=None,
                 model="standin-model", api_key=None, host="127.0.0.1", port=0,
                 models_status=200):
        self.delay, self.max_concurrent = delay, max_concurrent
        self.template = template
        self.fail_fraction, self.fail_status = fail_fraction, fail_status
        self.fail_attempts = fail_attempts
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after  # seconds, sent as Retry-After with 429 and 503
        self.model, self.api_key = model, api_key
        # Another status makes /v1/models fail as `transformers serve` does offline (500).
        self.models_status = models_status
        self.host, self.port = host, port
        self.healthy = True
        self._script = collections.deque()
        self._seen = collections.Counter()
        self.calls = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop = self._thread = self._server = self._limit = None
        self._connections = set()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def count(self):
        return len(self.calls)

    def script(self, *actions):
        self._script.extend(actions)

    def start(self):
        ready = threading.Event()
        failure = []

        def serve():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="standin", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self):
        if self._loop is None or self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    async def _open(self):
        self._server = await asyncio.start_server(self._connection, self.host, self.port,
                                                  backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.max_concurrent:
            self._limit = asyncio.Semaphore(self.max_concurrent)

    async def _close(self):
        self._server.close()
        # Hung handlers ("timeout") would otherwise keep the thread alive past the test.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader, writer):
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels; ending quietly keeps asyncio from logging each connection.
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _exchange(self, reader, writer):
        """Serve one request on the connection; False when the connection should close."""
        line = await reader.readline()
        if not line.strip():
            return False
        method, target, _version = line.decode("latin-1").split()
        headers = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        if method == "GET" and path == "/health":
            status, payload = (200, b"") if self.healthy else (503, b"")
        elif method == "GET" and path == "/v1/models":
            status, payload = self._authorised(headers) or (
                (200, self._models()) if self.models_status == 200
                else (self.models_status, b"Internal Server Error"))
        elif method == "POST" and path == "/v1/chat/completions":
            answer = await self._chat(headers, body)
            if answer is None:
                return False
            status, payload = answer
        else:
            status, payload = 404, _error(404, f"no route {method} {path}")
        keep_alive = headers.get("connection", "").lower() != "close"
        await self._send(writer, status, payload, keep_alive)
        return keep_alive

    async def _send(self, writer, status, payload, keep_alive):
        extra = ""
        if status in (429, 503) and self.retry_after is not None:
            extra = f"Retry-After: {self.retry_after:g}\r\n"
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n{extra}\r\n")
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()

    def _authorised(self, headers):
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, _error(401, "Unauthorized")
        return None

    def _models(self):
        return json.dumps({"object": "list", "data": [
            {"id": self.model, "object": "model", "created": 0, "owned_by": "vllm"}]}).encode()

    def _action(self, request):
        if self._script:
            return self._script.popleft()
        if self.fail_fraction and isinstance(request, dict):
            digest = prompt_digest(request.get("messages"), request.get("seed"))
            if int(digest[:8], 16) / 16 ** 8 < self.fail_fraction:
                self._seen[digest] += 1
                if self._seen[digest] <= self.fail_attempts:
                    return self.fail_status
        return "ok"

    async def _chat(self, headers, body):
        """(status, payload) for one chat completion, or None to drop the connection."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        call = None
        try:
            try:
                request = json.loads(body)
            except ValueError:
                request = None
            action = self._action(request)
            call = Call(request, headers.get("authorization"), action, time.monotonic())
            self.calls.append(call)
            if self._limit is not None:
                async with self._limit:
                    return await self._act(action, headers, request)
            return await self._act(action, headers, request)
        finally:
            self.in_flight -= 1
            if call is not None:
                call.finished = time.monotonic()

    async def _act(self, action, headers, request):
        if self.delay:
            await asyncio.sleep(self.delay)
        if action == "timeout":
            await asyncio.sleep(self.hang_seconds)
            action = "ok"
        if action == "disconnect":
            return None
        if action == "malformed":
            return 200, b'{"id": "chatcmpl-standin", "object": "chat.completion", "choices": [{"ind'
        if action == "bad-shape":
            return 200, b'{"object": "list", "data": []}'
        if isinstance(action, int):
            return action, _error(action, f"stand-in failure {action} on request")
        denied = self._authorised(headers)
        if denied:
            return denied
        return self._complete(request)

    def _complete(self, request):
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            return 400, _error(400, "request body must be a JSON object with a messages list")
        if request.get("model") != self.model:
            return 404, _error(404, f"The model `{request.get('model')}` does not exist.")
        messages = request["messages"]
        if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
            return 400, _error(400, "each message needs a role and text content")
        text = self.template.replace("{text}", reply_text(messages, request.get("seed")))
        words = _words(text)
        finish_reason = "stop"
        max_tokens = request.get("max_tokens")
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            words, finish_reason = words[:max_tokens], "length"
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        return 200, json.dumps({
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {
                "role": "assistant", "content": "".join(words).rstrip()}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                      "total_tokens": prompt_tokens + len(words)},
        }).encode()


def _error(status, message):
    # vLLM's error body: {"object": "error", "message": ..., "type": ..., "code": ...}
    return json.dumps({"object": "error", "message": message,
                       "type": REASONS.get(status, "Error").replace(" ", "") + "Error",
                       "param": None, "code": status}).encode()
