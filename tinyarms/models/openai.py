"""The OpenAI-compatible backend: any server that speaks ``POST /v1/chat/completions`` — vLLM,
llama.cpp's ``llama-server`` and ``llama_cpp.server``, LM Studio, Ollama's ``/v1``, OpenAI itself.

``models.openai.base_url`` is the API root *including* the version (``http://gpu-box:8000/v1``);
requests go to ``{base_url}/chat/completions`` and ``{base_url}/models``. When the environment
variable named by ``models.openai.api_key_env`` is set, its value is sent as a bearer token.

The request and answer bodies, and which ``response_format`` shape each server takes (OpenAI's
``json_schema``, or the older JSON mode as a fallback), are ``openai_wire``'s.

Everything that goes wrong becomes a ``ModelUnavailable`` with a reason code from ``base``: the
caller reports a skipped check, it never crashes a commit. Every request is bounded twice: the
client's ``httpx.Timeout`` (from ``models.openai.timeout``) and the caller's budget around the
whole exchange, retry included. Bodies are read with a 1 MiB cap while they arrive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple, TypeVar

import httpx

from tinyarms.config import OpenAIConfig
from tinyarms.models.base import (
    BAD_ANSWER,
    CONNECT_TIMEOUT,
    MAX_ANSWER_BYTES,
    MODEL_MISSING,
    NO_BACKEND,
    NO_MEMORY,
    SERVER_DOWN,
    TIMEOUT,
    TOP_LOGPROBS,
    AnswerTooLarge,
    Completion,
    ModelInfo,
    ModelUnavailable,
    NoLogprobs,
    Scored,
    choice_logprobs,
)
from tinyarms.models.openai_wire import (
    JSON_OBJECT,
    JSON_SCHEMA,
    Malformed,
    Refused,
    chat_answer,
    rejects_schema,
    remember_shape,
    remembered_shape,
    response_format,
    server_clock,
)

# A server that stamps ``created`` with the time of the request (vLLM, llama-server) would give a
# new digest on every call; a ``created`` this close to the server's clock is taken as such a stamp.
NOW_STAMP_SECONDS = 300

T = TypeVar("T")


class _Reply(NamedTuple):
    body: bytes
    headers: httpx.Headers


class OpenAIBackend:
    name = "openai"

    def __init__(self, config: OpenAIConfig) -> None:
        if not config.base_url:
            raise ValueError("models.openai.base_url is not set (e.g. http://localhost:8000/v1)")
        self.base_url = config.base_url.rstrip("/")
        self.timeout = config.timeout
        self.api_key_env = config.api_key_env
        headers = {"Accept": "application/json"}
        key = os.environ.get(config.api_key_env, "").strip() if config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._has_key = bool(key)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, CONNECT_TIMEOUT)),
            headers=headers,
        )

    async def complete(
        self, model: str, system: str, prompt: str, schema: dict[str, Any], *, timeout: float, max_tokens: int,
    ) -> Completion:
        started = time.monotonic()
        request = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": max_tokens,
            "stream": False,
        }
        data = await self._call(self._chat(request, schema), timeout, model)
        seconds = time.monotonic() - started
        text, usage = data["text"], data["usage"]
        _logger().debug(
            "openai.complete", model=model, seconds=round(seconds, ndigits=3), shape=remembered_shape(self.base_url),
            finish_reason=data["finish_reason"], answer_chars=len(text), **usage,
        )
        return Completion(text=text, model=data["model"] or model, seconds=seconds, **usage)

    async def score(self, model: str, system: str, prompt: str, prefix: str, choices: list[str], *,
                    timeout: float) -> Scored:
        """P of each choice at the answer's choice token, from ``logprobs``/``top_logprobs`` (OpenAI,
        vLLM, llama.cpp's server): the short JSON answer is generated and its token's alternatives
        read. ``NoLogprobs`` when the server gives none."""
        started = time.monotonic()
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": choices}},
                  "required": ["answer"]}
        request = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "temperature": 0, "max_tokens": 16, "stream": False, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
        }
        data = await self._call(self._chat(request, schema), timeout, model)
        content = data.get("logprobs")
        if not content:
            raise NoLogprobs(f"the server at {self.base_url} gave no log probabilities")
        logprobs = choice_logprobs(content, choices)
        if logprobs is None:
            raise ModelUnavailable(BAD_ANSWER, f"{model}'s answer holds none of {', '.join(choices)}")
        return Scored(logprobs, data["model"] or model, time.monotonic() - started, data["usage"]["prompt_tokens"])

    async def models(self, timeout: float = 5.0) -> list[str]:
        """The model ids the server lists at ``{base_url}/models``."""
        entries, _ = await self._call(self._list_models(), timeout)
        return [e["id"] for e in entries]

    async def digest(self, model: str, timeout: float = 5.0) -> str:
        """``openai-sha256:`` + a hash of what the server says about ``model`` at ``/models``.

        OpenAI's API has no weights digest, so this is the best identity on offer: the base URL
        and the entry's ``id``, ``owned_by`` and ``created``, plus ``root`` (vLLM: the weights'
        path or repo) and ``meta`` (llama-server: parameter count, file size) when present.
        ``created`` is left out when it is within minutes of the server's clock, because vLLM
        and llama-server stamp it with the time of the request. When the server does not list
        ``model`` (or has no ``/models``), only the base URL and the name are hashed. So a cache
        entry outlives a change of weights served under the same name and metadata: restart
        with a new alias, or clear the cache, after swapping weights that way.
        """
        entries, now = await self._call(self._list_models(missing_ok=True), timeout, model)
        entry = next((e for e in entries if e["id"] == model), None)
        identity: dict[str, Any] = {"base_url": self.base_url, "id": model}
        if entry is not None:
            for key in ("owned_by", "root", "meta"):
                if entry.get(key) is not None:
                    identity[key] = entry[key]
            created = entry.get("created")
            if isinstance(created, int | float) and abs(created - now) > NOW_STAMP_SECONDS:
                identity["created"] = created
        blob = json.dumps(identity, sort_keys=True, default=str)
        return "openai-sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    async def info(self) -> ModelInfo:
        """Reachability and the listed models; OpenAI's API cannot say which are loaded."""
        try:
            present = await self.models(timeout=2.0)
        except ModelUnavailable as exc:
            detail = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            return ModelInfo(self.name, False, detail)
        return ModelInfo(self.name, True, f"OpenAI-compatible server at {self.base_url}: {len(present)} models",
                         present)

    async def close(self) -> None:
        await self._client.aclose()

    # -- the wire -------------------------------------------------------------------------

    async def _chat(self, request: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        known = remembered_shape(self.base_url)
        shape = known or JSON_SCHEMA
        try:
            reply = await self._send("POST", "/chat/completions",
                                     {**request, "response_format": response_format(shape, schema)})
        except Refused as exc:
            if known is not None or not rejects_schema(exc):
                raise
            _logger().info("openai.fallback", base_url=self.base_url, status=exc.status, error=exc.text)
            shape = JSON_OBJECT
            reply = await self._send("POST", "/chat/completions",
                                     {**request, "response_format": response_format(shape, schema)})
        data = chat_answer(reply.body)
        remember_shape(self.base_url, shape)
        return data

    async def _list_models(self, missing_ok: bool = False) -> tuple[list[dict[str, Any]], float]:
        """The ``/models`` entries that have an id, and the server's clock when it answered."""
        try:
            reply = await self._send("GET", "/models")
        except Refused as exc:
            if exc.status == 404 and missing_ok:
                return [], time.time()
            raise
        try:
            data = json.loads(reply.body)
            entries = [e for e in data["data"] if isinstance(e, dict) and isinstance(e.get("id"), str)]
        except (ValueError, KeyError, TypeError):
            raise Malformed('the model list is not {"data": [{"id": ...}]}') from None
        return entries, server_clock(reply.headers)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> _Reply:
        async with self._client.stream(method, self.base_url + path, json=body) as response:
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(f"{length} bytes")
            chunks: list[bytes] = []
            seen = 0
            async for chunk in response.aiter_bytes():
                seen += len(chunk)
                if seen > MAX_ANSWER_BYTES:
                    raise AnswerTooLarge(f"more than {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
        raw = b"".join(chunks)
        if response.status_code >= 400:
            raise Refused(response.status_code, raw)
        if response.status_code >= 300:
            raise Malformed(f"HTTP {response.status_code} to {response.headers.get('location', '?')}")
        return _Reply(raw, response.headers)

    # -- failures -------------------------------------------------------------------------

    async def _call(self, awaitable: Awaitable[T], timeout: float, model: str | None = None) -> T:
        try:
            async with asyncio.timeout(timeout):
                return await awaitable
        except Exception as exc:  # every failure becomes a reported skip; CancelledError passes
            raise self._log(self._unavailable(exc, model, timeout), model) from exc

    def _unavailable(self, exc: BaseException, model: str | None, timeout: float) -> ModelUnavailable:
        what = model or f"the server at {self.base_url}"
        start_hint = f"is the server at {self.base_url} running?"
        if isinstance(exc, httpx.ConnectTimeout):
            return ModelUnavailable(SERVER_DOWN, f"the server at {self.base_url} did not accept a connection",
                                    start_hint)
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            return ModelUnavailable(
                TIMEOUT, f"{what} gave no answer within {timeout:g} s",
                "a busy server or a cold model is slow: raise the budget, or use a smaller model",
            )
        if isinstance(exc, httpx.ConnectError):
            return ModelUnavailable(SERVER_DOWN, f"no server answers at {self.base_url}", start_hint)
        if isinstance(exc, Refused):
            return self._refused(exc, model)
        if isinstance(exc, AnswerTooLarge):
            return ModelUnavailable(BAD_ANSWER, f"{what} answered more than {MAX_ANSWER_BYTES} bytes ({exc}); refused")
        if isinstance(exc, Malformed):
            return ModelUnavailable(
                BAD_ANSWER, f"the server at {self.base_url} did not answer like an OpenAI-compatible API: {exc}",
                "check models.openai.base_url (it usually ends in /v1)",
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return ModelUnavailable(
                SERVER_DOWN, f"the server at {self.base_url} closed the connection mid-answer ({exc})",
                "check that the server is still running, and its log",
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return ModelUnavailable(SERVER_DOWN, f"cannot reach {self.base_url}: {exc}",
                                    "models.openai.base_url must be an http(s) URL, e.g. http://localhost:8000/v1")
        return ModelUnavailable(BAD_ANSWER, f"request to {self.base_url} failed: {type(exc).__name__}: {exc}")

    def _refused(self, exc: Refused, model: str | None) -> ModelUnavailable:
        status, text = exc.status, exc.text
        name = model or "the model"
        if model is not None and (exc.code == "model_not_found" or (status == 404 and "model" in text.lower())):
            return ModelUnavailable(
                MODEL_MISSING, f"the server at {self.base_url} does not serve model {name} ({text})",
                f"use a model id from {self.base_url}/models in models.fast.openai / models.deep.openai",
            )
        if status == 404:
            return ModelUnavailable(
                SERVER_DOWN, f"no OpenAI-compatible API at {self.base_url} (404: {text})",
                "check models.openai.base_url (it usually ends in /v1)",
            )
        if status in (401, 403):
            hint = (f"check the key in ${self.api_key_env}" if self._has_key
                    else f"the server wants an API key: set ${self.api_key_env}")
            return ModelUnavailable(NO_BACKEND,
                                    f"the server at {self.base_url} refused the request ({status}: {text})", hint)
        if status == 503:
            return ModelUnavailable(SERVER_DOWN, f"the server at {self.base_url} is not ready (503: {text})",
                                    "wait for it to finish loading the model")
        if "memory" in text.lower():
            return ModelUnavailable(NO_MEMORY, f"the server at {self.base_url} cannot run {name}: {text}",
                                    "free memory on the server, or configure a smaller model")
        log_hint = "see the server's log" if status >= 500 else None
        return ModelUnavailable(BAD_ANSWER, f"the server at {self.base_url} answered {status}: {text}", log_hint)

    def _log(self, error: ModelUnavailable, model: str | None) -> ModelUnavailable:
        # Reason and message only: the prompt (the user's code) never reaches the log.
        _logger().info("openai.unavailable", base_url=self.base_url, model=model, reason=error.reason,
                       error=error.message)
        return error


def _logger() -> Any:
    from tinyarms.log import get_logger

    return get_logger()
