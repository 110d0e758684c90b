"""The daemon as a client meets it: real daemon processes, real Unix sockets, real git repos.

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
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import tinyarms
from tests.conftest import at, git, run_cli
from tests.servers import Listener
from tinyarms import client, protocol
from tinyarms.daemon import control

REQUEST_TIMEOUT = 0.5
# The daemon's environment and the client's: a short request deadline, and Level 0 only, so no
# model backend found on the machine makes these tests slow or their answers vary.
ENV = {"TINYARMS_DAEMON__REQUEST_TIMEOUT": str(REQUEST_TIMEOUT), "TINYARMS_MODELS__BACKEND": "none"}
BAD = 'export const brand = "#ff0000";\n'
CLEAN = "export const brand = tokens.brand;\n"
BAD_FINDINGS = [("bad.ts", *at(BAD, 1, "#ff0000"), "hardcoded-colors")]


# -- helpers ----------------------------------------------------------------------------------


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


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(name="home")
def home_fixture(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The state directory; whatever daemon a test starts in it is stopped afterwards."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    yield isolated_env
    stop_daemons(isolated_env)
    assert not control.is_locked(isolated_env)


@pytest.fixture
def daemon(home: Path) -> dict[str, Any]:
    """A running daemon (its ping reply)."""
    return control.start(home)


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


# -- 1. bad input: an error reply (or a hang-up), and the daemon keeps serving ---------------


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


# -- 2. concurrency ---------------------------------------------------------------------------


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


# -- 3. peer credentials ----------------------------------------------------------------------


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


# -- 4. lifecycle -----------------------------------------------------------------------------


def test_start_returns_once_answering_and_stop_once_gone(home: Path, tmp_path: Path) -> None:
    started = run_cli("daemon", "start", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    ping = control.ping(home)  # no waiting: `start` returned, so it answers now
    assert ping is not None
    pid = ping["result"]["pid"]
    assert f"pid {pid}" in started.stderr
    code, status = status_json(tmp_path)
    assert code == 0 and status["running"] is True and status["daemon"]["pid"] == pid
    assert (control.read_pid(home) or {}).get("pid") == pid
    assert [p.pid for p in daemons_of(home)] == [pid]

    again = run_cli("daemon", "start", cwd=tmp_path)  # already running: same daemon
    assert again.returncode == 0 and control.ping(home)["result"]["pid"] == pid

    stopped = run_cli("daemon", "stop", cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert gone(pid)
    assert state_files(home) == (False, False)
    assert run_cli("daemon", "stop", cwd=tmp_path).returncode == 0


def test_status_shows_every_field_scripts_and_people_read(home: Path, daemon: dict, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    for _ in range(2):  # a miss, then a hit
        assert request(home, lint_message(repo, "bad.ts"))["ok"] is True
    code, status = status_json(tmp_path)
    assert code == 0 and status["running"] is True
    d = status["daemon"]
    assert d["pid"] == daemon["result"]["pid"] and d["version"] == tinyarms.__version__
    assert d["uptime_s"] >= 0 and d["rss_bytes"] > 10 << 20 and d["cpu_percent"] >= 0
    assert d["socket"] == str(protocol.socket_path(home))
    assert {"files", "skills", "reload_errors"} <= set(status["config"]) and status["config"]["skills"]
    assert {"backend", "why", "present", "loaded"} <= set(status["models"])
    cache = status["cache"]
    assert cache["entries"] >= 1 and cache["size_bytes"] > 0 and cache["hit_rate"] == 0.5
    requests = status["requests"]
    assert requests["served"] >= 3 and requests["by_op"]["lint"] == 2
    assert requests["latency_ms"]["p50"] > 0 and requests["latency_ms"]["p95"] >= requests["latency_ms"]["p50"]
    assert isinstance(status["watched_repos"], list)
    assert {"last", "next"} <= set(status["scan"])  # present whether or not a scan is scheduled
    assert status["recent_errors"] == []
    table = run_cli("status", cwd=tmp_path)
    assert table.returncode == 0
    shown = {line.split("  ")[0] for line in table.stdout.splitlines()}
    assert {"daemon", "memory / cpu", "socket", "requests", "cache", "config files", "skills", "models",
            "models present", "models loaded", "watched repos", "deep scan"} <= shown
    assert f"pid {d['pid']}" in table.stdout and "hit rate 50%" in table.stdout


def test_status_exits_3_without_a_daemon(home: Path, tmp_path: Path) -> None:
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 3 and "not running" in result.stderr
    code, status = status_json(tmp_path)
    assert code == 3 and status == {"running": False, "state_dir": str(home)}
    assert run_cli("daemon", "status", cwd=tmp_path).returncode == 3


def test_killed_daemon_is_replaced_by_next_start(home: Path, tmp_path: Path) -> None:
    assert run_cli("daemon", "start", cwd=tmp_path).returncode == 0
    old = control.ping(home)["result"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: gone(old), 5, "the killed daemon to die")
    assert state_files(home) == (True, True), "SIGKILL should leave the socket and pid file behind"
    assert run_cli("status", cwd=tmp_path).returncode == 3

    restarted = run_cli("daemon", "start", cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    new = control.ping(home)["result"]["pid"]
    assert new != old and (control.read_pid(home) or {}).get("pid") == new
    assert [p.pid for p in daemons_of(home)] == [new]


def test_racing_starts_leave_one_daemon(home: Path, tmp_path: Path) -> None:
    for _ in range(3):
        starts = [subprocess.Popen([sys.executable, "-m", "tinyarms", "daemon", "start"], cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        for proc in starts:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err.decode()
        pid = control.ping(home)["result"]["pid"]
        assert control.is_locked(home) and (control.read_pid(home) or {}).get("pid") == pid
        # No waiting: once the starts have returned, the daemons that lost the race are gone too.
        (only,) = daemons_of(home)
        assert only.pid == pid and only.cmdline()[-2:] == ["daemon", "run"]
        # ... so a stop right away leaves nothing behind to take over.
        control.stop(home)
        assert gone(pid) and state_files(home) == (False, False)
        time.sleep(0.5)
        assert daemons_of(home) == [] and not control.is_locked(home)


def test_sigterm_exits_0_and_cleans_up(home: Path) -> None:
    proc = control.spawn(home)
    wait_for(lambda: control.ping(home), 10, "the daemon to answer")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2.0
    assert state_files(home) == (False, False)


def test_idle_daemon_exits_by_itself(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_DAEMON__IDLE_TIMEOUT", "1")
    proc = control.spawn(home)
    wait_for(lambda: control.ping(home), 10, "the daemon to answer")
    started = time.monotonic()
    assert proc.wait(timeout=6) == 0
    assert 0.5 <= time.monotonic() - started < 4.0
    assert state_files(home) == (False, False)


# -- 5. config reload -------------------------------------------------------------------------


def write_config(repo: Path, text: str) -> None:
    path = repo / ".tinyarms.yaml"
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    bumped = max(old, path.stat().st_mtime_ns) + 10_000_000  # a coarse clock must not hide the edit
    os.utime(path, ns=(bumped, bumped))


def test_config_change_is_reloaded_and_a_broken_one_keeps_the_last_good(
        home: Path, daemon: dict, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = daemon["result"]["pid"]

    def lint() -> tuple[subprocess.CompletedProcess[str], list[tuple]]:
        result = run_cli("lint", "--format", "json", "bad.ts", cwd=repo)
        assert "Traceback" not in result.stderr
        return result, brief(json.loads(result.stdout)["findings"])

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: false\n")
    result, findings = lint()
    assert result.returncode == 0 and findings == [] and result.stderr == ""

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: true\n")
    result, findings = lint()
    assert result.returncode == 1 and findings == BAD_FINDINGS and result.stderr == ""

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: maybe\n  [unclosed\n")
    result, findings = lint()
    assert result.returncode == 1 and findings == BAD_FINDINGS  # the previous, good config
    assert "tinyarms: warning:" in result.stderr and ".tinyarms.yaml" in result.stderr
    code, status = status_json(tmp_path)
    assert code == 0 and status["daemon"]["pid"] == pid
    assert status["requests"]["by_op"]["lint"] == 3  # every lint so far went through this daemon
    errors = status["config"]["reload_errors"]
    assert list(errors) == [str(repo)] and ".tinyarms.yaml" in errors[str(repo)]
    # The same through the wire: the reply carries the warning.
    reply = request(home, lint_message(repo, "bad.ts"))  # the options the command line sent
    assert reply["ok"] is True and brief(reply["result"]["findings"]) == BAD_FINDINGS
    assert any(".tinyarms.yaml" in w for w in reply["result"]["warnings"])
    # Other options never had a good config to fall back on: those get the error itself.
    reply = request(home, lint_message(repo, "bad.ts", select=["hardcoded-colors"]))
    error = assert_error(reply, protocol.CONFIG_ERROR)
    assert ".tinyarms.yaml" in error["message"]

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: false\n")
    result, findings = lint()
    assert result.returncode == 0 and findings == [] and result.stderr == ""
    code, status = status_json(tmp_path)
    assert status["config"]["reload_errors"] == {} and status["daemon"]["pid"] == pid


# -- 6. version exchange ----------------------------------------------------------------------


def test_start_replaces_a_daemon_of_another_version(home: Path, daemon: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    old = daemon["result"]["pid"]
    monkeypatch.setattr(tinyarms, "__version__", "0.0.0-old")  # as if this client were upgraded
    reply = control.start(home)
    new = reply["result"]["pid"]
    assert new != old and gone(old)
    assert reply["version"] == reply["result"]["version"] != "0.0.0-old"
    assert (control.read_pid(home) or {}).get("pid") == new
    # The same version now: start leaves it alone.
    monkeypatch.setattr(tinyarms, "__version__", reply["version"])
    assert control.start(home)["result"]["pid"] == new


def test_lint_replaces_a_daemon_of_another_version(home: Path, daemon: dict, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    old = daemon["result"]["pid"]
    args = argparse.Namespace(
        paths=["bad.ts"], staged=False, skill=None, select=None, ignore=None, fail_on=None, budget=None,
        baseline=None, report_unused_ignores=False, no_cache=False, format="json",
    )
    assert client.lint_through_daemon(args, color=False) is not None  # same version: answered

    monkeypatch.setattr(client, "__version__", "0.0.0-old")
    assert client.lint_through_daemon(args, color=False) is None  # lint in process this once
    assert gone(old)
    new = wait_for(lambda: (control.ping(home) or {}).get("result", {}).get("pid"), 10, "a new daemon")
    assert new != old


def test_status_of_a_daemon_that_answers_with_an_error_says_it_runs(home: Path, tmp_path: Path) -> None:
    """Not "not running": the daemon is there, and the user needs its error, not a start hint."""
    server = Listener(home / "daemon.sock")

    def answer() -> None:
        conn = server.accept(timeout=10)
        if conn is None:
            return
        with conn:
            conn.settimeout(5)
            conn.recv(1 << 16)
            conn.sendall(protocol.encode(protocol.reply_error("0", "internal", "status failed: disk I/O error")))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        code, status = status_json(tmp_path)
    finally:
        thread.join(5)
        server.close()
    assert code == 1
    assert status == {"running": True, "state_dir": str(home), "error": "internal: status failed: disk I/O error"}
