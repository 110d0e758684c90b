"""Pathological files through the real lint path: ``tinyarms lint --no-daemon`` in this process,
and a real daemon over its socket. Each file gets findings at the right line and column, or a
``skipped`` entry that says why; none crashes, hangs, or silently disappears."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemons import lint_message, request, shared_fixture  # noqa: F401 - a fixture
from tinyarms import cli

DEPTH = 5000
MB = 1_000_000


def _one_mb_line(prefix: bytes, hit: bytes, filler: bytes, suffix: bytes) -> bytes:
    chunk = hit + filler
    return prefix + chunk * ((MB - len(prefix) - len(suffix)) // len(chunk)) + suffix


def _nested(opening: bytes, closing: bytes, inner: bytes, head: bytes = b"", tail: bytes = b"\n") -> bytes:
    return head + opening * DEPTH + inner + closing * DEPTH + tail


# name -> (file name, content, the rule its findings are, the value each finding is on)
FOUND: dict[str, tuple[str, bytes, str, str]] = {
    "1mb-line-python": ("long.py", _one_mb_line(b"x = [", b"4500, ", b"0, " * 30, b"]\n"), "magic-numbers", "4500"),
    "1mb-line-minified-js": (
        "long.min.js", _one_mb_line(b"const c=[", b'"#ff0000",', b"1," * 40, b"];\n"), "hardcoded-colors", "#ff0000"),
    "1mb-line-non-ascii": (
        "wide.py", _one_mb_line(b"x = [", "'ü漢🦀', 4500, ".encode(), "'é', ".encode() * 20, b"]\n"),
        "magic-numbers", "4500"),
    "nested-parens-python": ("deep.py", _nested(b"(", b")", b"4500", b"x = "), "magic-numbers", "4500"),
    "nested-brackets-python": ("deep_list.py", _nested(b"[", b"]", b"4500", b"x = "), "magic-numbers", "4500"),
    # A number at every level: each one climbs the same ancestors (30 s for 1,000 levels once)
    "nested-sum-python": ("sum.py", b"x = " + b"(4500 + " * 2000 + b"1" + b")" * 2000 + b"\n", "magic-numbers", "4500"),
    "nested-parens-js": ("deep.js", _nested(b"(", b")", b"4500", b"let x = ", b";\n"), "magic-numbers", "4500"),
    "nested-brackets-ts": ("deep.ts", _nested(b"[", b"]", b"4500", b"let x = ", b";\n"), "magic-numbers", "4500"),
    "nested-calls-tsx": ("deep.tsx", _nested(b"f(", b")", b"4500", b"", b";\n"), "magic-numbers", "4500"),
    "nested-rules-css": ("deep.css", _nested(b".a {", b"}", b"color: #ff0000;"), "hardcoded-colors", "#ff0000"),
    "nested-objects-js": ("deep_obj.js", _nested(b"{a:", b"}", b'"#ff0000"', b"let x = ", b";\n"),
                          "hardcoded-colors", "#ff0000"),
    "nul-after-8kb": ("late_nul.py", b"x = 4500\n" * 1000 + b"y = '\x00'\n", "magic-numbers", "4500"),
    "mixed-line-endings": ("endings.py", b"a = 1\nb = 4500\r\nc = 4500\rd = 4500\n\r\ne = 4500\r\n",
                           "magic-numbers", "4500"),
    "bom-python": ("bom.py", b"\xef\xbb\xbfx = 4500  # first line\ny = 4500\n", "magic-numbers", "4500"),
    "bom-css": ("bom.css", b"\xef\xbb\xbfa { color: #ff0000; }\n", "hardcoded-colors", "#ff0000"),
}
# name -> (file name, content, reason, a word the message must have)
SKIPPED: dict[str, tuple[str, bytes, str, str]] = {
    "nul-at-start": ("bin.py", b"\x00\x01x = 4500\n", "binary", "NUL"),
    "invalid-utf8": ("latin.py", b"x = 4500\nname = 'caf\xe9'\n", "encoding", "line 2"),
    "utf16-with-bom": ("utf16.py", "x = 4500\n".encode("utf-16"), "binary", "NUL"),
    "truncated-utf8": ("cut.py", b"x = '\xe6\xbc", "encoding", "line 1"),
    "over-the-cap": ("huge.py", b"x = 4500\n" * (200 * 1024), "too-large", "file is 1.8 MiB"),  # its real size
}


def expected_positions(raw: bytes, value: str) -> list[tuple[int, int]]:
    """(line, column) of every ``value``: lines end at "\\n" (a lone "\\r" is not a line break, as
    in git and SARIF's default newlineSequences); columns count characters; a BOM is no column."""
    text = raw.decode("utf-8").removeprefix("\ufeff")
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        start = line.find(value)
        while start != -1:
            out.append((number, start + 1))
            start = line.find(value, start + 1)
    return out


class Hung(Exception):
    """Not an OSError (as TimeoutError is), which the file reader would report as unreadable."""


@contextmanager
def _within(seconds: int) -> Iterator[None]:
    """A regression here hangs the lint (and CI with it) rather than failing: make it fail."""
    def expire(*_: object) -> None:
        raise Hung(f"the lint took over {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _lint_in_process(repo: Path, name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        with _within(120):
            code = cli.main(["lint", "--no-daemon", "--no-cache", "--format", "json", name])
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    result = json.loads(out)
    assert code in (0, 1)
    return result


def _lint_in_daemon(home: Path, repo: Path, name: str) -> dict[str, Any]:
    reply = request(home, lint_message(repo, name, no_cache=True), timeout=300)
    assert reply["ok"] is True, reply
    return reply["result"]


def _accounted_for(result: dict[str, Any], name: str) -> None:
    """Checked, or skipped with a reason: never neither (nothing silently dropped)."""
    skipped = [s for s in result["skipped"] if s["path"] == name and s["rule"] is None]
    assert result["stats"]["files"] + len(skipped) == 1, result["stats"]
    assert not [s for s in result["skipped"] if s["reason"] == "internal-error"], result["skipped"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pathological")
    for name, content, *_ in [*FOUND.values(), *SKIPPED.values()]:
        (folder / name).write_bytes(content)
    return folder


@dataclass
class Lint:
    folder: Path  # where the files are
    run: Callable[[str], dict[str, Any]]

    def __call__(self, name: str) -> dict[str, Any]:
        return self.run(name)


@pytest.fixture(params=["in-process", "daemon"])
def lint(request: pytest.FixtureRequest, files: Path, capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> Lint:
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "none")
    if request.param == "in-process":
        (files / ".git").mkdir(exist_ok=True)  # the folder is its own project root
        return Lint(files, lambda name: _lint_in_process(files, name, capsys))
    daemon = request.getfixturevalue("shared")
    cases = daemon.repo / "cases"
    if not cases.exists():
        cases.mkdir()
        for path in files.iterdir():
            if path.is_file():
                (cases / path.name).write_bytes(path.read_bytes())
    return Lint(cases, lambda name: _lint_in_daemon(daemon.home, daemon.repo, f"cases/{name}"))


@pytest.mark.parametrize("case", list(FOUND))
def test_pathological_file_gets_findings_at_the_right_places(lint: Lint, case: str) -> None:
    name, content, rule, value = FOUND[case]
    result = lint(name)

    shown = {f["path"] for f in result["findings"]}
    assert len(shown) <= 1
    _accounted_for(result, shown.pop() if shown else name)
    got = sorted((f["line"], f["column"]) for f in result["findings"] if f["rule"] == rule)
    assert got == expected_positions(content, value)
    assert all(f["end_column"] > f["column"] for f in result["findings"])


@pytest.mark.parametrize("case", list(SKIPPED))
def test_pathological_file_is_skipped_with_a_reason(lint: Lint, case: str) -> None:
    name, _, reason, word = SKIPPED[case]
    result = lint(name)

    assert result["findings"] == []
    [skip] = [s for s in result["skipped"] if s["rule"] is None]
    assert skip["path"].endswith(name) and skip["reason"] == reason and word in skip["message"], skip
    assert result["stats"]["files"] == 0


def test_a_fifo_is_skipped_not_waited_on(lint: Lint) -> None:
    if not (lint.folder / "pipe.py").exists():
        os.mkfifo(lint.folder / "pipe.py")
    started = time.monotonic()
    result = lint("pipe.py")

    [skip] = result["skipped"]
    assert skip["reason"] == "unreadable" and "not a regular file" in skip["message"]
    assert time.monotonic() - started < 60


def test_bom_does_not_shift_columns_or_hide_line_one(lint: Lint) -> None:
    with_bom = lint("bom.py")["findings"]

    assert [(f["line"], f["column"]) for f in with_bom] == [(1, 5), (2, 5)]


def test_a_file_rewritten_while_it_is_linted_gives_a_whole_answer(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor saving (truncate, then write) while tinyarms reads: every lint sees some version
    of the file, or a part of one, and reports it; none crashes or loses the file."""
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "none")
    (tmp_path / ".git").mkdir()
    target = tmp_path / "moving.py"
    versions = [b"x = 4500\n" * 2000, "y = 'é' * 4500\n".encode() * 3000, b"", b"z = '\xe6\xbc\xa2' + 4500\n" * 500]
    target.write_bytes(versions[0])
    stop = threading.Event()

    def rewrite() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            with open(target, "wb") as fh:  # truncates first, as most editors' plain save does
                for start in range(0, len(versions[i % 4]), 4096):
                    fh.write(versions[i % 4][start : start + 4096])
                    fh.flush()

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    outcomes = set()
    try:
        for _ in range(25):
            result = _lint_in_process(tmp_path, "moving.py", capsys)
            _accounted_for(result, "moving.py")
            for f in result["findings"]:
                assert f["rule"] in ("magic-numbers", "file-size") and f["line"] >= 1 and f["column"] >= 1
            skipped = [s["reason"] for s in result["skipped"] if s["rule"] is None]
            outcomes.add(skipped[0] if skipped else "findings" if result["findings"] else "clean")
    finally:
        stop.set()
        writer.join(5)
    # A read that cut a character in two is an encoding skip: reported, and linted next time.
    assert outcomes <= {"findings", "clean", "encoding"}, outcomes


def test_daemon_still_serves_after_the_pathological_files(shared: argparse.Namespace) -> None:
    from tests.daemon.daemons import assert_serving

    assert_serving(shared.home, shared.repo, shared.pid)
