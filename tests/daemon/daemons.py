"""Real daemons for tests: a repository to lint, requests over the real socket (whole, raw or cut
short), what a reply should be, and finding and stopping a state directory's processes, which
are told apart by their ``TINYARMS_HOME``, never by name.

``shared_fixture`` is one daemon for a whole module of bad input: each case must leave it
serving, unreplaced.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import tinyarms
from tests.conftest import at, git, run_cli
from tinyarms import protocol
from tinyarms.daemon import control

REQUEST_TIMEOUT = 0.5
# The daemon's environment and the client's: a short request deadline, and Level 0 only, so no
# model backend found on the machine makes these tests slow or their answers vary.
ENV = {"TINYARMS_DAEMON__REQUEST_TIMEOUT": str(REQUEST_TIMEOUT), "TINYARMS_MODELS__BACKEND": "none"}
BAD = 'export const brand = "#ff0000";\n'
CLEAN = "export const brand = tokens.brand;\n"
BAD_FINDINGS = [("bad.ts", *at(BAD, 1, "#ff0000"), "hardcoded-colors")]


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    (root / "bad.ts").write_text(BAD)
    (root / "clean.ts").write_text(CLEAN)
    return root


def request(home: Path, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    with protocol.Connection(protocol.socket_path(home), timeout) as conn:
        return conn.request(message)


def lint_message(repo: Path, *paths: str, **extra: Any) -> dict[str, Any]:
    """A lint request as the command line sends it from this test's environment."""
    return {"op": "lint", "cwd": str(repo), "paths": list(paths), "env": ENV, **extra}


def brief(findings: list[dict[str, Any]]) -> list[tuple]:
    return [(f["path"], f["line"], f["column"], f["rule"]) for f in findings]


def read_reply(sock: socket.socket) -> dict[str, Any] | None:
    """One reply line, or None when the daemon closed the connection without one."""
    data = b""
    while b"\n" not in data:
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    if b"\n" not in data:
        assert data == b"", f"a truncated reply: {data[:200]!r}"
        return None
    line = data.partition(b"\n")[0]
    return json.loads(line)


def exchange(home: Path, payload: bytes | list[bytes], timeout: float = 5.0,
             half_close: bool = False) -> tuple[dict[str, Any] | None, float]:
    """Send raw bytes (a list: in chunks) and read one reply; (reply or None, seconds taken).

    A ``socket.timeout`` escapes: no answer and no hang-up within ``timeout`` is a failure."""
    chunks = payload if isinstance(payload, list) else [payload]
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(protocol.socket_path(home)))
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon hung up early; a reply it sent first is still readable
        reply = read_reply(sock)
    return reply, time.monotonic() - started


def assert_serving(home: Path, repo: Path, pid: int | None = None) -> int:
    """The daemon answers a ping and lints correctly; returns its pid."""
    ping = request(home, {"op": "ping"}, timeout=5.0)
    assert ping["ok"] is True and ping["version"] == tinyarms.__version__
    if pid is not None:
        assert ping["result"]["pid"] == pid, "the daemon was replaced"
    reply = request(home, lint_message(repo, "bad.ts", "clean.ts"), timeout=10.0)
    assert reply["ok"] is True, reply
    assert brief(reply["result"]["findings"]) == BAD_FINDINGS
    assert reply["result"]["exit_code"] == 1
    return ping["result"]["pid"]


def assert_error(reply: dict[str, Any] | None, code: str) -> dict[str, Any]:
    assert reply is not None, "the daemon closed the connection without an error reply"
    assert reply["v"] == protocol.PROTOCOL
    assert reply["ok"] is False and "result" not in reply
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    return reply["error"]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def daemons_of(home: Path) -> list[psutil.Process]:
    """Live processes started for this state directory, told apart by their environment (not a name)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("TINYARMS_HOME") == str(home) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def stop_daemons(home: Path) -> None:
    """Teardown: stop this state directory's daemon, and any straggler that takes over after it."""
    for _ in range(5):
        control.stop(home)
        try:
            wait_for(lambda: not daemons_of(home), 2, "this state directory's processes to exit")
            return
        except AssertionError:
            continue
    raise AssertionError(f"processes left running for {home}: {[p.pid for p in daemons_of(home)]}")


def state_files(home: Path) -> tuple[bool, bool]:
    return protocol.socket_path(home).exists(), control.pid_path(home).exists()


def status_json(cwd: Path) -> tuple[int, dict[str, Any]]:
    result = run_cli("status", "--json", cwd=cwd)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module", name="shared")
def shared_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[argparse.Namespace]:
    """One daemon for the whole bad-input battery: each case must leave it serving, unreplaced."""
    home = tmp_path_factory.mktemp("shared-home")
    repo = make_repo(tmp_path_factory.mktemp("shared") / "repo")
    try:
        with pytest.MonkeyPatch.context() as mp:  # the daemon takes its environment from ours
            for name in list(os.environ):
                if name.startswith("TINYARMS_"):
                    mp.delenv(name)
            mp.setenv("TINYARMS_HOME", str(home))
            mp.setenv("TINYARMS_CONFIG", str(home / "no-user-config.yaml"))
            for name, value in ENV.items():
                mp.setenv(name, value)
            pid = control.start(home)["result"]["pid"]
        yield argparse.Namespace(home=home, repo=repo, pid=pid)
    finally:
        stop_daemons(home)
