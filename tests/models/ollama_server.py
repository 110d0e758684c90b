"""A stand-in for ``ollama serve`` that speaks its HTTP API, for tests of everything that talks to Ollama.

It answers the endpoints tinyarms uses with the real server's wire format (``docs/api.md``,
``api/types.go``): ``GET /``, ``GET /api/version``, ``GET /api/tags``, ``GET /api/ps``,
``POST /api/show``, ``POST /api/chat`` and ``POST /api/generate`` (streamed NDJSON unless
``"stream": false``), ``POST /api/embed`` (for models with the ``embedding`` capability), with
Ollama's error bodies (``{"error": "..."}``) and status codes (``ollama_routes``). Like Go's
``net/http``, a small body gets a ``Content-Length`` and a larger one is sent chunked
(``ollama_http``). This module is the fake's state, its script and the fixture.

A test module imports the fixture (``from tests.models.ollama_server import FakeOllama,
ollama_server_fixture  # noqa: F401``), asks for ``ollama_server``, points the backend at
``ollama_server.host``, and scripts how chat/generate answer; every request is recorded::

    def test_x(ollama_server):
        ollama_server.answer('{"violations": []}')        # fixed content
        ollama_server.answer(lambda req: req.body["model"])  # computed from the request
        ollama_server.hang()            # accept, never answer (until stop())
        ollama_server.slow(2.0, "...")  # answer after 2 s
        ollama_server.drop()            # headers and half the body, then close
        ollama_server.garbage()         # 200 with a body that is not JSON
        ollama_server.error(500, "llama runner process has terminated")
        ollama_server.huge()            # a valid answer with 10 MB of content
        ollama_server.busy(2.0)         # every request (tags too) waits 2 s first: a loaded machine
        ...
        assert ollama_server.last("/api/chat").body["options"]["temperature"] == 0

Behaviours apply to every later chat/generate request (pass ``model=`` to script one model only).
Embeddings: ``add_embedding_model("nomic-embed-text")``; vectors are a normalised bag of the
text's words hashed into ``EMBED_DIM`` dimensions unless ``embed_with(fn)`` says otherwise.
Models: ``add_model(name)``, ``remove_model(name)``, ``load(name)``; a chat on a present model
loads it, as Ollama does; a chat with no messages only loads it (``done_reason: "load"``), or
with ``keep_alive: 0`` unloads it (``"unload"``), and neither answer carries timings, as in
``server/routes.go``. Timings: ``speed(load=..., prompt_tps=..., eval_tps=...)``; a request that
had to load its model reports the load in ``load_duration``. The server binds 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import pytest

from tests import servers
from tests.models.ollama_routes import Handler, keep_alive_seconds
from tests.servers import LoopbackHTTPServer

HUGE_BYTES = 10 << 20
DEFAULT_MODELS = ("qwen2.5-coder:3b", "qwen2.5-coder:7b", "qwen2.5-coder:0.5b")
DEFAULT_ANSWER = '{"violations": []}'
EMBED_DIM = 64

Answer = str | Callable[["Request"], str]


@dataclass(slots=True)
class Request:
    method: str
    path: str
    body: Any  # parsed JSON, or None when there was no body or it was not JSON
    raw: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Behaviour:
    kind: str  # answer, hang, slow, drop, garbage, error, huge
    answer: Answer = DEFAULT_ANSWER
    seconds: float = 0.0
    status: int = 500
    message: str = ""
    body: bytes = b""
    size: int = HUGE_BYTES
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    done_reason: str = "stop"


@dataclass(slots=True)
class Speed:
    """How fast the fake "runs" a model. ``load``: seconds a cold load takes; ``prompt_tps`` /
    ``eval_tps``: tokens per second reading the prompt and generating. With a rate set the
    server really spends that time (so a client's own clock agrees with the durations it reports);
    unset, it answers at once and reports a token-count-independent duration, as before."""

    load: float = 0.0
    prompt_tps: float | None = None
    eval_tps: float | None = None


@dataclass(slots=True)
class FakeModel:
    name: str
    size: int
    digest: str
    family: str = "qwen2"
    parameter_size: str = "3.1B"
    quantization_level: str = "Q4_K_M"
    capabilities: list[str] = field(default_factory=lambda: ["completion", "tools", "insert"])
    modified_at: str = "2025-01-15T10:00:00.000000+00:00"

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "", "format": "gguf", "family": self.family, "families": [self.family],
            "parameter_size": self.parameter_size, "quantization_level": self.quantization_level,
        }


def normalize(name: str) -> str:
    """Ollama's names: the tag defaults to ``latest``, case is not significant."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _digest_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class FakeOllama:
    """The server; use as a context manager or through the ``ollama_server`` fixture."""

    def __init__(self, models: tuple[str, ...] | list[str] = DEFAULT_MODELS) -> None:
        self.requests: list[Request] = []
        self.in_flight = 0  # /api/chat and /api/generate requests being answered now
        self.max_in_flight = 0  # the most there were at once
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._models: dict[str, FakeModel] = {}
        self._loaded: dict[str, float | None] = {}  # name -> expiry (epoch seconds), None = forever
        self._behaviours: dict[str | None, Behaviour] = {None: Behaviour("answer")}
        self._connections: set[socket.socket] = set()
        self._embedder: Callable[[str], list[float]] = bag_of_words
        self._speed = Speed()
        self._p_yes: float | None = None  # P(yes) at a yes/no answer's token, when logprobs are asked
        self._logprobs = True
        self._busy = 0.0
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for name in models:
            self.add_model(name)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        # A hanging handler must not keep stop() waiting: stop() closes its socket instead.
        self._httpd = LoopbackHTTPServer(type("Handler", (Handler,), {"fake": self}))
        self._thread = servers.serve(self._httpd, "fake-ollama")
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        servers.stop(httpd, self._thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting ------------------------------------------------------------------------

    def _set(self, behaviour: Behaviour, model: str | None) -> FakeOllama:
        with self._lock:
            self._behaviours[normalize(model) if model else None] = behaviour
        return self

    def answer(self, answer: Answer = DEFAULT_ANSWER, *, model: str | None = None,
               prompt_eval_count: int | None = None, eval_count: int | None = None,
               done_reason: str = "stop") -> FakeOllama:
        """Answer with this content (or ``answer(request)``'s); token counts default to len/4."""
        return self._set(Behaviour("answer", answer, prompt_eval_count=prompt_eval_count,
                                   eval_count=eval_count, done_reason=done_reason), model)

    def speed(self, load: float = 0.0, prompt_tps: float | None = None, eval_tps: float | None = None) -> FakeOllama:
        """Every model loads in ``load`` seconds and runs at these rates (see ``Speed``)."""
        with self._lock:
            self._speed = Speed(load, prompt_tps, eval_tps)
        return self

    def busy(self, seconds: float) -> FakeOllama:
        """Every request, on any route, waits ``seconds`` before it is answered: a server on a machine
        too loaded to answer at once (as opposed to ``hang``/``slow``, which script the model)."""
        with self._lock:
            self._busy = seconds
        return self

    def is_loaded(self, name: str) -> bool:
        return any(m["name"] == normalize(name) for m in self._ps()["models"])

    def scores(self, p_yes: float) -> FakeOllama:
        """With ``logprobs``: the answer's yes/no token is yes with probability ``p_yes``."""
        self._p_yes = p_yes
        return self

    def without_logprobs(self) -> FakeOllama:
        """An Ollama from before logprobs (0.12.11): the request's ``logprobs`` is ignored."""
        self._logprobs = False
        return self

    def hang(self, *, model: str | None = None) -> FakeOllama:
        return self._set(Behaviour("hang"), model)

    def slow(self, seconds: float, answer: Answer = DEFAULT_ANSWER, *, model: str | None = None) -> FakeOllama:
        return self._set(Behaviour("slow", answer, seconds=seconds), model)

    def drop(self, answer: Answer = DEFAULT_ANSWER, *, model: str | None = None) -> FakeOllama:
        return self._set(Behaviour("drop", answer), model)

    def garbage(self, body: bytes = b"<html><body>502 Bad Gateway</body></html>", *,
                model: str | None = None) -> FakeOllama:
        return self._set(Behaviour("garbage", body=body), model)

    def error(self, status: int, message: str, *, model: str | None = None) -> FakeOllama:
        return self._set(Behaviour("error", status=status, message=message), model)

    def huge(self, size: int = HUGE_BYTES, *, model: str | None = None) -> FakeOllama:
        return self._set(Behaviour("huge", size=size), model)

    def add_model(self, name: str, *, size: int = 1_929_912_432, digest: str | None = None,
                  capabilities: list[str] | None = None, loaded: bool = False) -> FakeOllama:
        key = normalize(name)
        model = FakeModel(key, size, digest or _digest_of(key))
        if capabilities is not None:
            model.capabilities = capabilities
        with self._lock:
            self._models[key] = model
        if loaded:
            self.load(key)
        return self

    def add_embedding_model(self, name: str = "nomic-embed-text") -> FakeOllama:
        """An embedding-only model, as ``ollama pull nomic-embed-text`` leaves it."""
        self.add_model(name, size=274_302_450, capabilities=["embedding"])
        with self._lock:
            model = self._models[normalize(name)]
            model.family, model.parameter_size, model.quantization_level = "nomic-bert", "137M", "F16"
        return self

    def embed_with(self, fn: Callable[[str], list[float]]) -> FakeOllama:
        with self._lock:
            self._embedder = fn
        return self

    def remove_model(self, name: str) -> FakeOllama:
        with self._lock:
            self._models.pop(normalize(name), None)
            self._loaded.pop(normalize(name), None)
        return self

    def load(self, name: str, keep_alive: Any = "5m") -> FakeOllama:
        seconds = keep_alive_seconds(keep_alive)
        with self._lock:
            key = normalize(name)
            if seconds == 0:
                self._loaded.pop(key, None)
            else:
                self._loaded[key] = None if seconds is None else time.time() + seconds
        return self

    # -- what was sent --------------------------------------------------------------------

    def calls(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def last(self, path: str) -> Request:
        calls = self.calls(path)
        assert calls, f"no request to {path}; got {[r.path for r in self.requests]}"
        return calls[-1]

    # -- state the handler reads and records ----------------------------------------------

    def _behaviour(self, model: str) -> Behaviour:
        with self._lock:
            return self._behaviours.get(normalize(model)) or self._behaviours[None]

    def _model(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._models.get(normalize(name))

    def _tags(self) -> dict[str, Any]:
        with self._lock:
            models = list(self._models.values())
        return {"models": [{
            "name": m.name, "model": m.name, "modified_at": m.modified_at, "size": m.size,
            "digest": m.digest, "details": m.details(),
        } for m in models]}

    def _ps(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            self._loaded = {k: v for k, v in self._loaded.items() if k in self._models and (v is None or v > now)}
            loaded = [(self._models[k], v) for k, v in self._loaded.items()]
        entries = []
        for m, expiry in loaded:
            expires = (datetime.fromtimestamp(expiry, UTC) if expiry is not None
                       else datetime(2318, 1, 1, tzinfo=UTC))  # Ollama's "forever"
            entries.append({
                "name": m.name, "model": m.name, "size": m.size + 500_000_000, "digest": m.digest,
                "details": m.details(), "expires_at": expires.isoformat(),
                "size_vram": m.size + 500_000_000, "context_length": 4096,
            })
        return {"models": entries}

    def _show(self, m: FakeModel) -> dict[str, Any]:
        blob = f"/root/.ollama/models/blobs/sha256-{m.digest}"
        return {
            "license": "Apache License 2.0",
            "modelfile": f"# Modelfile generated by \"ollama show\"\nFROM {blob}\n"
                         "TEMPLATE \"\"\"{{ .System }}{{ .Prompt }}\"\"\"\n",
            "parameters": 'stop                           "<|endoftext|>"',
            "template": "{{ .System }}{{ .Prompt }}",
            "details": m.details(),
            "model_info": {
                "general.architecture": m.family, "general.parameter_count": 3_085_938_688,
                f"{m.family}.context_length": 32768,
            },
            "capabilities": list(m.capabilities),
            "modified_at": m.modified_at,
        }

    def _record(self, method: str, path: str, body: Any, raw: bytes, headers: dict[str, str]) -> Request:
        request = Request(method, path, body, raw, headers)
        with self._lock:
            self.requests.append(request)
        return request

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def bag_of_words(text: str) -> list[float]:
    """A stand-in embedding: words (identifiers split at ``_`` and case changes) hashed into
    ``EMBED_DIM`` buckets. Texts with the same words point the same way, as real embeddings of
    near-identical code do."""
    vector = [0.0] * EMBED_DIM
    for word in re.findall(r"[A-Za-z][a-z]*|[0-9]+", text):
        vector[int(hashlib.md5(word.lower().encode()).hexdigest(), 16) % EMBED_DIM] += 1.0
    return vector


@pytest.fixture(name="ollama_server")
def ollama_server_fixture() -> Iterator[FakeOllama]:
    """A running fake Ollama with the default models present and none loaded."""
    with FakeOllama() as server:
        yield server
