"""A stand-in OpenAI-compatible server for tests of the OpenAI backend: ``GET /v1/models`` and
``POST /v1/chat/completions`` on 127.0.0.1, every request recorded, each answer scripted.

``FakeOpenAI().chat`` is a function from the request body to a ``Reply`` (a status, a JSON body or
raw bytes, with or without a ``Content-Length``); ``completion(content)`` and ``error(status,
message)`` build the bodies a real server sends. ``models`` answers ``/v1/models`` the same way.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests import servers
from tests.servers import LoopbackHTTPServer
from tinyarms.models.openai_wire import JSON_SCHEMA

MODEL = "qwen2.5-coder:3b"
EMPTY = '{"violations": []}'


@dataclass(slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: Any = None  # dict/list: sent as JSON; bytes: as they are
    length: bool = True  # False: no Content-Length, the body ends when the connection closes


def completion(content: Any = EMPTY, model: str = MODEL) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38},
    }


def error(status: int, message: str, **fields: Any) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                    "code": None, **fields}})


class FakeOpenAI:
    """``/v1/models`` and ``/v1/chat/completions`` on 127.0.0.1; ``chat`` decides each answer."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.chat: Callable[[Any], Reply] = lambda body: Reply(200, completion())
        self.models: Callable[[], Reply] = lambda: Reply(200, {"object": "list", "data": [
            {"id": MODEL, "object": "model", "created": 1_700_000_000, "owned_by": "library"}]})
        self.hang = threading.Event()  # set: chat requests wait until stop()
        self._stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(None)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                self._serve(body)

            def _serve(self, body: Any) -> None:
                fake.requests.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                if self.path == "/v1/models" and self.command == "GET":
                    reply = fake.models()
                elif self.path == "/v1/chat/completions" and self.command == "POST":
                    if fake.hang.is_set():
                        fake._stopping.wait(30)
                        return
                    reply = fake.chat(body)
                else:
                    reply = Reply(404, b"Not Found")
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                if reply.length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading: some tests want that
                    self.wfile.write(data)

        self._httpd = LoopbackHTTPServer(Handler)
        self._thread = servers.serve(self._httpd, "fake-openai")

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def chats(self) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def shapes(self) -> list[str]:
        return [r.body["response_format"]["type"] for r in self.chats()]

    def reject_json_schema(self, reply: Reply) -> None:
        """Answer ``reply`` to the OpenAI shape and a normal completion to the fallback."""
        def chat(body: Any) -> Reply:
            if body["response_format"]["type"] == JSON_SCHEMA:
                return reply
            return Reply(200, completion())
        self.chat = chat

    def stop(self) -> None:
        self._stopping.set()
        servers.stop(self._httpd, self._thread)
