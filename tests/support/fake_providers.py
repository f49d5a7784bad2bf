"""A fake LLM provider on 127.0.0.1 that answers in each provider's documented format.

`FakeProvider` is a threaded HTTP server. Tests queue scripted replies
(status, headers, JSON body, delay) with `script()`; when the queue is empty,
`default` builds the reply from the request. Every request is recorded with
its path, headers and JSON body. The body builders follow the documented
response formats of the Anthropic Messages API, OpenAI Chat Completions and
Gemini generateContent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One HTTP response of the fake server; `delay_s` is waited before it is sent."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class FakeProvider:
    """A scripted HTTP server for one test; use `running()` to start and stop it."""

    def __init__(self, default: Callable[[Recorded], Reply]) -> None:
        self.default = default
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.request_queue_size = 128

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        return scripted if scripted is not None else self.default(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle's algorithm on,
            # the body waits for the client's delayed ACK, about 40 ms a response.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()},
                                   body)
                reply = provider._next_reply(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (a timeout test); nothing is left to send.
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    @contextmanager
    def running(self) -> Iterator[FakeProvider]:
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)


# --- documented response bodies ------------------------------------------------------------


def anthropic_message(text: str, *, stop_reason: str = "end_turn") -> dict[str, Any]:
    """A Messages API response with one text content block."""
    return {
        "id": "msg_01fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 34},
    }


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def openai_completion(
    text: str | None, *, finish_reason: str = "stop", refusal: str | None = None
) -> dict[str, Any]:
    """A Chat Completions response with one choice."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "gpt-fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46},
    }


def openai_error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def gemini_response(text: str, *, finish_reason: str = "STOP") -> dict[str, Any]:
    """A generateContent response with one candidate."""
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 34,
                          "totalTokenCount": 46},
        "modelVersion": "gemini-fake",
    }


def gemini_blocked(reason: str = "SAFETY") -> dict[str, Any]:
    """A generateContent response whose prompt was blocked: no candidates."""
    return {"promptFeedback": {"blockReason": reason}, "modelVersion": "gemini-fake"}


def gemini_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


# --- a deterministic classifier behind the fake --------------------------------------------


def prompt_of(request: Recorded) -> str:
    """Return the prompt text of an Anthropic, OpenAI or Gemini request body."""
    body = request.body or {}
    if "messages" in body:
        content = body["messages"][-1]["content"]
        return content if isinstance(content, str) else "".join(
            part.get("text", "") for part in content)
    return "".join(part.get("text", "") for part in body["contents"][-1]["parts"])


def keyword_output(prompt: str, *, probability: list[str], count: list[str]) -> dict[str, Any]:
    """Label a prompt by markers in its text: `#name` raises a probability label to 0.9
    (0.1 otherwise), and each `#name` of a count label adds one cue."""
    text = prompt.split("TEXT:", 1)[-1]
    output: dict[str, Any] = {}
    for name in probability:
        output[name] = 0.9 if f"#{name}" in text else 0.1
    for name in count:
        output[name] = [f"cue {i}" for i in range(text.count(f"#{name}"))]
    return output


def keyword_provider(
    *, probability: list[str], count: list[str], delay_s: float = 0.0
) -> Callable[[Recorded], Reply]:
    """Return a default reply builder that answers every provider with `keyword_output`."""

    def reply(request: Recorded) -> Reply:
        text = json.dumps(keyword_output(prompt_of(request), probability=probability,
                                         count=count))
        if request.path.endswith("/messages"):
            return Reply(anthropic_message(text), delay_s=delay_s)
        if request.path.endswith("/chat/completions"):
            return Reply(openai_completion(text), delay_s=delay_s)
        return Reply(gemini_response(text), delay_s=delay_s)

    return reply
