"""The Anthropic adapter through the real `anthropic` SDK against a fake Messages API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.providers import CallSettings, RowError
from reconciler.providers.anthropic_adapter import AnthropicAdapter
from support.fake_providers import (
    FakeProvider,
    Recorded,
    Reply,
    anthropic_error,
    anthropic_message,
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


@pytest.fixture
def server() -> Iterator[FakeProvider]:
    fake = FakeProvider(lambda _request: Reply(anthropic_message(VALID_TEXT)))
    with fake.running():
        yield fake


def classify(server: FakeProvider, *, sleep: RecordingSleep | None = None,
             **settings: Any) -> dict[str, Any]:
    adapter = AnthropicAdapter(
        taxonomy=TAXONOMY, settings=CallSettings(**settings), base_url=server.url,
        sleep=sleep or RecordingSleep(),
    )

    async def run() -> dict[str, Any]:
        try:
            return await adapter.classify("Classify this.", model="claude-test")
        finally:
            await adapter.close()

    return asyncio.run(run())


def test_anthropic_returns_structured_output(server: FakeProvider) -> None:
    assert classify(server) == VALID_OUTPUT
    request: Recorded = server.requests[0]
    assert request.path == "/v1/messages"
    # The SDK sends the key as x-api-key or, from 2.x, as a bearer token.
    credential = request.headers.get("x-api-key") or request.headers.get("authorization", "")
    assert credential.endswith("test-anthropic-key")
    assert request.body["model"] == "claude-test"
    assert request.body["output_config"]["format"]["type"] == "json_schema"
    schema = request.body["output_config"]["format"]["schema"]
    assert schema["required"] == ["confidence_increase", "risk_min_cues"]


def test_anthropic_retries_429_after_retry_after(server: FakeProvider) -> None:
    server.script(Reply(anthropic_error("rate_limit_error", "slow down"), status=429,
                        headers={"retry-after": "0.5"}))
    sleep = RecordingSleep()
    assert classify(server, sleep=sleep) == VALID_OUTPUT
    assert sleep.waits == [0.5]
    assert len(server.requests) == 2


def test_anthropic_retries_529_overloaded(server: FakeProvider) -> None:
    server.script(Reply(anthropic_error("overloaded_error", "busy"), status=529,
                        headers={"retry-after": "1"}))
    sleep = RecordingSleep()
    assert classify(server, sleep=sleep) == VALID_OUTPUT
    assert sleep.waits == [1.0]


def test_anthropic_gives_up_after_max_attempts(server: FakeProvider) -> None:
    error = Reply(anthropic_error("api_error", "boom"), status=500)
    server.script(error, error, error)
    with pytest.raises(RowError) as raised:
        classify(server, max_attempts=3, backoff_s=0.1)
    assert raised.value.kind == "server_error"
    assert "after 3 attempts" in str(raised.value)
    assert len(server.requests) == 3


def test_anthropic_timeout_is_row_error(server: FakeProvider) -> None:
    server.script(Reply(anthropic_message(VALID_TEXT), delay_s=2.0))
    with pytest.raises(RowError) as raised:
        classify(server, timeout_s=0.3, max_attempts=1)
    assert raised.value.kind == "timeout"


def test_anthropic_timeout_then_success(server: FakeProvider) -> None:
    server.script(Reply(anthropic_message(VALID_TEXT), delay_s=2.0))
    assert classify(server, timeout_s=0.3, max_attempts=2) == VALID_OUTPUT


def test_anthropic_truncated_json_is_row_error(server: FakeProvider) -> None:
    server.script(Reply(anthropic_message(TRUNCATED_TEXT, stop_reason="max_tokens")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "truncated"


def test_anthropic_cut_json_without_stop_reason(server: FakeProvider) -> None:
    server.script(Reply(anthropic_message(TRUNCATED_TEXT)))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "truncated"


def test_anthropic_refusal_is_row_error(server: FakeProvider) -> None:
    server.script(Reply(anthropic_message("", stop_reason="refusal")))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "refusal"


def test_anthropic_missing_label_is_malformed(server: FakeProvider) -> None:
    server.script(Reply(anthropic_message('{"confidence_increase": 0.4}')))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "malformed"
    assert "risk_min_cues" in raised.value.message


def test_anthropic_bad_request_is_not_retried(server: FakeProvider) -> None:
    server.script(Reply(anthropic_error("invalid_request_error", "bad model"), status=400))
    with pytest.raises(RowError) as raised:
        classify(server)
    assert raised.value.kind == "http_error"
    assert "bad model" in raised.value.message
    assert len(server.requests) == 1


def test_anthropic_missing_key_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(Exception, match="ANTHROPIC_API_KEY is not set"):
        AnthropicAdapter.check_api_key({})
