"""The Ollama backend: one structured-output chat request per question, over Ollama's HTTP API.

Everything that can go wrong between us and ``ollama serve`` becomes a ``ModelUnavailable`` with a
reason code from ``base`` and a command the user can run, because the caller's job is to report a
skipped check, never to crash a commit. Three things the ``ollama`` client does not do for us:

- it has no timeout by default, so a wedged server would hang a request forever: every client
  here gets an explicit ``httpx.Timeout``, and every call is also bounded by ``asyncio.wait_for``;
- it reads a non-streamed answer whole, however large: a response hook refuses bodies over
  ``MAX_ANSWER_BYTES`` while they arrive, so a runaway model cannot fill the daemon's memory;
- it turns ``httpx.ConnectError`` into the built-in ``ConnectionError`` but lets every other httpx
  error, JSON error and pydantic error through as they are: ``_unavailable`` sorts them out.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any, TypeVar

import httpx
import ollama
import pydantic

from tinyarms.config import OllamaConfig
from tinyarms.models.base import (
    BAD_ANSWER,
    CONNECT_TIMEOUT,
    MAX_ANSWER_BYTES,
    MODEL_MISSING,
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

NUM_CTX = 4096
NS_PER_SECOND = 1e9
START_HINT = "start Ollama: `ollama serve`"
LOG_HINT = "see Ollama's server log (`journalctl -u ollama` on Linux, ~/.ollama/logs/server.log on macOS)"

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")



class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise AnswerTooLarge(f"more than {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _cap_response(response: httpx.Response) -> None:
    """An httpx response hook, run before the body is read: bodies over the cap are refused
    (by their Content-Length, or once that many bytes have arrived) instead of buffered whole."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_ANSWER_BYTES:
        raise AnswerTooLarge(f"{length} bytes")
    assert isinstance(response.stream, httpx.AsyncByteStream)
    response.stream = _CappedStream(response.stream, MAX_ANSWER_BYTES)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: httpx builds a new one for every client otherwise,
    reading the CA bundle each time (~30 ms), and the router makes a client for every lint."""
    return httpx.create_ssl_context()  # what httpx would build: certifi, or SSL_CERT_FILE / SSL_CERT_DIR


def normalize(name: str) -> str:
    """Ollama's model names: the tag defaults to ``latest``."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


class OllamaBackend:
    name = "ollama"

    def __init__(self, config: OllamaConfig, *, stream: bool = False) -> None:
        # Streamed answers let the client time the first token (``tinyarms bench``); the lint path
        # takes the answer whole.
        self.stream = stream
        self.host = config.host
        self.keep_alive = config.keep_alive
        self.timeout = config.timeout
        self._client = ollama.AsyncClient(
            host=config.host,
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, CONNECT_TIMEOUT)),
            event_hooks={"response": [_cap_response]},
            # The cap counts bytes on the wire; a compressed body could inflate far past it.
            headers={"Accept-Encoding": "identity"},
            verify=_tls_context(),
        )

    async def complete(
        self, model: str, system: str, prompt: str, schema: dict[str, Any], *, timeout: float, max_tokens: int,
    ) -> Completion:
        started = time.monotonic()
        first: list[float] = []
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        options = {"temperature": 0, "num_ctx": NUM_CTX, "num_predict": max_tokens}
        if self.stream:
            request = self._streamed(model, messages, schema, options, started, first)
        else:
            request = self._client.chat(
                model=model, messages=messages, format=schema, options=options, keep_alive=self.keep_alive,
                stream=False,
            )
        response = await self._call(request, timeout, model)
        seconds = time.monotonic() - started
        text = response.message.content or ""
        if len(text.encode()) > MAX_ANSWER_BYTES:  # _cap_response already refuses such bodies
            raise self._log(ModelUnavailable(BAD_ANSWER, f"{model} answered more than {MAX_ANSWER_BYTES} bytes"), model)
        _logger().debug(
            "ollama.complete", model=model, seconds=round(seconds, ndigits=3), done_reason=response.done_reason,
            prompt_tokens=response.prompt_eval_count, completion_tokens=response.eval_count, answer_chars=len(text),
        )
        return Completion(
            text=text, model=response.model or model, seconds=seconds,
            prompt_tokens=response.prompt_eval_count, completion_tokens=response.eval_count,
            first_token_seconds=first[0] if first else None,
            prompt_eval_tokens=response.prompt_eval_count, prompt_eval_seconds=_seconds(response.prompt_eval_duration),
            eval_tokens=response.eval_count, eval_seconds=_seconds(response.eval_duration),
            load_seconds=_seconds(response.load_duration),
        )

    async def score(self, model: str, system: str, prompt: str, prefix: str, choices: list[str], *,
                    timeout: float) -> Scored:
        """P of each choice at the answer's choice token, from Ollama's ``logprobs`` (0.12.11+): the
        answer is generated short (the JSON of one of ``choices``, ``prefix`` being its start) and
        its token's ``top_logprobs`` read. ``NoLogprobs`` when the server gives none."""
        started = time.monotonic()
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": choices}},
                  "required": ["answer"]}
        options = {"temperature": 0, "num_ctx": NUM_CTX, "num_predict": 16}
        response = await self._call(self._client.chat(
            model=model, messages=messages, format=schema, options=options, keep_alive=self.keep_alive, stream=False,
            logprobs=True, top_logprobs=TOP_LOGPROBS), timeout, model)
        entries = response.get("logprobs") or []
        if not entries:
            raise NoLogprobs(f"Ollama at {self.host} gave no log probabilities (it is older than 0.12.11)")
        logprobs = choice_logprobs([(e["token"], e["logprob"], [(t["token"], t["logprob"]) for t in
                                    e.get("top_logprobs") or []]) for e in entries], choices)
        if logprobs is None:
            raise self._log(ModelUnavailable(BAD_ANSWER, f"{model}'s answer holds none of {', '.join(choices)}"), model)
        return Scored(logprobs, response.model or model, time.monotonic() - started, response.prompt_eval_count)

    async def _streamed(self, model: str, messages: list[dict[str, str]], schema: dict[str, Any],
                        options: dict[str, Any], started: float, first: list[float]) -> ollama.ChatResponse:
        """A streamed chat, gathered into one response; ``first`` gets the seconds to the first content."""
        parts: list[str] = []
        last: ollama.ChatResponse | None = None
        async for chunk in await self._client.chat(
            model=model, messages=messages, format=schema, options=options, keep_alive=self.keep_alive, stream=True,
        ):
            content = chunk.message.content or ""
            if content and not first:
                first.append(time.monotonic() - started)
            parts.append(content)
            if sum(map(len, parts)) > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(f"more than {MAX_ANSWER_BYTES} characters")
            last = chunk
        if last is None:
            raise ValueError("an empty stream")
        last.message.content = "".join(parts)
        return last

    async def load(self, model: str, timeout: float, *, unload_first: bool = False) -> float:
        """Load ``model`` (a chat with no messages, as Ollama's API documents) and return the
        seconds it took; ``unload_first`` frees it before (``keep_alive: 0``) so the load is a
        cold one. Ollama's load answer carries no timings, so this is the client's clock: the
        load plus one local round trip."""
        if unload_first:
            await self._call(self._client.chat(model=model, messages=[], keep_alive=0), timeout, model)
        started = time.monotonic()
        await self._call(self._client.chat(model=model, messages=[], keep_alive=self.keep_alive), timeout, model)
        return time.monotonic() - started

    async def embed(self, model: str, texts: list[str], *, timeout: float) -> list[list[float]]:
        """One vector per text (``/api/embed``; Ollama truncates a text longer than the model's context)."""
        response = await self._call(
            self._client.embed(model=model, input=texts, truncate=True, keep_alive=self.keep_alive), timeout, model)
        vectors = [list(v) for v in response.embeddings]
        if len(vectors) != len(texts):
            raise self._log(ModelUnavailable(
                BAD_ANSWER, f"{model} returned {len(vectors)} embeddings for {len(texts)} texts"), model)
        return vectors

    async def probe(self, timeout: float = 1.5) -> bool | None:
        """Whether an Ollama server answers at ``host``: True when it lists its models within
        ``timeout`` seconds, False when nothing listens or something that is not Ollama answers,
        None when a connection was made but no answer came in time — a busy machine or a busy
        Ollama, which is not the same as no Ollama."""
        try:
            await asyncio.wait_for(self._client.list(), timeout)
        except (TimeoutError, httpx.ReadTimeout):
            return None
        except Exception:  # noqa: BLE001 - any other failure means "not Ollama, or not usable"
            return False
        return True

    async def models(self, timeout: float = 5.0) -> tuple[list[str], list[str]]:
        """(models pulled, models loaded in memory right now)."""
        tags, ps = await self._call(_both(self._client.list(), self._client.ps()), timeout)
        present = [m.model for m in tags.models if m.model]
        loaded = [name for m in ps.models if (name := m.model or m.name)]
        return present, loaded

    async def digest(self, model: str, timeout: float = 5.0) -> str:
        """The weights' digest from ``/api/tags``; for a name it does not list, a hash of ``/api/show``."""
        tags = await self._call(self._client.list(), timeout)
        wanted = normalize(model)
        for m in tags.models:
            if m.model and normalize(m.model) == wanted and m.digest:
                return m.digest
        shown = await self._call(self._client.show(model), timeout, model)
        # The modelfile's FROM line names the weights blob, so this changes when the weights do.
        identity = json.dumps([shown.modelfile, shown.template, shown.parameters], sort_keys=True)
        return "show-sha256:" + hashlib.sha256(identity.encode()).hexdigest()

    async def info(self) -> ModelInfo:
        try:
            present, loaded = await self.models(timeout=2.0)
        except ModelUnavailable as exc:
            detail = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            return ModelInfo(self.name, False, detail)
        return ModelInfo(self.name, True, f"Ollama at {self.host}: {len(present)} models, {len(loaded)} loaded",
                         present, loaded)

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]  # ollama leaves AsyncClient.close unannotated

    # -- failures -------------------------------------------------------------------------

    async def _call(self, awaitable: Awaitable[T], timeout: float, model: str | None = None) -> T:
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes a reported skip
            if isinstance(exc, ExceptionGroup):  # from _both's TaskGroup
                exc = exc.exceptions[0]
            raise self._log(self._unavailable(exc, model, timeout), model) from exc

    def _unavailable(self, exc: BaseException, model: str | None, timeout: float) -> ModelUnavailable:
        what = model or "Ollama"
        if isinstance(exc, httpx.ConnectTimeout):
            return ModelUnavailable(SERVER_DOWN, f"Ollama at {self.host} did not accept a connection", START_HINT)
        if isinstance(exc, asyncio.TimeoutError | httpx.TimeoutException):
            return ModelUnavailable(
                TIMEOUT, f"{what} gave no answer within {timeout:g} s",
                "a cold model takes seconds to load: raise the budget, or keep it loaded "
                "(models.ollama.keep_alive)",
            )
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return ModelUnavailable(SERVER_DOWN, f"no Ollama server answers at {self.host}", START_HINT)
        if isinstance(exc, ollama.ResponseError):
            return self._response_error(exc, model)
        if isinstance(exc, AnswerTooLarge):
            return ModelUnavailable(BAD_ANSWER, f"{what} answered more than {MAX_ANSWER_BYTES} bytes; refused")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return ModelUnavailable(
                SERVER_DOWN, f"Ollama at {self.host} closed the connection mid-answer ({exc})",
                f"check that `ollama serve` is still running; {LOG_HINT}",
            )
        if isinstance(exc, ValueError | pydantic.ValidationError):  # json.JSONDecodeError included
            return ModelUnavailable(
                BAD_ANSWER, f"the server at {self.host} did not answer like Ollama (not JSON of Ollama's shape)",
                "check models.ollama.host points at an Ollama server",
            )
        if isinstance(exc, httpx.HTTPError | ollama.RequestError):
            return ModelUnavailable(BAD_ANSWER, f"request to Ollama at {self.host} failed: {exc}")
        return ModelUnavailable(BAD_ANSWER, f"request to Ollama at {self.host} failed: {type(exc).__name__}: {exc}")

    def _response_error(self, exc: ollama.ResponseError, model: str | None) -> ModelUnavailable:
        text = str(exc.error).strip()[:300]
        if exc.status_code == 404 and "not found" in text and "model" in text:
            name = model or "the model"
            return ModelUnavailable(MODEL_MISSING, f"model {name} is not pulled in Ollama", f"`ollama pull {name}`")
        if exc.status_code == 404:
            return ModelUnavailable(
                SERVER_DOWN, f"{self.host} is not an Ollama API ({text})", "check models.ollama.host",
            )
        if "memory" in text.lower():
            return ModelUnavailable(
                NO_MEMORY, f"Ollama cannot load {model or 'the model'}: {text}",
                "close memory-hungry programs, or configure a smaller model (models.fast.ollama)",
            )
        hint = LOG_HINT if exc.status_code >= 500 else None
        return ModelUnavailable(BAD_ANSWER, f"Ollama answered {exc.status_code}: {text}", hint)

    @staticmethod
    def _log(error: ModelUnavailable, model: str | None) -> ModelUnavailable:
        # Reason and message only: the prompt (the user's code) never reaches the log.
        _logger().info("ollama.unavailable", model=model, reason=error.reason, error=error.message)
        return error


async def _both(first: Coroutine[Any, Any, A], second: Coroutine[Any, Any, B]) -> tuple[A, B]:
    """Both at once; the first failure cancels the other."""
    async with asyncio.TaskGroup() as group:
        a, b = group.create_task(first), group.create_task(second)
    return a.result(), b.result()


def _seconds(nanoseconds: int | None) -> float | None:
    """Ollama's durations are nanoseconds; absent means the server did not say."""
    return None if nanoseconds is None else nanoseconds / NS_PER_SECOND


def _logger() -> Any:
    from tinyarms.log import get_logger

    return get_logger()
