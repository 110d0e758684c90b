"""Fuzzing the socket wire: ``tinyarms.protocol``'s framing and the daemon's request validation.

Any line a client sends gets a reply the wire can carry, either a result or an error of a
documented code (never ``internal``, which means a bug); and a real daemon fed fuzzed lines keeps
serving, unreplaced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from tests.daemon.daemons import assert_serving, exchange, shared_fixture  # noqa: F401 - a fixture
from tests.fuzz.strategies import (
    ERROR_CODES,
    JSON_SCALARS,
    JSON_VALUES,
    TEXT,
    deeply_nested,
    frames,
    typed_lint_requests,
)
from tests.servers import Listener
from tinyarms import protocol
from tinyarms.daemon.server import Daemon

REPO = "/nonexistent/fuzz-repo"  # strategies need a path before fixtures exist; the tests swap it

_FINITE = st.recursive(
    JSON_SCALARS.filter(lambda v: not (isinstance(v, float) and math.isnan(v))),  # NaN != NaN: no round trip
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


# -- framing ----------------------------------------------------------------------------------


@given(line=st.binary(max_size=300) | frames(REPO))
def test_any_line_decodes_to_an_object_or_a_bad_request(line: bytes) -> None:
    try:
        message = protocol.decode(line)
    except protocol.ProtocolError as exc:
        assert exc.code == protocol.BAD_REQUEST and exc.message
    else:
        assert isinstance(message, dict)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_too_deeply_is_a_bad_request(depth: int) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.decode(deeply_nested(depth))
    assert caught.value.code == protocol.BAD_REQUEST and "nested" in caught.value.message


@given(message=st.dictionaries(TEXT, _FINITE, max_size=5))
def test_any_message_encodes_to_one_utf8_line_that_decodes_back(message: dict[str, Any]) -> None:
    data = protocol.encode(message)

    assert data.endswith(b"\n") and data.count(b"\n") == 1
    data.decode("utf-8")  # strict: lone surrogates crossed as escapes, not as invalid bytes
    assert protocol.decode(data) == message


def test_oversized_message_is_refused_by_encode() -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.encode({"blob": "x" * protocol.MAX_MESSAGE})
    assert caught.value.code == protocol.TOO_LARGE


@pytest.fixture(scope="module")
def garbage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[bytes]]]:
    """A Unix socket that answers each request with whatever bytes the test put in ``replies``."""
    path = tmp_path_factory.mktemp("garbage") / "s.sock"
    replies: list[bytes] = []
    server = Listener(path)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            conn = server.accept(timeout=0.5, stopping=stop)
            if conn is None:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(1 << 16)
                    if replies:  # a client asking again after the scripted replies gets a hang-up
                        conn.sendall(replies.pop())
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, replies
    stop.set()
    server.close()
    thread.join(2)


@settings(max_examples=25)
@given(reply=st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode() + b"\n")
       | st.integers(0, 3).map(lambda n: b"x" * n))
def test_client_reading_any_reply_gets_a_message_or_a_documented_error(
        garbage_server: tuple[Path, list[bytes]], reply: bytes) -> None:
    path, replies = garbage_server
    replies.append(reply)
    with protocol.Connection(path, timeout=5) as conn:
        try:
            message = conn.request({"op": "ping"})
        except protocol.ProtocolError as exc:
            assert exc.code == protocol.BAD_REQUEST
        except ConnectionError:
            assert b"\n" not in reply  # the server hung up before a whole line
        else:
            assert isinstance(message, dict)


# -- the daemon's validation, in process ------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[argparse.Namespace]:
    """A real ``Daemon`` object, not serving: its ``_answer`` is what every request line meets."""
    from tests.daemon.daemons import make_repo

    home = tmp_path_factory.mktemp("fuzz-home")
    repo = make_repo(tmp_path_factory.mktemp("fuzz") / "repo")
    (repo / "sub").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYARMS_HOME", str(home))
        mp.setenv("TINYARMS_CONFIG", str(home / "no-user-config.yaml"))
        mp.setenv("TINYARMS_MODELS__BACKEND", "none")
        d = Daemon(home, None, 1.0)
        try:
            yield argparse.Namespace(daemon=d, repo=repo)
        finally:
            d.scans.stop()
            d.executor.shutdown(wait=True)
            d.store.close()


def _check_reply(reply: dict[str, Any]) -> None:
    protocol.encode(reply)  # what the daemon replies must be sendable
    assert reply["v"] == protocol.PROTOCOL
    if reply["ok"]:
        assert "result" in reply
    else:
        assert reply["error"]["code"] in ERROR_CODES, reply["error"]
        assert reply["error"]["message"]


def _answer(daemon: argparse.Namespace, line: bytes) -> dict[str, Any]:
    reply, _ = asyncio.run(daemon.daemon._answer(line))
    _check_reply(reply)
    return reply


@settings(max_examples=100)
@given(data=st.data())
def test_any_request_line_gets_a_sendable_reply_of_a_documented_kind(
        daemon: argparse.Namespace, data: st.DataObject) -> None:
    reply = _answer(daemon, data.draw(frames(str(daemon.repo))))
    event("ok" if reply["ok"] else reply["error"]["code"])


@settings(max_examples=100)
@given(data=st.data())
def test_well_typed_lint_requests_with_hostile_values_get_results_or_documented_errors(
        daemon: argparse.Namespace, data: st.DataObject) -> None:
    request = data.draw(typed_lint_requests(str(daemon.repo)))
    reply = _answer(daemon, json.dumps(request).encode() + b"\n")
    event("ok" if reply["ok"] else reply["error"]["code"])
    if reply["ok"]:
        result = reply["result"]
        assert result["exit_code"] in (0, 1)
        assert isinstance(result["findings"], list) and isinstance(result["skipped"], list)
        if request.get("format"):
            assert isinstance(result["output"], str)


def test_lint_of_a_file_whose_name_is_not_utf8_gets_a_reply(daemon: argparse.Namespace) -> None:
    name = b"b\xffd.ts"
    (daemon.repo / name.decode("utf-8", "surrogateescape")).write_text('const c = "#00ff00";\n')
    line = protocol.encode({"v": 1, "op": "lint", "cwd": str(daemon.repo), "paths": [],
                            "env": {"TINYARMS_MODELS__BACKEND": "none"}})
    reply = _answer(daemon, line)

    paths = {f["path"] for f in protocol.decode(protocol.encode(reply))["result"]["findings"]}
    assert "b\udcffd.ts" in paths  # the name the client's os.fsencode turns back into the file's


# -- a real daemon over its socket ------------------------------------------------------------


@settings(max_examples=30)
@given(data=st.data())
def test_real_daemon_answers_fuzzed_lines_and_keeps_serving(shared: argparse.Namespace,
                                                            data: st.DataObject) -> None:
    line = data.draw(frames(str(shared.repo)))
    assume(b"shutdown" not in line)
    reply, _ = exchange(shared.home, line, timeout=30)

    assert reply is not None, "a whole line got no reply"
    _check_reply(reply)
    ping, _ = exchange(shared.home, protocol.encode({"v": 1, "op": "ping"}))
    assert ping is not None and ping["result"]["pid"] == shared.pid


def test_real_daemon_serves_after_the_fuzzing(shared: argparse.Namespace) -> None:
    assert_serving(shared.home, shared.repo, shared.pid)
