"""A stand-in for ``ollama serve`` that speaks its HTTP API, for tests of everything that talks to Ollama.

It answers the endpoints tinyarms uses with the real server's wire format (``docs/api.md``,
``api/types.go``): ``GET /``, ``GET /api/version``, ``GET /api/tags``, ``GET /api/ps``,
``POST /api/show``, ``POST /api/chat`` and ``POST /api/generate`` (streamed NDJSON unless
``"stream": false``), ``POST /api/embed`` (for models with the ``embedding`` capability), with
Ollama's error bodies (``{"error": "..."}``) and status codes. Like Go's
``net/http``, a small body gets a ``Content-Length`` and a larger one is sent chunked.

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
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

import pytest

from tests import servers
from tests.servers import LoopbackHTTPServer

HUGE_BYTES = 10 << 20
# Go's net/http sets Content-Length only when the whole body fits its pre-chunking buffer.
_CHUNKING_THRESHOLD = 2048
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


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _keep_alive_seconds(value: Any) -> float | None:
    """Seconds a model stays loaded: Go durations ("10m", "1h30m", "300ms") or plain seconds;
    negative means forever (None)."""
    if value is None:
        return 300.0
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = re.findall(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
            if not parts:
                raise ValueError(f"time: invalid duration {text!r}") from None
            unit = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
            seconds = sum(float(n) * unit[u] for n, u in parts)
    return None if seconds < 0 else seconds


def _logprobs(content: str, p_yes: float | None, top: int) -> list[dict[str, Any]]:
    """Ollama's ``logprobs``: an entry per generated token, with ``top`` alternatives; the token
    of a yes/no answer gets ``yes`` and ``no`` at ``p_yes`` (else 0.9 for the word it is)."""
    import math

    out = []
    for token in re.findall(r"\w+|[^\w\s]+|\s+", content):
        if token in ("yes", "no"):
            p = p_yes if p_yes is not None else (0.9 if token == "yes" else 0.1)
            alternatives = sorted([("yes", p), ("no", 1 - p), ("maybe", 1e-4)], key=lambda a: -a[1])
            chosen = dict(alternatives)[token]
            entry = {"token": token, "logprob": math.log(max(chosen, 1e-12)),
                     "top_logprobs": [{"token": t, "logprob": math.log(max(q, 1e-12))} for t, q in alternatives][:top]}
        else:
            entry = {"token": token, "logprob": -0.01, "top_logprobs": [{"token": token, "logprob": -0.01}][:top]}
        out.append(entry)
    return out


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


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
        self._httpd = LoopbackHTTPServer(type("Handler", (_Handler,), {"fake": self}))
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
        seconds = _keep_alive_seconds(keep_alive)
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

    # -- state the handler reads ----------------------------------------------------------

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

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOllama
    protocol_version = "HTTP/1.1"  # keep-alive, as Go serves it; httpx pools connections
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's delayed
    # ACK holds the body back ~40 ms per answer, which Go's server (one write) never does.
    disable_nagle_algorithm = True
    server_version = "fake-ollama"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing -------------------------------------------------------------------------

    def _read(self) -> tuple[Any, bytes, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, raw, True
        try:
            return json.loads(raw), raw, True
        except ValueError:
            return None, raw, False

    def _record(self, body: Any, raw: bytes) -> Request:
        request = Request(self.command, self.path.split("?", 1)[0], body, raw, dict(self.headers.items()))
        with self.fake._lock:
            self.fake.requests.append(request)
        return request

    def _send(self, status: int, payload: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Date", self.date_time_string())
        if len(payload) <= _CHUNKING_THRESHOLD:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(payload), 64 << 10):
                if self.fake._stopping.is_set():
                    self.close_connection = True
                    return
                self._chunk(payload[i:i + (64 << 10)])
            self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _not_found_page(self) -> None:
        self._send(404, b"404 page not found", "text/plain")

    def _guard(self, fn: Callable[[], None]) -> None:
        if self.fake._busy and self.fake._stopping.wait(self.fake._busy):
            self.close_connection = True
            return
        try:
            fn()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away, e.g. it refused a huge answer

    # -- routes ---------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._record(None, b"")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", "17")
        self.end_headers()

    def do_GET(self) -> None:
        self._guard(self._get)

    def do_POST(self) -> None:
        self._guard(self._post)

    def do_DELETE(self) -> None:
        self._record(*self._read()[:2])
        self._not_found_page()

    def _get(self) -> None:
        self._read()
        request = self._record(None, b"")
        if request.path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif request.path == "/api/version":
            self._json(200, {"version": "0.6.5"})
        elif request.path == "/api/tags":
            self._json(200, self.fake._tags())
        elif request.path == "/api/ps":
            self._json(200, self.fake._ps())
        else:
            self._not_found_page()

    def _post(self) -> None:
        body, raw, ok = self._read()
        request = self._record(body, raw)
        route = {"/api/show": self._show, "/api/chat": self._generate, "/api/generate": self._generate,
                 "/api/embed": self._embed}
        if request.path not in route:
            self._not_found_page()
            return
        if not ok or not isinstance(body, dict):
            # gin's binding error text
            self._error(400, "invalid character '<' looking for beginning of value" if raw else "missing request body")
            return
        if request.path not in ("/api/chat", "/api/generate"):
            route[request.path](request)
            return
        with self.fake._lock:
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        try:
            route[request.path](request)
        finally:
            with self.fake._lock:
                self.fake.in_flight -= 1

    def _show(self, request: Request) -> None:
        name = request.body.get("model") or request.body.get("name") or ""
        model = self.fake._model(name) if name else None
        if model is None:
            self._error(404, f"model '{name}' not found")
            return
        self._json(200, self.fake._show(model))

    def _embed(self, request: Request) -> None:
        """``/api/embed`` as ``server/routes.go``'s EmbedHandler answers it: one L2-normalised
        vector per input, in order; a model without the embedding capability is refused."""
        body = request.body
        name = body.get("model") or ""
        if not name:
            self._error(400, "model is required")
            return
        model = self.fake._model(name)
        if model is None:
            self._error(404, f'model "{name}" not found, try pulling it first')
            return
        if "embedding" not in model.capabilities:
            self._error(400, "this model does not support embeddings")
            return
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._error(400, "invalid input type")
            return
        if not texts:
            self._json(200, {"model": name, "embeddings": []})
            return
        behaviour = self.fake._behaviour(model.name)
        if behaviour.kind == "error":
            self._error(behaviour.status, behaviour.message)
            return
        if behaviour.kind == "hang":
            self.fake._stopping.wait()
            self.close_connection = True
            return
        started = time.monotonic()
        self.fake.load(model.name, body.get("keep_alive") or "5m")
        vectors = [_normalised(self.fake._embedder(t)) for t in texts]
        self._json(200, {
            "model": name, "embeddings": vectors,
            "total_duration": int((time.monotonic() - started) * 1e9) + 1_000_000, "load_duration": 500_000,
            "prompt_eval_count": sum(_tokens(t) for t in texts),
        })

    def _generate(self, request: Request) -> None:
        body = request.body
        chat = request.path == "/api/chat"
        name = body.get("model") or ""
        if not name:
            self._error(400, "model is required")
            return
        model = self.fake._model(name)
        if model is None:
            self._error(404, f'model "{name}" not found, try pulling it first')
            return
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            self._error(500, f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema object')
            return
        if chat and not isinstance(body.get("messages", []), list):
            self._error(400, "json: cannot unmarshal into Go struct field ChatRequest.messages")
            return
        try:
            keep_alive = _keep_alive_seconds(body.get("keep_alive"))
        except ValueError as exc:
            self._error(400, str(exc))
            return

        behaviour = self.fake._behaviour(model.name)
        started = time.monotonic()
        if behaviour.kind == "error":
            self._error(behaviour.status, behaviour.message)
            return
        if behaviour.kind == "hang":
            self.fake._stopping.wait()
            self.close_connection = True
            return
        if behaviour.kind == "slow" and self.fake._stopping.wait(behaviour.seconds):
            self.close_connection = True
            return
        if behaviour.kind == "garbage":
            self._send(200, behaviour.body)
            return

        empty = (chat and not body.get("messages")) or (not chat and not body.get("prompt"))
        if empty and keep_alive == 0:  # routes.go: expire the runner, answer without metrics
            self.fake.load(model.name, 0)
            self._json(200, self._bare(name, chat, "unload"))
            return
        speed = self.fake._speed
        cold = not self.fake.is_loaded(model.name)
        if cold and speed.load and self.fake._stopping.wait(speed.load):
            self.close_connection = True
            return
        loaded_after = time.monotonic() - started
        self.fake.load(model.name, -1 if keep_alive is None else keep_alive)
        if empty:  # an empty request only loads the model
            self._json(200, self._bare(name, chat, "load"))
            return
        prompt = self._prompt_text(body, chat)
        if behaviour.kind == "huge":
            content, reason = '{"violations": [{"message": "' + "x" * behaviour.size + '"}]}', "stop"
        else:
            answer = behaviour.answer
            content, reason = (answer(request) if callable(answer) else answer), behaviour.done_reason
        limit = (body.get("options") or {}).get("num_predict")
        counts = {
            "prompt_eval_count": (behaviour.prompt_eval_count if behaviour.prompt_eval_count is not None
                                  else _tokens(prompt)),
            "eval_count": behaviour.eval_count if behaviour.eval_count is not None else _tokens(content),
        }
        # num_predict cuts the answer, as in Ollama; ``huge`` plays a server that ignores it.
        if (isinstance(limit, int) and limit > 0 and counts["eval_count"] > limit and behaviour.eval_count is None
                and behaviour.kind != "huge"):
            content, reason, counts["eval_count"] = content[:limit * 4], "length", limit

        prompt_seconds = counts["prompt_eval_count"] / speed.prompt_tps if speed.prompt_tps else 0.0005
        eval_seconds = counts["eval_count"] / speed.eval_tps if speed.eval_tps else None
        if speed.prompt_tps and self.fake._stopping.wait(prompt_seconds):
            self.close_connection = True
            return
        streamed = body.get("stream", True) is not False
        # Streamed answers are paced piece by piece in _stream; a whole answer waits for all of it.
        if eval_seconds is not None and not streamed and self.fake._stopping.wait(eval_seconds):
            self.close_connection = True
            return
        elapsed = max(1, int((time.monotonic() - started) * 1e9))
        final = {
            "model": name, "created_at": _now(),  # Ollama echoes the name as asked
            **({"message": {"role": "assistant", "content": content}} if chat else {"response": content}),
            "done": True, "done_reason": reason,
            **({} if chat else {"context": [151644, 872, 198]}),
            "total_duration": elapsed + 2_000_000, "load_duration": int(loaded_after * 1e9) + 500_000,
            "prompt_eval_count": counts["prompt_eval_count"], "prompt_eval_duration": int(prompt_seconds * 1e9),
            "eval_count": counts["eval_count"],
            "eval_duration": int(eval_seconds * 1e9) if eval_seconds is not None else elapsed,
        }
        if body.get("logprobs") and self.fake._logprobs:
            final["logprobs"] = _logprobs(content, self.fake._p_yes, int(body.get("top_logprobs") or 0))
        if behaviour.kind == "drop":
            self._drop(final)
        elif not streamed:
            self._json(200, final)
        else:
            self._stream(final, chat, eval_seconds)

    @staticmethod
    def _bare(name: str, chat: bool, reason: str) -> dict[str, Any]:
        """The load/unload answer: no content, no metrics (``api.Metrics`` fields are omitempty)."""
        return {"model": name, "created_at": _now(),
                **({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}),
                "done": True, "done_reason": reason}

    @staticmethod
    def _prompt_text(body: dict[str, Any], chat: bool) -> str:
        if chat:
            return "".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
        return str(body.get("system") or "") + str(body.get("prompt") or "")

    def _stream(self, final: dict[str, Any], chat: bool, eval_seconds: float | None = None) -> None:
        """NDJSON, one object per token-ish piece, then the final object with the stats; with
        ``eval_seconds`` the pieces after the first are spread over that time."""
        key = "message" if chat else "response"
        content = final["message"]["content"] if chat else final["response"]
        pieces = max(1, -(-len(content) // 8))
        pause = eval_seconds / pieces if eval_seconds else 0.0
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Date", self.date_time_string())
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, piece in enumerate(_pieces(content)):
            if self.fake._stopping.wait(pause if i else 0):
                self.close_connection = True
                return
            part = {"model": final["model"], "created_at": _now(),
                    key: {"role": "assistant", "content": piece} if chat else piece, "done": False}
            self._chunk(json.dumps(part, separators=(",", ":")).encode() + b"\n")
        last = dict(final)
        last[key] = {"role": "assistant", "content": ""} if chat else ""
        self._chunk(json.dumps(last, separators=(",", ":")).encode() + b"\n")
        self._chunk(b"")

    def _drop(self, final: dict[str, Any]) -> None:
        """Promise the whole body, send half of it, and close: a server that died mid-answer."""
        payload = json.dumps(final, separators=(",", ":")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def bag_of_words(text: str) -> list[float]:
    """A stand-in embedding: words (identifiers split at ``_`` and case changes) hashed into
    ``EMBED_DIM`` buckets. Texts with the same words point the same way, as real embeddings of
    near-identical code do."""
    vector = [0.0] * EMBED_DIM
    for word in re.findall(r"[A-Za-z][a-z]*|[0-9]+", text):
        vector[int(hashlib.md5(word.lower().encode()).hexdigest(), 16) % EMBED_DIM] += 1.0
    return vector


def _normalised(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else vector


def _pieces(text: str, size: int = 8) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i:i + size]


@pytest.fixture(name="ollama_server")
def ollama_server_fixture() -> Iterator[FakeOllama]:
    """A running fake Ollama with the default models present and none loaded."""
    with FakeOllama() as server:
        yield server
