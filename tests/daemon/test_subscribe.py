"""The daemon's ``subscribe`` op and a buffer linted by content: what the language server uses.

A real daemon on a temp-dir socket, the fake Ollama on loopback; both stopped by fixtures.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import git
from tests.daemon.daemons import read_reply, request
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_router_models import agreeing_model
from tinyarms import protocol
from tinyarms.daemon import control

LEVEL0 = {"TINYARMS_MODELS__BACKEND": "none"}


def subscribe(home: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(protocol.socket_path(home)))
    sock.sendall(protocol.encode({"v": 1, "op": "subscribe"}))
    return sock


def read_lines(sock: socket.socket, count: int) -> list[dict[str, Any]]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(1 << 16)
        assert chunk, f"the daemon hung up after {data!r}"
        data += chunk
    return [json.loads(line) for line in data.split(b"\n")[:count]]


def buffer_lint(root: Path, rel: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "op": "lint", "cwd": str(root), "root": str(root), "env": {},
        "files": [{"path": rel, "content_b64": base64.b64encode(content.encode()).decode()}], **extra,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def test_a_buffer_is_linted_as_sent_not_as_on_disk(home: Path, project: Path) -> None:
    (project / "app.ts").write_text("export const a = 1;\n")  # the disk has nothing to find
    control.start(home)
    reply = request(home, buffer_lint(project, "app.ts", 'export const brand = "#ff0000";\n', env=LEVEL0))
    assert reply["ok"], reply
    [finding] = reply["result"]["findings"]
    where = (finding["path"], finding["line"], finding["column"], finding["rule"])
    assert where == ("app.ts", 1, 23, "hardcoded-colors")


def test_a_subscriber_is_told_when_the_background_answers_a_question_about_its_file(
    home: Path, project: Path, ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ollama_server.slow(1.5, agreeing_model)  # slower than the lint's budget: the question goes to the background
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "ollama")
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    env = {"TINYARMS_MODELS__BACKEND": "ollama", "OLLAMA_HOST": ollama_server.host}
    control.start(home)
    with subscribe(home) as sock:
        [reply] = read_lines(sock, 1)
        assert reply["ok"] and reply["result"]["subscribed"] is True
        lint = request(home, buffer_lint(project, "prices.py", TWINS, budget=0.5, env=env))
        assert lint["ok"], lint
        assert any(s["rule"] == "simple-dry" and s["reason"] == "budget" for s in lint["result"]["skipped"]), lint
        assert not any(f["rule"] == "simple-dry" for f in lint["result"]["findings"])
        started = time.monotonic()
        [event] = read_lines(sock, 1)  # pushed: no request sent on this connection
        assert event == {"v": 1, "event": "answered", "paths": ["prices.py"]}
        assert time.monotonic() - started < 20
    # The answer is cached now: the same buffer gets the model's finding at once.
    again = request(home, buffer_lint(project, "prices.py", TWINS, budget=0.5, env=env))
    assert [f["line"] for f in again["result"]["findings"] if f["rule"] == "simple-dry"] == [12], again


def test_a_subscription_that_hangs_up_costs_the_daemon_nothing(home: Path, project: Path) -> None:
    control.start(home)
    for _ in range(3):
        sock = subscribe(home)
        assert read_reply(sock)["ok"]  # type: ignore[index]
        sock.close()
    time.sleep(0.2)
    status = request(home, {"op": "status"})
    assert status["ok"] and status["result"]["background"]["subscribers"] == 0
    assert request(home, {"op": "ping"})["ok"]
