"""Model workers: a crash, a hang or garbage costs one question, and the next gets a new worker.

These run the real worker loop with a scripted engine (``tests/models/fake_worker.py``); the
same faults through ``lint --no-daemon``, the daemon and the hook are in
``tests/daemon/test_worker_faults.py``, and the real model through its worker in
``test_llamacpp.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tinyarms.models.base import BAD_ANSWER, CRASHED, MODEL_MISSING, NO_MEMORY, TIMEOUT, ModelUnavailable
from tinyarms.models.worker import crashes, process, wire
from tinyarms.models.worker.client import Pool
from tinyarms.models.worker.process import Spec

FAKE = Path(__file__).with_name("fake_worker.py")
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]},
                                           "reason": {"type": "string"}}, "required": ["answer", "reason"]}


class Fake:
    """The scripted worker's plan and log, and a pool of this test's own."""

    def __init__(self, folder: Path) -> None:
        self.plan = folder / "plan"
        self.log = folder / "log"
        self.model = folder / "fake.gguf"
        self.model.write_bytes(b"GGUF" + bytes(1024))
        self.pool = Pool()
        self.spec = Spec(self.model, "fake:1b", 512, 1)

    def script(self, *steps: str) -> None:
        self.plan.write_text("".join(f"{s}\n" for s in steps))

    def ask(self, seconds: float = 10.0, **fields: object) -> dict:
        result, _ = self.pool.ask(self.spec, "complete", time.monotonic() + seconds, system="s", prompt="p",
                                  schema=SCHEMA, max_tokens=16, **fields)
        return result

    def answered_by(self) -> list[int]:
        return [int(line.split()[0]) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    f = Fake(tmp_path)
    monkeypatch.setenv(process.COMMAND_ENV, str(FAKE))
    monkeypatch.setenv("FAKE_WORKER_PLAN", str(f.plan))
    monkeypatch.setenv("FAKE_WORKER_LOG", str(f.log))
    yield f
    f.pool.stop_all()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_question_is_answered_through_the_wire(fake: Fake) -> None:
    result = fake.ask()
    assert result["text"] == '{"answer": "yes", "reason": "scripted answer"}'
    status = fake.pool.status()
    assert [w["questions"] for w in status["workers"]] == [1] and status["crashes"] == 0


@pytest.mark.parametrize(("step", "cause"), [
    ("sigill", "died of SIGILL (illegal instruction)"),
    ("sigsegv", "died of SIGSEGV (Segmentation fault)"),
    ("sigkill", "died of SIGKILL (Killed)"),
    ("sigabrt", "died of SIGABRT (Aborted)"),
    ("exit 3", "exited with status 3"),
])
def test_a_worker_that_dies_costs_one_question_and_the_next_gets_a_new_worker(fake: Fake, step: str,
                                                                            cause: str) -> None:
    fake.script("answer", step, "answer")
    fake.ask()
    with pytest.raises(ModelUnavailable) as info:
        fake.ask()
    assert info.value.reason == CRASHED
    assert cause in info.value.message and "while answering" in info.value.message
    assert info.value.hint
    first, crashed = fake.answered_by()
    assert first == crashed and gone(crashed)

    assert fake.ask()["text"]  # a new worker, at once: the first crash has no back-off
    assert fake.answered_by()[-1] != crashed
    status = fake.pool.status()
    assert status["crashes"] == 1 and status["failures_in_a_row"] == 0  # an answer resets the run
    assert status["last_crash"]["cause"] == cause and status["last_crash"]["pid"] == crashed


def test_the_hints_say_what_to_do_about_each_death(fake: Fake) -> None:
    from tinyarms.models import buildflags

    assert buildflags.reinstall_command() in crashes.crash_hint(-signal.SIGILL, fake.spec)
    assert "OOM killer" in crashes.crash_hint(-signal.SIGKILL, fake.spec)
    assert "tinyarms doctor" in crashes.crash_hint(-signal.SIGSEGV, fake.spec)
    # a -march=native build with AMX kernels died of SIGSEGV on this very machine's CPU
    amx = crashes.crash_hint(-signal.SIGSEGV, fake.spec, "CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 |")
    assert "AMX" in amx and buildflags.reinstall_command() in amx


def test_a_hung_worker_is_killed_and_the_question_is_a_timeout(fake: Fake) -> None:
    fake.script("hang", "answer")
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        fake.ask(seconds=0.5)
    took = time.monotonic() - started
    assert info.value.reason == TIMEOUT and "killed" in info.value.message
    assert took < 0.5 + process.GRACE + process.KILL_GRACE + 1.0
    [hung] = fake.answered_by()
    assert gone(hung)
    assert fake.ask()["text"] and fake.answered_by()[-1] != hung


def test_a_slow_answer_is_a_timeout_the_worker_keeps(fake: Fake) -> None:
    fake.script("slow 30", "answer")
    with pytest.raises(ModelUnavailable) as info:
        fake.ask(seconds=0.3)
    assert info.value.reason == TIMEOUT and "killed" not in info.value.message
    assert fake.ask()["text"]
    assert len(set(fake.answered_by())) == 1  # the worker kept the deadline itself: not restarted
    assert fake.pool.status()["crashes"] == 0


def test_an_abandoned_question_stops_the_worker_at_once(fake: Fake) -> None:
    fake.script("slow 30", "answer")
    abandoned = threading.Event()
    threading.Timer(0.3, abandoned.set).start()
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        fake.pool.ask(fake.spec, "complete", time.monotonic() + 60, abandoned, system="s", prompt="p",
                      schema=SCHEMA, max_tokens=4)
    assert info.value.reason == TIMEOUT
    assert time.monotonic() - started < 5  # not the 30 s of the answer, nor the 60 s deadline
    assert fake.ask()["text"]


@pytest.mark.parametrize(("step", "reason", "cause"), [
    ("garbage", BAD_ANSWER, "sent a malformed message"),
    ("half", CRASHED, "exited with status 3"),
])
def test_garbage_or_half_a_message_costs_the_question_and_the_worker(fake: Fake, step: str, reason: str,
                                                                     cause: str) -> None:
    fake.script(step, "answer")
    with pytest.raises(ModelUnavailable) as info:
        fake.ask()
    assert info.value.reason == reason and cause in info.value.message
    [bad] = fake.answered_by()
    assert gone(bad)
    assert fake.ask()["text"] and fake.answered_by()[-1] != bad


def test_three_failures_in_a_row_mark_the_backend_broken_until_doctor_passes(fake: Fake) -> None:
    fake.script("sigill", "sigill", "sigill", "answer")
    with pytest.raises(ModelUnavailable):
        fake.ask()
    with pytest.raises(ModelUnavailable):
        fake.ask()
    with pytest.raises(ModelUnavailable) as info:  # the second crash earns a back-off
        fake.ask()
    assert "restarting in" in info.value.message
    fake.pool._restart_at = 0.0  # as if the back-off had passed
    with pytest.raises(ModelUnavailable):
        fake.ask()
    broken = fake.pool.broken()
    assert broken is not None and "failed 3 times in a row" in broken.message and "SIGILL" in broken.message
    assert "CMAKE_ARGS" in (broken.hint or "")
    with pytest.raises(ModelUnavailable) as info:  # no new worker is started while broken
        fake.ask()
    assert "broken" in info.value.message and len(fake.answered_by()) == 3

    time.sleep(0.01)
    mark = crashes.state_dir() / crashes.DOCTOR_MARK
    mark.touch()  # `tinyarms doctor` passed
    assert fake.pool.broken() is None
    assert fake.ask()["text"]


def test_a_worker_killed_while_idle_is_a_crash_and_is_replaced(fake: Fake) -> None:
    fake.ask()
    [first] = fake.answered_by()
    os.kill(first, signal.SIGKILL)  # as the OOM killer would, between questions
    [(_, worker)] = fake.pool.items()
    worker.proc.wait(5)  # all its threads are gone (psutil says zombie earlier)
    assert fake.ask()["text"]
    assert fake.answered_by()[-1] != first
    assert fake.pool.status()["last_crash"]["cause"] == "died of SIGKILL (Killed)"


def test_an_idle_worker_exits_after_keep_alive(fake: Fake) -> None:
    fake.pool.keep_alive = 0.3
    fake.ask()
    [pid] = fake.answered_by()
    deadline = time.monotonic() + 5
    while fake.pool.status()["workers"]:
        assert time.monotonic() < deadline, "the idle worker was not stopped"
        time.sleep(0.05)
    assert gone(pid)
    assert fake.pool.status()["crashes"] == 0  # stopping an idle worker is no crash
    assert fake.ask()["text"]


def test_no_worker_starts_without_the_memory_for_the_model(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    Memory = namedtuple("Memory", "total available")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory(8 << 30, 50 << 20))
    with pytest.raises(ModelUnavailable) as info:
        fake.ask()
    assert info.value.reason == NO_MEMORY and "50 MiB available" in info.value.message
    assert "needed" in info.value.message and not fake.pool.status()["workers"]


def test_a_model_the_worker_cannot_load_is_reported_not_counted_as_a_crash(
        fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_LOAD", "fail")
    with pytest.raises(ModelUnavailable) as info:
        fake.ask()
    assert info.value.reason == MODEL_MISSING and "scripted" in info.value.message
    assert fake.pool.status() | {"keep_alive": None} == {
        "workers": [], "crashes": 0, "last_crash": None, "failures_in_a_row": 0, "broken": None, "keep_alive": None}


def test_a_worker_that_dies_while_loading_says_so(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_LOAD", "sigill")
    with pytest.raises(ModelUnavailable) as info:
        fake.ask()
    assert info.value.reason == CRASHED
    assert "SIGILL" in info.value.message and "while loading the model" in info.value.message


def test_a_slow_load_is_a_timeout_and_the_next_question_finds_the_model_loaded(
        fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_WORKER_LOAD", "1.0")
    with pytest.raises(ModelUnavailable) as info:
        fake.ask(seconds=0.2)
    assert info.value.reason == TIMEOUT and "loading the model" in info.value.message
    assert fake.ask()["text"]
    assert fake.pool.loads[fake.spec.path] == 1


def test_the_worker_wire_survives_native_code_printing_to_stdout(tmp_path: Path) -> None:
    """fd 1 of the worker is stderr: a stray print from native code cannot break a message."""
    code = ("import os, sys\n"
            "sys.argv[1:] = ['--model', 'x', '--name', 'n']\n"
            "from tinyarms.models.worker.__main__ import serve\n"
            "class E:\n"
            "    load_seconds = 0.0; version = 't'\n"
            "    def __init__(self, args): os.write(1, b'native noise\\n'); print('python noise')\n"
            "    def system_info(self): return ''\n"
            "    def close(self): pass\n"
            "sys.exit(serve(E))\n")
    done = subprocess.run([sys.executable, "-c", code], input=b"", capture_output=True, timeout=30, check=False)
    assert done.returncode == 0
    assert wire.decode(done.stdout.splitlines()[0])["event"] == "ready"
    assert b"native noise" in done.stderr and b"python noise" in done.stderr


def test_death_names_signals_and_statuses() -> None:
    assert crashes.death(-signal.SIGILL) == "SIGILL (illegal instruction)"
    assert crashes.death(-signal.SIGKILL) == "SIGKILL (Killed)"
    assert crashes.death(2) == "status 2"
