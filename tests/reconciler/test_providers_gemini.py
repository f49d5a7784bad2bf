"""The Gemini adapter through the real `google-genai` SDK against a fake generateContent API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.providers import CallSettings, RowError
from reconciler.providers.gemini_adapter import GeminiAdapter
from support.fake_providers import (
    FakeProvider,
    Reply,
    gemini_blocked,
    gemini_error,
    gemini_response,
)
from support.provider_tests import (
    DUMMY_KEYS,
    TAXONOMY,
    TRUNCATED_TEXT,
    VALID_OUTPUT,
    VALID_TEXT,
    RecordingSleep,
)


@pytest.fixture(autouse=True)
def dummy_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DUMMY_KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


@pytest.fixture
def server() -> Iterator[FakeProvider]:
    fake = FakeProvider(lambda _request: Reply(gemini_response(VALID_TEXT)))
    with fake.running():
        yield fake


def classify(server: FakeProvider, *, sleep: RecordingSleep | None = None,
             **settings: Any) -> dict[str, Any]:
    adapter = GeminiAdapter(
        taxonomy=TAXONOMY, settings=CallSettings(**settings), base_url=server.url,
        sleep=sleep or RecordingSleep(),
    )

    async def run() -> dict[str, Any]:
        try:
            return await adapter.classify("Classify this.", model="gemini-test")
        finally:
            await adapter.close()

    return asyncio.run(run())


def test_gemini_returns_structured_output(server: FakeProvider) -> None:
    assert classify(server) == VALID_OUTPUT
    request = server.requests[0]
    assert request.path.endswith("/models/gemini-test:generateContent")
    assert request.headers["x-goog-api-key"] == "test-gemini-key"
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["required"] == ["confidence_increase", "risk_min_cues"]


def test_gemini_retries_429_after_retry_after(server: FakeProvider) -> None:
    server.script(Reply(gemini_error(429, "RESOURCE_EXHAUSTED", "quota"), status=429,
                        headers={"retry-after": "0.75"}))
    sleep = RecordingSleep()
    assert classify(server, sleep=sleep) == VALID_OUTPUT
    assert sleep.waits == [0.75]
    assert len(server.requests) == 2


def test_gemini_timeout_is_row_error(server: FakeProvider) -> None:
    server.script(Reply(gemini_response(VALID_TEXT), delay_s=2.0))
    with pytest.raises(RowError) as raised:
        classify(server, timeout_s=0.3, max_attempts=1)
    assert raised.value.kind == "timeout"


def test_gemini_max_tokens_is_truncated(server: FakeProvider) -> None:
    server.script(Reply(gemini_response(TRUNCATED_TEXT, finish_reason="MAX_TOKENS")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "truncated"


def test_gemini_blocked_prompt_is_refusal(server: FakeProvider) -> None:
    server.script(Reply(gemini_blocked("SAFETY")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "refusal"
    assert "SAFETY" in raised.value.message


def test_gemini_safety_finish_is_refusal(server: FakeProvider) -> None:
    server.script(Reply(gemini_response("", finish_reason="SAFETY")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "refusal"


def test_gemini_truncated_json_without_reason(server: FakeProvider) -> None:
    server.script(Reply(gemini_response(TRUNCATED_TEXT)))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "truncated"


def test_gemini_bad_request_is_not_retried(server: FakeProvider) -> None:
    server.script(Reply(gemini_error(400, "INVALID_ARGUMENT", "bad schema"), status=400))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "http_error"
    assert len(server.requests) == 1
