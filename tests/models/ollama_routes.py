"""The fake Ollama's endpoints (``ollama_server``), in the real server's wire format (``docs/api.md``,
``api/types.go``, ``server/routes.go``): ``GET /``, ``/api/version``, ``/api/tags``, ``/api/ps``;
``POST /api/show``, ``/api/embed``, and ``/api/chat`` and ``/api/generate``, whose answers follow
the fake's script: its behaviour for the model, its speed, its token counts and log probabilities,
streamed as NDJSON unless ``"stream": false``. Errors are Ollama's (``{"error": "..."}``, with
its status codes and words).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.models.ollama_http import OllamaHTTPHandler

if TYPE_CHECKING:
    from tests.models.ollama_server import Behaviour, FakeModel, Request


class Handler(OllamaHTTPHandler):
    """Ollama's endpoints, answered from the fake's state and script."""

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

    def _named_model(self, name: str) -> FakeModel | None:
        """The model a generate, chat or embed request names; None once Ollama's error is sent
        (400 without a name, 404 for one not pulled)."""
        if not name:
            self._error(400, "model is required")
            return None
        model = self.fake._model(name)
        if model is None:
            self._error(404, f'model "{name}" not found, try pulling it first')
        return model

    def _failed(self, behaviour: Behaviour) -> bool:
        """Play a scripted failure, an error reply or a hang until the fake stops; whether it did."""
        if behaviour.kind == "error":
            self._error(behaviour.status, behaviour.message)
            return True
        if behaviour.kind == "hang":
            self.fake._stopping.wait()
            self.close_connection = True
            return True
        return False

    def _embed(self, request: Request) -> None:
        """``/api/embed`` as ``server/routes.go``'s EmbedHandler answers it: one L2-normalised
        vector per input, in order; a model without the embedding capability is refused."""
        body = request.body
        name = body.get("model") or ""
        model = self._named_model(name)
        if model is None:
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
        if self._failed(self.fake._behaviour(model.name)):
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
        model = self._named_model(name)
        if model is None:
            return
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            self._error(500, f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema object')
            return
        if chat and not isinstance(body.get("messages", []), list):
            self._error(400, "json: cannot unmarshal into Go struct field ChatRequest.messages")
            return
        try:
            keep_alive = keep_alive_seconds(body.get("keep_alive"))
        except ValueError as exc:
            self._error(400, str(exc))
            return

        behaviour = self.fake._behaviour(model.name)
        started = time.monotonic()
        if self._failed(behaviour):
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


def _now() -> str:
    return datetime.now(UTC).isoformat()


def keep_alive_seconds(value: Any) -> float | None:
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


def _normalised(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else vector


def _pieces(text: str, size: int = 8) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i:i + size]
