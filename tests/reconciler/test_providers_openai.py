"""The OpenAI adapter through the real `openai` SDK against a fake Chat Completions API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.providers import CallSettings, RowError
from reconciler.providers.openai_adapter import OpenAIAdapter
from support.fake_providers import FakeProvider, Reply, openai_completion, openai_error
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


@pytest.fixture
def server() -> Iterator[FakeProvider]:
    fake = FakeProvider(lambda _request: Reply(openai_completion(VALID_TEXT)))
    with fake.running():
        yield fake


def classify(server: FakeProvider, *, sleep: RecordingSleep | None = None,
             **settings: Any) -> dict[str, Any]:
    adapter = OpenAIAdapter(
        taxonomy=TAXONOMY, settings=CallSettings(**settings), base_url=f"{server.url}/v1",
        sleep=sleep or RecordingSleep(),
    )

    async def run() -> dict[str, Any]:
        try:
            return await adapter.classify("Classify this.", model="gpt-test")
        finally:
            await adapter.close()

    return asyncio.run(run())


def test_openai_returns_structured_output(server: FakeProvider) -> None:
    assert classify(server) == VALID_OUTPUT
    request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-openai-key"
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["additionalProperties"] is False


def test_openai_retries_429_after_retry_after(server: FakeProvider) -> None:
    server.script(Reply(openai_error("rate_limit_exceeded", "slow down"), status=429,
                        headers={"retry-after": "0.25"}))
    sleep = RecordingSleep()
    assert classify(server, sleep=sleep) == VALID_OUTPUT
    assert sleep.waits == [0.25]
    assert len(server.requests) == 2


def test_openai_retries_503_with_backoff(server: FakeProvider) -> None:
    server.script(Reply(openai_error("server_error", "unavailable"), status=503))
    sleep = RecordingSleep()
    assert classify(server, sleep=sleep, backoff_s=0.2) == VALID_OUTPUT
    assert len(sleep.waits) == 1
    assert 0.1 <= sleep.waits[0] <= 0.2


def test_openai_timeout_is_row_error(server: FakeProvider) -> None:
    server.script(Reply(openai_completion(VALID_TEXT), delay_s=2.0))
    with pytest.raises(RowError) as raised:
        classify(server, timeout_s=0.3, max_attempts=1)
    assert raised.value.kind == "timeout"


def test_openai_length_finish_is_truncated(server: FakeProvider) -> None:
    server.script(Reply(openai_completion(TRUNCATED_TEXT, finish_reason="length")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "truncated"


def test_openai_refusal_is_row_error(server: FakeProvider) -> None:
    server.script(Reply(openai_completion(None, refusal="I can't help with that.")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "refusal"
    assert "I can't help with that." in raised.value.message


def test_openai_content_filter_is_refusal(server: FakeProvider) -> None:
    server.script(Reply(openai_completion(None, finish_reason="content_filter")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "refusal"


def test_openai_non_json_is_malformed(server: FakeProvider) -> None:
    server.script(Reply(openai_completion("Sure! Here are the labels.")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "malformed"


def test_openai_confidence_out_of_range(server: FakeProvider) -> None:
    server.script(Reply(openai_completion('{"confidence_increase": 1.7, "risk_min_cues": []}')))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "malformed"
    assert "1.7" in raised.value.message
