"""The daemon's connections as a client meets them: real daemon processes, real Unix sockets, real
git repos. Bad input of every kind costs an error reply (or a hang-up) and the daemon keeps
serving; twenty clients at once all get correct answers; another user cannot reach the socket.

Every daemon a test starts is stopped by a fixture (``control.stop``); processes are told apart
by their ``TINYARMS_HOME``, never by name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.daemon.daemons import (  # noqa: F401 - shared_fixture: a fixture
    BAD,
    BAD_FINDINGS,
    CLEAN,
    REQUEST_TIMEOUT,
    assert_error,
    assert_serving,
    brief,
    exchange,
    gone,
    lint_message,
    make_repo,
    read_reply,
    request,
    shared_fixture,
    stop_daemons,
)
from tinyarms import protocol
from tinyarms.daemon import control

# -- bad input: an error reply (or a hang-up), and the daemon keeps serving -------------------


BAD_REQUESTS = {
    "garbage-bytes": (b"\x00\xff\xfe\x80garbage\x1b[31m\n", protocol.BAD_REQUEST),
    "invalid-json": (b'{"v": 1, "op": "ping",\n', protocol.BAD_REQUEST),
    "json-array": (b'[{"v": 1, "op": "ping"}]\n', protocol.BAD_REQUEST),
    "json-string": (b'"ping"\n', protocol.BAD_REQUEST),
    "empty-line": (b"\n", protocol.BAD_REQUEST),
    "wrong-types": (b'{"v":1,"op":"lint","cwd":5}\n', protocol.BAD_REQUEST),
    "wrong-nested-types": (b'{"v":1,"op":"lint","cwd":"/","files":[{"path":7}]}\n', protocol.BAD_REQUEST),
    "unknown-op": (b'{"v":1,"op":"rm -rf"}\n', protocol.UNKNOWN_OP),
    "missing-v": (b'{"op":"ping"}\n', protocol.BAD_REQUEST),
    "other-v": (b'{"v":2,"op":"ping"}\n', protocol.BAD_REQUEST),
    "extra-field": (b'{"v":1,"op":"ping","exec":"sh"}\n', protocol.BAD_REQUEST),
    "relative-cwd": (b'{"v":1,"op":"lint","cwd":"some/where","paths":["bad.ts"]}\n', protocol.BAD_REQUEST),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_error_reply_and_daemon_keeps_serving(shared: argparse.Namespace, case: str) -> None:
    payload, code = BAD_REQUESTS[case]
    reply, took = exchange(shared.home, payload)
    assert_error(reply, code)
    assert took < 2.0
    assert_serving(shared.home, shared.repo, shared.pid)


def test_bad_request_does_not_end_the_connection(shared: argparse.Namespace) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(protocol.socket_path(shared.home)))
        sock.sendall(b"not json\n")
        assert_error(read_reply(sock), protocol.BAD_REQUEST)
        sock.sendall(protocol.encode({"v": 1, "op": "ping", "id": 7}))
        reply = read_reply(sock)
    assert reply is not None and reply["ok"] is True and reply["result"]["pid"] == shared.pid


def test_oversized_request_is_refused_and_daemon_keeps_serving(shared: argparse.Namespace) -> None:
    chunk = b"x" * (1 << 20)
    chunks = [b'{"v":1,"op":"lint","cwd":"/","paths":["'] + [chunk] * ((protocol.MAX_MESSAGE >> 20) + 1)
    reply, took = exchange(shared.home, chunks, timeout=10.0)
    if reply is not None:  # hanging up without a reply is also an answer, as long as it is quick
        assert_error(reply, protocol.TOO_LARGE)
    assert took < 5.0
    assert_serving(shared.home, shared.repo, shared.pid)


def test_client_hanging_up_half_way_costs_nothing(shared: argparse.Namespace) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(protocol.socket_path(shared.home)))
        sock.sendall(b'{"v":1,"op":"lint","cwd":"/tm')
    assert_serving(shared.home, shared.repo, shared.pid)
    # Half-closed instead: the daemon sees the end of a partial request and hangs up, no reply.
    reply, took = exchange(shared.home, b'{"v":1,"op":"pi', half_close=True)
    assert reply is None and took < 2.0
    assert_serving(shared.home, shared.repo, shared.pid)


def test_silent_client_gets_timeout_reply(shared: argparse.Namespace) -> None:
    reply, took = exchange(shared.home, b"", timeout=REQUEST_TIMEOUT + 3)
    assert_error(reply, protocol.TIMEOUT)
    assert REQUEST_TIMEOUT * 0.9 <= took <= REQUEST_TIMEOUT + 1.0
    # A request begun but never finished hits the same deadline.
    reply, took = exchange(shared.home, b'{"v":1,"op":"ping"', timeout=REQUEST_TIMEOUT + 3)
    assert_error(reply, protocol.TIMEOUT)
    assert took <= REQUEST_TIMEOUT + 1.0
    assert_serving(shared.home, shared.repo, shared.pid)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "../secret.ts", "sub/../../secret.ts", ".."])
def test_sent_file_escaping_the_root_is_a_config_error(shared: argparse.Namespace, path: str) -> None:
    secret = shared.repo.parent / "secret.ts"
    secret.write_text('export const leak = "#123456"; // SECRET-MARKER\n')
    for content in (None, "eA=="):  # left out (the daemon would read it) and sent
        message = lint_message(shared.repo, root=str(shared.repo), files=[
            {"path": "bad.ts", "content_b64": None, "size": 1},
            {"path": path, "content_b64": content, "size": 1},
        ])
        reply, _ = exchange(shared.home, protocol.encode({"v": 1, **message}))
        error = assert_error(reply, protocol.CONFIG_ERROR)
        assert "escapes the repository" in error["message"] and path in error["message"]
        assert "SECRET-MARKER" not in json.dumps(reply) and "root:" not in json.dumps(reply)
    assert_serving(shared.home, shared.repo, shared.pid)


def test_invalid_base64_is_an_error_reply(shared: argparse.Namespace) -> None:
    files = [{"path": "bad.ts", "content_b64": "#not base64!"}]
    message = lint_message(shared.repo, root=str(shared.repo), files=files)
    reply, _ = exchange(shared.home, protocol.encode({"v": 1, **message}))
    error = assert_error(reply, protocol.BAD_REQUEST)
    assert "bad.ts" in error["message"] and "base64" in error["message"]
    assert_serving(shared.home, shared.repo, shared.pid)


def test_sent_files_are_linted(shared: argparse.Namespace) -> None:
    """The valid form of the requests above, so their refusals are not a broken ``files`` path."""
    import base64

    message = lint_message(shared.repo, root=str(shared.repo), files=[
        {"path": "bad.ts", "content_b64": base64.b64encode(BAD.encode()).decode()},
        {"path": "sub/../clean.ts", "content_b64": base64.b64encode(CLEAN.encode()).decode()},
    ])
    reply = request(shared.home, message)
    assert reply["ok"] is True and brief(reply["result"]["findings"]) == BAD_FINDINGS


def test_battery_left_errors_in_status_and_the_same_daemon(shared: argparse.Namespace) -> None:
    reply = request(shared.home, {"op": "status"})
    assert reply["ok"] is True and reply["result"]["daemon"]["pid"] == shared.pid
    codes = {error["code"] for error in reply["result"]["recent_errors"]}
    assert protocol.BAD_REQUEST in codes
    assert not gone(shared.pid) and control.is_locked(shared.home)


# -- concurrency ------------------------------------------------------------------------------


def test_twenty_concurrent_clients_all_get_correct_answers(home: Path, daemon: dict, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    expected = {}
    for name in ("bad.ts", "clean.ts"):
        serial = run_cli("lint", "--no-daemon", "--format", "json", name, cwd=repo)
        expected[name] = (serial.returncode, json.loads(serial.stdout))
    assert brief(expected["bad.ts"][1]["findings"]) == BAD_FINDINGS and expected["bad.ts"][0] == 1
    assert expected["clean.ts"][1]["findings"] == [] and expected["clean.ts"][0] == 0
    assert expected["clean.ts"][1]["skipped"], "model checks are reported as skipped: compared below too"

    clients = 20
    barrier = threading.Barrier(clients)
    replies: list[tuple[str, dict | BaseException]] = [None] * clients  # type: ignore[list-item]

    def one(i: int) -> None:
        name = "bad.ts" if i % 2 else "clean.ts"
        try:
            with protocol.Connection(protocol.socket_path(home), 10.0) as conn:
                barrier.wait(timeout=10)
                replies[i] = (name, conn.request(lint_message(repo, name, format="json")))
        except BaseException as exc:  # noqa: BLE001 - reported below, with which client it was
            replies[i] = (name, exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    for name, reply in replies:
        assert isinstance(reply, dict), f"{name}: {reply!r}"
        assert reply["ok"] is True, reply
        code, want = expected[name]
        got = json.loads(reply["result"]["output"])
        assert got["findings"] == want["findings"]
        assert got["skipped"] == want["skipped"]
        assert reply["result"]["findings"] == want["findings"]
        assert reply["result"]["exit_code"] == code
    status = request(home, {"op": "status"})["result"]
    assert status["requests"]["by_op"]["lint"] == clients
    assert status["recent_errors"] == []
    assert status["daemon"]["pid"] == daemon["result"]["pid"]


# -- peer credentials -------------------------------------------------------------------------


def as_nobody(work: Callable[[], bytes]) -> bytes:
    """Run ``work`` in a forked child as ``nobody``; its bytes, or the child's traceback as a failure."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            signal.alarm(10)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            out = work()
            code = 0
        except BaseException:  # noqa: BLE001 - the forked child reports any failure to the parent
            out = traceback.format_exc().encode()
        finally:
            try:
                os.write(write_end, out)
            finally:
                os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out.decode(errors="replace")
    return out


@pytest.fixture
def public_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory another user could reach but for its own mode (pytest's tmp is 0700)."""
    parent = Path(tempfile.mkdtemp(prefix="tinyarms-peer-"))
    parent.chmod(0o755)
    state = parent / "home"
    monkeypatch.setenv("TINYARMS_HOME", str(state))
    try:
        yield state
    finally:
        stop_daemons(state)
        shutil.rmtree(parent)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_other_user_cannot_reach_the_socket(public_home: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = control.start(public_home)["result"]["pid"]
    sock = protocol.socket_path(public_home)
    assert stat.S_IMODE(public_home.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600

    def connect() -> bytes:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(sock))
        except PermissionError:
            return b"PermissionError"
        return b"connected"

    assert as_nobody(connect) == b"PermissionError"

    # A misconfigured state directory: only the peer credential check stands in the way now.
    public_home.chmod(0o755)
    sock.chmod(0o666)

    def ping() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(sock))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                s.sendall(protocol.encode({"v": 1, "op": "ping"}))
            reply = read_reply(s)
        return json.dumps(reply).encode()

    reply = json.loads(as_nobody(ping))
    if reply is not None:
        error = assert_error(reply, protocol.FORBIDDEN)
        assert f"uid {pwd.getpwnam('nobody').pw_uid}" in error["message"]
    assert_serving(public_home, repo, pid)
    recent = request(public_home, {"op": "status"})["result"]["recent_errors"]
    assert any(error["code"] == protocol.FORBIDDEN for error in recent)
