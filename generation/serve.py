"""`transformers serve` as a subprocess: an OpenAI-compatible server for one model folder, started
on a free port for the tests, `make` targets and the GPU check, and stopped with its children.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVING_HINT = ('`transformers serve` needs fastapi, uvicorn and openai: pip install -e ".[real]"')


class ServerError(Exception):
    """The server did not come up; the message holds the end of its log."""


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def transformers_cli():
    # The console script beside this interpreter, so the venv's transformers is the one run.
    script = Path(sys.executable).with_name("transformers")
    if not script.exists():
        raise ServerError(f"no `transformers` command beside {sys.executable}")
    return str(script)


class TransformersServer:
    """`transformers serve MODEL`, pinned to that model: requests must name `self.model` (the
    server answers 400 to any other name). Use as a context manager, or start() and stop().

    Offline (HF_HUB_OFFLINE=1, set here) it loads nothing from the Hub; its /v1/models lists the
    Hugging Face cache rather than the pinned model, and answers 500 when there is no cache.
    """

    def __init__(self, model, *, host="127.0.0.1", port=0, device="cpu", args=(), log_path=None,
                 start_timeout=300.0, env=None):
        self.model = str(model)
        self.host, self.port, self.device = host, port, device
        self.args, self.start_timeout = list(args), start_timeout
        self.log_path = Path(log_path) if log_path else None
        self.env = env or {}
        self.process = self._log = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        if not self.port:
            self.port = free_port(self.host)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", **self.env}
        command = [transformers_cli(), "serve", self.model, "--host", self.host,
                   "--port", str(self.port), "--device", self.device, "--log-level", "warning",
                   *self.args]
        self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        # A session of its own, so that stop() reaches whatever the server starts.
        self.process = subprocess.Popen(command, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(f"`transformers serve` exited with status "
                                      f"{self.process.returncode}: {self.log_tail()}")
                try:
                    # /health answers before the first request loads anything, so readiness is a
                    # one-token completion: it also proves the pinned model loads.
                    response = client.post(f"{self.url}/v1/chat/completions", timeout=120.0, json={
                        "model": self.model, "max_tokens": 1, "temperature": 0,
                        "messages": [{"role": "user", "content": "Hi"}]})
                except httpx.HTTPError:
                    time.sleep(0.5)
                    continue
                if response.status_code == 200:
                    return
                raise ServerError(f"`transformers serve` answered HTTP {response.status_code} to "
                                  f"a first request: {response.text[:500]} {self.log_tail()}")
        raise ServerError(f"`transformers serve` not ready after {self.start_timeout:g} s: "
                          f"{self.log_tail()}")

    def log_tail(self, chars=3000):
        if not self.log_path or not self.log_path.exists():
            return "(no log kept)"
        if hasattr(self._log, "flush"):
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        if hasattr(self._log, "close"):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
