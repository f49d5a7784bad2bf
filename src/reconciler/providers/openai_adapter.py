"""The OpenAI adapter: Chat Completions through the `openai` SDK.

Structured output is requested with `response_format` of type `json_schema`
(strict). A `message.refusal` or a `content_filter` finish is a refusal and a
`length` finish a truncated output; all become a `RowError`. The SDK reads
`OPENAI_API_KEY` (and `OPENAI_BASE_URL` when no base URL is passed).
"""

from __future__ import annotations

from typing import Any

import openai

from reconciler.providers.base import (
    ProviderAdapter,
    RowError,
    TransientError,
    parse_retry_after,
    status_is_transient,
)


class OpenAIAdapter(ProviderAdapter):
    provider = "openai"
    api_key_variables = ("OPENAI_API_KEY",)
    _client: openai.AsyncOpenAI | None = None

    def _sdk(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, timeout=self.settings.timeout_s, max_retries=0
            )
        return self._client

    async def _request(self, prompt: str, *, model: str) -> str:
        try:
            completion = await self._sdk().chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": prompt}],
                max_completion_tokens=self.settings.max_output_tokens,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "q2q_labels", "schema": self.schema, "strict": True},
                },
            )
        except openai.APITimeoutError:
            raise TransientError("timeout", f"no response within {self.settings.timeout_s} s") \
                from None
        except openai.APIConnectionError as error:
            raise TransientError("connection", str(error)) from None
        except openai.APIStatusError as error:
            raise _status_error(error) from None
        if not completion.choices:
            raise RowError("malformed", "the response has no choices")
        choice = completion.choices[0]
        if choice.message.refusal:
            raise RowError("refusal", f"the model refused: {choice.message.refusal}")
        if choice.finish_reason == "content_filter":
            raise RowError("refusal", "the output was withheld by the content filter")
        if choice.finish_reason == "length":
            raise RowError("truncated", f"the output reached max_completion_tokens "
                                        f"({self.settings.max_output_tokens})")
        return choice.message.content or ""

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _status_error(error: openai.APIStatusError) -> Exception:
    status = error.status_code
    message = f"HTTP {status}: {_error_message(error.body) or error.message}"
    if status_is_transient(status):
        retry_after = parse_retry_after(error.response.headers.get("retry-after"))
        kind = "rate_limited" if status == 429 else "server_error"
        return TransientError(kind, message, retry_after_s=retry_after)
    return RowError("http_error", message)


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str):
            return message
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return None
