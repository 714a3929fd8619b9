"""The one interface every generation backend implements, and the values that cross it.
A backend turns chat requests into texts; the caller (a Celery task) decides what to store.
"""
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field


class BackendError(Exception):
    """The backend as a whole cannot serve (misconfigured, or no server reachable)."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None

    def __post_init__(self):
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be 0 or more, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be above 0 and at most 1, not {self.top_p}")
        if not (isinstance(self.max_tokens, int) and self.max_tokens >= 1):
            raise ValueError(f"max_tokens must be a whole number, at least 1, not "
                             f"{self.max_tokens}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be a whole number or None, not {self.seed!r}")


@dataclass(frozen=True)
class GenerationRequest:
    key: Hashable  # the caller's handle (an item id, say), carried back on the result
    messages: list[dict[str, str]]
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class GenerationError:
    message: str
    # True when trying again later may succeed (timeouts, 5xx, 429, cut-off bodies), after the
    # backend's own retries ran out; False when it cannot (4xx, a server speaking another API).
    retryable: bool
    status: int | None = None

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class GenerationResult:
    key: Hashable
    text: str | None = None
    error: GenerationError | None = None
    finish_reason: str | None = None  # "stop", "length" (hit max_tokens), ...; see strategies
    reasoning: str = ""  # what the server split off itself (vLLM --reasoning-parser), if anything
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # from the first attempt to the result, retries and backoff included
    attempts: int = 0
    server: str = ""  # base URL (or device) that produced the last attempt

    def __post_init__(self):
        if (self.text is None) == (self.error is None):
            raise ValueError("a result has either text or an error, never both or neither")

    @property
    def ok(self):
        return self.error is None


class Backend(ABC):
    """Generates one result per request; a failed request is a result with an error, not an
    exception, so one bad item never loses the rest of a batch."""

    name = ""

    @abstractmethod
    def generate(self, requests: Iterable[GenerationRequest]) -> list[GenerationResult]:
        """Results in the order of `requests`. Keys must be unique."""

    def check(self):
        """Raise BackendError when the backend cannot serve at all (a job then fails with the
        reason before any item is tried); backends with something to check override this."""

    def stream(self, requests: Iterable[GenerationRequest], *, send_until: float | None = None,
               wait_until: float | None = None) -> Iterator[GenerationResult]:
        """Results as they finish, so the caller can store each at once; stopping the iteration
        (break, close) stops sending requests. No request starts after the time.monotonic()
        `send_until`, and the stream ends at `wait_until` with what finished; requests without a
        result were not done. Backends that can do better override this: this one generates the
        whole batch in one call, so it honours neither (its chunks must fit the time box)."""
        yield from self.generate(requests)


def check_unique_keys(requests):
    seen = set()
    for request in requests:
        if request.key in seen:
            raise ValueError(f"two requests share the key {request.key!r}")
        seen.add(request.key)
