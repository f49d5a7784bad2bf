"""The Anthropic adapter: the Messages API through the `anthropic` SDK.

Structured output is requested with `output_config.format` of type
`json_schema`. A `stop_reason` of `refusal` is a refusal and `max_tokens` a
truncated output; both become a `RowError`. The SDK reads `ANTHROPIC_API_KEY`
(and `ANTHROPIC_BASE_URL` when no base URL is passed).
"""

from __future__ import annotations

from typing import Any

import anthropic

from reconciler.providers.base import (
    ProviderAdapter,
    RowError,
    TransientError,
    parse_retry_after,
    status_is_transient,
)


class AnthropicAdapter(ProviderAdapter):
    provider = "claude"
    api_key_variables = ("ANTHROPIC_API_KEY",)
    _client: anthropic.AsyncAnthropic | None = None

    def _sdk(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                base_url=self.base_url, timeout=self.settings.timeout_s, max_retries=0
            )
        return self._client

    async def _request(self, prompt: str, *, model: str) -> str:
        try:
            message = await self._sdk().messages.create(
                model=model,
                max_tokens=self.settings.max_output_tokens,
                messages=[{"role": "user", "content": prompt}],
                output_config={"format": {"type": "json_schema", "schema": self.schema}},
            )
        except anthropic.APITimeoutError:
            raise TransientError("timeout", f"no response within {self.settings.timeout_s} s") \
                from None
        except anthropic.APIConnectionError as error:
            raise TransientError("connection", str(error)) from None
        except anthropic.APIStatusError as error:
            raise _status_error(error) from None
        if message.stop_reason == "refusal":
            raise RowError("refusal", "the model refused to classify this text")
        if message.stop_reason == "max_tokens":
            raise RowError("truncated", f"the output reached max_tokens "
                                        f"({self.settings.max_output_tokens})")
        return "".join(block.text for block in message.content if block.type == "text")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _status_error(error: anthropic.APIStatusError) -> Exception:
    status = error.status_code
    message = f"HTTP {status}: {_error_message(error.body) or error.message}"
    if status_is_transient(status):
        retry_after = parse_retry_after(error.response.headers.get("retry-after"))
        kind = "rate_limited" if status == 429 else "server_error"
        return TransientError(kind, message, retry_after_s=retry_after)
    return RowError("http_error", message)


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return None
