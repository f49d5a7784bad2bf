"""The shared part of every provider adapter: output schema, retries, timeouts, errors.

An adapter sends one rendered prompt to its provider's SDK and returns the
structured output, a mapping of every taxonomy label to a confidence (for a
probability label) or a list of signals or cues (for a count label).
`ProviderAdapter.classify` wraps the adapter's `_request` with:

- a semaphore that bounds the requests in flight to this provider;
- bounded retries on 429, 5xx, timeouts and connection errors, waiting the
  server's `retry-after` when it sends one and exponential backoff when not;
- parsing that turns truncated or malformed output, or a refusal, into a
  `RowError` for that row. A row error is never read as "no labels".

The SDKs' own retries are switched off so that this policy is the only one.
API keys are read by each SDK from its standard environment variable; this
module only checks that the variable is set. The evaluation harness calls it.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from registry_state.errors import Q2QError
from registry_state.taxonomy import Taxonomy, ThresholdKind

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class ProviderConfigError(Q2QError):
    """A provider cannot be used: unknown name, or its API key variable is not set."""


class RowError(Exception):
    """A provider gave no usable output for one row; `kind` names the reason."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class TransientError(Exception):
    """A request failed in a way worth retrying: 429, 5xx, a timeout or a lost connection."""

    def __init__(self, kind: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class CallSettings:
    """Limits of the calls to one provider."""

    timeout_s: float = 60.0
    max_attempts: int = 4
    concurrency: int = 8
    backoff_s: float = 1.0
    max_wait_s: float = 60.0
    max_output_tokens: int = 1024


def output_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """Return the JSON schema of the structured output every provider is asked for."""
    properties: dict[str, Any] = {}
    for name, kind in taxonomy.thresholds:
        if kind is ThresholdKind.PROBABILITY:
            properties[name] = {"type": "number", "minimum": 0, "maximum": 1,
                                "description": f"confidence from 0 to 1 that {name} applies"}
        else:
            properties[name] = {"type": "array", "items": {"type": "string"},
                                "description": f"the distinct signals or cues for {name}"}
    return {"type": "object", "properties": properties, "required": list(taxonomy.names),
            "additionalProperties": False}


def parse_output(text: str, *, taxonomy: Taxonomy) -> dict[str, Any]:
    """Parse a provider's JSON text into the structured output, or raise `RowError`."""
    if not text.strip():
        raise RowError("malformed", "the response has no text")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        kind = "truncated" if error.pos >= len(text.rstrip()) else "malformed"
        raise RowError(kind, f"invalid JSON at character {error.pos}: {error.msg}") from None
    if not isinstance(data, dict):
        raise RowError("malformed", f"expected a JSON object, got {type(data).__name__}")
    output: dict[str, Any] = {}
    for name, kind in taxonomy.thresholds:
        value = data.get(name)
        if kind is ThresholdKind.PROBABILITY:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 <= value <= 1:
                raise RowError("malformed", f"{name}: expected a confidence from 0 to 1, "
                                            f"got {value!r}")
            output[name] = float(value)
        else:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RowError("malformed", f"{name}: expected a list of strings, got {value!r}")
            output[name] = value
    return output


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the wait a `retry-after` header requests, in seconds, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def status_is_transient(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


class ProviderAdapter(abc.ABC):
    """One provider's SDK client with the shared retry, timeout and concurrency policy."""

    provider: str = ""
    api_key_variables: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        settings: CallSettings | None = None,
        base_url: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.taxonomy = taxonomy
        self.settings = settings or CallSettings()
        self.base_url = base_url
        self.schema = output_schema(taxonomy)
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self.calls = 0
        self.retries = 0

    @classmethod
    def check_api_key(cls, environ: Mapping[str, str]) -> None:
        """Raise `ProviderConfigError` unless one of the provider's key variables is set."""
        if not any(environ.get(name) for name in cls.api_key_variables):
            names = " or ".join(cls.api_key_variables)
            raise ProviderConfigError(
                f"{names} is not set; export the {cls.provider} API key in the environment "
                "before running 'q2q eval run' (keys are never read from files or flags)"
            )

    def parameters(self, model: str) -> dict[str, Any]:
        """Return the request parameters that, with the prompt, decide the output."""
        return {"max_output_tokens": self.settings.max_output_tokens, "schema": self.schema}

    async def classify(self, prompt: str, *, model: str) -> dict[str, Any]:
        """Return the structured output for one prompt, or raise `RowError`."""
        async with self._semaphore:
            return await self._classify_with_retries(prompt, model=model)

    async def _classify_with_retries(self, prompt: str, *, model: str) -> dict[str, Any]:
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            self.calls += 1
            try:
                text = await self._request(prompt, model=model)
            except TransientError as error:
                if attempt == attempts:
                    raise RowError(error.kind, f"{error.message} (after {attempts} attempts)") \
                        from None
                wait = self._wait_before(attempt, error)
                self.retries += 1
                logger.warning("Retrying %s %s in %.2f s after %s (attempt %d of %d)",
                               self.provider, model, wait, error, attempt, attempts)
                await self._sleep(wait)
                continue
            return parse_output(text, taxonomy=self.taxonomy)
        raise AssertionError("the retry loop returns or raises")

    def _wait_before(self, attempt: int, error: TransientError) -> float:
        if error.retry_after_s is not None:
            return min(error.retry_after_s, self.settings.max_wait_s)
        backoff: float = self.settings.backoff_s * 2.0 ** (attempt - 1)
        return min(backoff * (0.5 + random.random() / 2), self.settings.max_wait_s)

    @abc.abstractmethod
    async def _request(self, prompt: str, *, model: str) -> str:
        """Send one request; return the output text or raise `RowError`/`TransientError`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the SDK client's connections."""
