"""A model worker that misbehaves on request, for the fault tests; it speaks the real wire.

It is the real worker loop (``tinyarms.models.worker.__main__.serve``) with a scripted engine in
place of llama.cpp, run the way the real one is (``TINYARMS_MODEL_WORKER`` names this file).
Each question takes the first line of the plan file (``FAKE_WORKER_PLAN``; none left: ``answer``)
and does what it says:

    answer            a valid answer built from the question's JSON schema ("yes" where asked);
                      scored (``score``): P(first choice) 0.9
    answer TEXT       TEXT as the answer
    score P           scored: P(first choice) = P
    sigill | sigsegv | sigkill | sigabrt   the worker kills itself with that signal
    exit N            the worker exits with status N
    hang              it never answers and ignores cancel (the parent must kill it)
    slow SECONDS      it works that long, keeping the deadline as the real engine does
    garbage           a line that is not JSON, instead of a reply
    half              half a reply, then it exits

``FAKE_WORKER_LOAD``: ``sigill`` dies while loading, ``fail`` reports a model it cannot load, a
number of seconds the load takes. ``FAKE_WORKER_LOG``: a line ``PID MODE`` per question.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: tests/ is not installed

from tinyarms.models.base import MODEL_MISSING, TIMEOUT, ModelUnavailable
from tinyarms.models.worker.__main__ import serve

SIGNALS = {"sigill": signal.SIGILL, "sigsegv": signal.SIGSEGV, "sigkill": signal.SIGKILL, "sigabrt": signal.SIGABRT}


def instance(schema: dict[str, Any]) -> Any:
    """A small value that follows ``schema`` (the subset tinyarms's answer schemas use)."""
    if "enum" in schema:
        return "yes" if "yes" in schema["enum"] else schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(props[name]) for name in schema.get("required", props)}
    if kind == "array":
        return []
    if kind == "string":
        return "scripted answer"
    if kind in ("number", "integer"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    return None


def take_step() -> str:
    """The plan's first line, removed from the file (under a lock: workers may be several)."""
    path = os.environ.get("FAKE_WORKER_PLAN")
    if not path or not os.path.exists(path):
        return "answer"
    with open(path, "r+") as plan:
        fcntl.flock(plan, fcntl.LOCK_EX)
        lines = plan.read().splitlines()
        plan.seek(0)
        plan.truncate()
        plan.write("".join(f"{line}\n" for line in lines[1:]))
    return lines[0].strip() if lines and lines[0].strip() else "answer"


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.cancelled = False

    def passed(self) -> bool:
        return self.cancelled or time.monotonic() >= self.at


class ScriptedEngine:
    version = "fake"

    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.name
        self.wire = args.wire
        load = os.environ.get("FAKE_WORKER_LOAD", "")
        started = time.monotonic()
        if load == "sigill":
            os.kill(os.getpid(), signal.SIGILL)
        if load == "fail":
            raise ModelUnavailable(MODEL_MISSING, f"llama.cpp could not load {args.model}: scripted", "fetch it again")
        if load:
            time.sleep(float(load))
        self.load_seconds = time.monotonic() - started

    @staticmethod
    def system_info() -> str:
        return "CPU : FAKE = 1 |"

    def complete(self, system: str, prompt: str, schema: dict[str, Any], max_tokens: int,
                 deadline: Deadline) -> dict[str, Any]:
        step = take_step()
        mode, _, arg = step.partition(" ")
        log = os.environ.get("FAKE_WORKER_LOG")
        if log:
            with open(log, "a") as out:
                out.write(f"{os.getpid()} {mode}\n")
        started = time.monotonic()
        if mode in SIGNALS:
            os.kill(os.getpid(), SIGNALS[mode])
            time.sleep(5)  # the signal is on its way
        if mode == "exit":
            os._exit(int(arg or 1))
        if mode == "hang":
            while True:
                time.sleep(1)
        if mode == "garbage":
            self.wire.write(b"this is not json\n")
            return self.complete(system, prompt, schema, max_tokens, deadline)  # then carries on
        if mode == "half":
            self.wire.write(b'{"id": 1, "ok": true, "res')
            os._exit(3)
        if mode == "slow":
            while time.monotonic() - started < float(arg):
                if deadline.passed():
                    raise ModelUnavailable(TIMEOUT, f"{self.name} did not answer in time while generating the answer")
                time.sleep(0.01)
        import json

        text = arg if mode == "answer" and arg else json.dumps(instance(schema))
        return {"text": text, "seconds": time.monotonic() - started, "prompt_tokens": len(prompt) // 4,
                "completion_tokens": len(text) // 4}

    def score(self, system: str, prompt: str, prefix: str, choices: list[str], deadline: Deadline) -> dict[str, Any]:
        """The plan's faults apply as for ``complete``; ``answer`` scores the first choice 0.9,
        ``score P`` scores it P (the others share the rest)."""
        import math

        step = take_step()
        mode, _, arg = step.partition(" ")
        if mode not in ("answer", "score"):
            _push_back(step)  # the faults are played by complete(), which reads the step again
            self.complete(system, prompt, {}, 1, deadline)
        p = float(arg) if mode == "score" else 0.9
        rest = (1 - p) / max(1, len(choices) - 1)
        log = os.environ.get("FAKE_WORKER_LOG")
        if log:
            with open(log, "a") as out:
                out.write(f"{os.getpid()} {mode}\n")
        return {"logprobs": {c: math.log(p if i == 0 else rest) for i, c in enumerate(choices)}, "seconds": 0.001,
                "prompt_eval_tokens": len(prompt) // 4}

    def close(self) -> None:
        pass


def _push_back(step: str) -> None:
    path = os.environ["FAKE_WORKER_PLAN"]
    with open(path, "r+") as plan:
        fcntl.flock(plan, fcntl.LOCK_EX)
        rest = plan.read()
        plan.seek(0)
        plan.truncate()
        plan.write(f"{step}\n{rest}")


def make(args: argparse.Namespace) -> ScriptedEngine:
    return ScriptedEngine(args)


if __name__ == "__main__":
    sys.exit(serve(make, deadline_type=Deadline))
