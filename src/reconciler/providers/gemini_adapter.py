"""The Gemini adapter: generateContent through the `google-genai` SDK.

Structured output is requested with `response_mime_type` application/json and
a response JSON schema. A blocked prompt (`promptFeedback.blockReason`), no
candidate, or a safety-type `finishReason` is a refusal, and `MAX_TOKENS` a
truncated output; all become a `RowError`. The SDK reads `GEMINI_API_KEY` or
`GOOGLE_API_KEY` (and `GOOGLE_GEMINI_BASE_URL` when no base URL is passed).
"""

from __future__ import annotations

import httpx
import httpx2
from google import genai
from google.genai import errors, types

from reconciler.providers.base import (
    ProviderAdapter,
    RowError,
    TransientError,
    parse_retry_after,
    status_is_transient,
)

_REFUSAL_REASONS = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                    "IMAGE_SAFETY", "LANGUAGE"}


class GeminiAdapter(ProviderAdapter):
    provider = "gemini"
    api_key_variables = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    _client: genai.Client | None = None

    def _sdk(self) -> genai.Client:
        if self._client is None:
            self._client = genai.Client(
                http_options=types.HttpOptions(
                    base_url=self.base_url,
                    timeout=int(self.settings.timeout_s * 1000),
                    retry_options=types.HttpRetryOptions(attempts=1),
                )
            )
        return self._client

    async def _request(self, prompt: str, *, model: str) -> str:
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=self.schema,
            max_output_tokens=self.settings.max_output_tokens,
        )
        try:
            response = await self._sdk().aio.models.generate_content(
                model=model, contents=prompt, config=config
            )
        except (httpx.TimeoutException, httpx2.TimeoutException):
            raise TransientError("timeout", f"no response within {self.settings.timeout_s} s") \
                from None
        except (httpx.TransportError, httpx2.TransportError) as error:
            raise TransientError("connection", str(error) or type(error).__name__) from None
        except errors.APIError as error:
            raise _status_error(error) from None

        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise RowError("refusal", f"the prompt was blocked: {_name(feedback.block_reason)}")
        if not response.candidates:
            raise RowError("refusal", "the response has no candidate")
        candidate = response.candidates[0]
        reason = _name(candidate.finish_reason)
        if reason == "MAX_TOKENS":
            raise RowError("truncated", f"the output reached max_output_tokens "
                                        f"({self.settings.max_output_tokens})")
        if reason in _REFUSAL_REASONS:
            raise RowError("refusal", f"generation stopped with finishReason {reason}")
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        return "".join(part.text for part in parts if part.text and not part.thought)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
            self._client = None


def _name(value: object) -> str:
    return str(getattr(value, "value", value))


def _status_error(error: errors.APIError) -> Exception:
    status = int(error.code or 0)
    message = f"HTTP {status}: {error.message or error.status}"
    if status_is_transient(status):
        headers = getattr(error.response, "headers", None)
        retry_after = parse_retry_after(headers.get("retry-after") if headers else None)
        kind = "rate_limited" if status == 429 else "server_error"
        return TransientError(kind, message, retry_after_s=retry_after)
    return RowError("http_error", message)
