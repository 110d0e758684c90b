"""What goes over the wire to an OpenAI-compatible server and what comes back, as tinyarms reads it.

Structured output is where these servers disagree. We ask first in OpenAI's shape::

    {"type": "json_schema", "json_schema": {"name": "answer", "schema": ..., "strict": true}}

and servers that only know the older JSON mode get the fallback shape::

    {"type": "json_object", "schema": ...}

(``llama_cpp.server`` 0.3.x validates ``response_format.type`` against ``text|json_object`` and
answers the OpenAI shape with HTTP 500.) A rejection of the first shape — a 4xx/5xx whose body
names ``response_format``/``json_schema``, or any 500 — is retried once with the fallback, and
the shape that worked is remembered per ``base_url`` for the life of the process, so later
requests, from any backend instance, go straight to the shape the server takes.

Bodies are read here too: a chat answer's content, usage and log probabilities, an error's
message and code, the server's clock. A 2xx body that does not parse is ``Malformed``, an error
status ``Refused``; the backend (``openai``) turns both into ``ModelUnavailable``.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

SCHEMA_NAME = "answer"
JSON_SCHEMA = "json_schema"  # OpenAI's structured outputs: vLLM, llama-server, LM Studio, Ollama /v1
JSON_OBJECT = "json_object"  # JSON mode plus a schema: llama_cpp.server, older servers

# base_url -> the response_format shape that server accepted. Process-wide on purpose: the router
# may build a new backend per request, and the probe costs a failed request each time.
_shapes: dict[str, str] = {}


def remembered_shape(base_url: str) -> str | None:
    """``json_schema`` or ``json_object`` once a request to ``base_url`` succeeded, else None."""
    return _shapes.get(base_url.rstrip("/"))


def remember_shape(base_url: str, shape: str) -> None:
    _shapes[base_url.rstrip("/")] = shape


def forget_shapes() -> None:
    _shapes.clear()


def response_format(shape: str, schema: dict[str, Any]) -> dict[str, Any]:
    if shape == JSON_SCHEMA:
        return {"type": JSON_SCHEMA, "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}
    return {"type": JSON_OBJECT, "schema": schema}


class Malformed(Exception):
    """A 2xx body that is not what an OpenAI-compatible server sends."""


class Refused(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self.text, self.code = _error_text(body)
        super().__init__(f"HTTP {status}: {self.text}")


def rejects_schema(exc: Refused) -> bool:
    """Whether an error to the ``json_schema`` request may mean "not this response_format"."""
    if exc.status == 500:  # llama_cpp.server turns its validation error into a bare 500
        return True
    if exc.status in (401, 403, 404, 429) or not 400 <= exc.status < 600:
        return False
    body = exc.body.decode("utf-8", "replace").lower()
    return "response_format" in body or "json_schema" in body


def chat_answer(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise Malformed(f"the answer is not JSON ({exc})") from None
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise Malformed("the answer has no choices[0].message.content") from None
    if not isinstance(text, str):
        raise Malformed(f"choices[0].message.content is {type(text).__name__}, not text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    model = data.get("model")
    return {
        "text": text, "logprobs": _logprobs(choice.get("logprobs")),
        "model": model if isinstance(model, str) else None,
        "finish_reason": choice.get("finish_reason"),
        "usage": {
            "prompt_tokens": _count(usage.get("prompt_tokens")),
            "completion_tokens": _count(usage.get("completion_tokens")),
        },
    }


def _logprobs(value: Any) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """``choices[0].logprobs.content`` as (token, logprob, alternatives); [] when absent or malformed."""
    content = value.get("content") if isinstance(value, dict) else None
    out = []
    for entry in content if isinstance(content, list) else []:
        try:
            alternatives = [(str(a["token"]), float(a["logprob"])) for a in entry.get("top_logprobs") or []]
            out.append((str(entry["token"]), float(entry["logprob"]), alternatives))
        except (KeyError, TypeError, ValueError, AttributeError):
            return []
    return out


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _error_text(body: bytes) -> tuple[str, str | None]:
    """(one line of the server's error message, its OpenAI error ``code`` if any)."""
    text = body.decode("utf-8", "replace")
    code = None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            error = error.get("message", error)
        if error is not None:
            text = error if isinstance(error, str) else json.dumps(error)
    flat = " ".join(text.split())
    return (flat[:300] or "no message"), code


def server_clock(headers: httpx.Headers) -> float:
    """The server's time from its ``Date`` header (``created`` is stamped by the server's clock)."""
    try:
        return parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()
