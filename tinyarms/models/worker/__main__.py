"""The worker process: ``python -m tinyarms.models.worker --model PATH --name NAME --n-ctx N --threads T``.

It loads the model, says ``ready`` (or ``failed``), then answers requests from stdin one at a
time until stdin closes or an ``exit`` arrives. A reader thread takes ``cancel`` messages while a
question is being answered, so the parent can stop one early. Replies go to a copy of the
original stdout; fd 1 itself is pointed at stderr, so whatever native code prints can never be
mistaken for a message.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from tinyarms.models.base import BAD_ANSWER, ModelUnavailable
from tinyarms.models.worker import wire


class Engine(Protocol):
    load_seconds: float
    version: str

    def system_info(self) -> str: ...

    def complete(self, system: str, prompt: str, schema: dict[str, Any], max_tokens: int,
                 deadline: Any) -> dict[str, Any]: ...

    def score(self, system: str, prompt: str, prefix: str, choices: list[str], deadline: Any) -> dict[str, Any]: ...

    def close(self) -> None: ...


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tinyarms.models.worker")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return parser.parse_args(argv)


def llama_engine(args: argparse.Namespace) -> Engine:
    from tinyarms.models.worker.engine import Engine as LlamaEngine

    return LlamaEngine(args.model, args.name, args.n_ctx, args.threads)


def _error(exc: ModelUnavailable) -> dict[str, Any]:
    return {"reason": exc.reason, "message": exc.message, "hint": exc.hint}


def serve(make_engine: Callable[[argparse.Namespace], Engine], argv: list[str] | None = None,
          deadline_type: Callable[[float], Any] | None = None) -> int:
    args = arguments(argv)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    args.wire = out  # a fake engine in the tests writes to it directly

    def send(message: dict[str, Any]) -> None:
        out.write(wire.encode(message))

    try:
        engine = make_engine(args)
    except ModelUnavailable as exc:
        send({"event": "failed", "error": _error(exc)})
        return 1
    send({"event": "ready", "pid": os.getpid(), "load_seconds": engine.load_seconds,
          "llama_cpp": engine.version, "system_info": engine.system_info()})

    if deadline_type is None:
        from tinyarms.models.worker.engine import Deadline

        deadline_type = Deadline
    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    lock = threading.Lock()
    # ids as the parent sent them: a message without one is answered with id None
    current: dict[int | None, Any] = {}  # the question being answered: id -> its deadline
    cancelled: set[int | None] = set()  # cancels that arrived before their question started

    def read() -> None:
        for line in sys.stdin.buffer:
            try:
                message = wire.decode(line)
            except wire.Garbled:
                continue  # the parent never sends this; nothing sensible to answer
            if message.get("op") == "cancel":
                with lock:
                    deadline = current.get(message.get("id"))
                    if deadline is not None:
                        deadline.cancelled = True
                    else:
                        cancelled.add(message.get("id"))
                continue
            requests.put(message)
        requests.put(None)

    threading.Thread(target=read, name="worker-reader", daemon=True).start()
    questions = 0
    while (request := requests.get()) is not None:
        rid, op = request.get("id"), request.get("op")
        if op == "exit":
            break
        if op == "ping":
            send({"id": rid, "ok": True, "result": {"questions": questions}})
            continue
        if op not in ("complete", "score"):
            error = {"reason": BAD_ANSWER, "message": f"unknown op {op!r}", "hint": None}
            send({"id": rid, "ok": False, "error": error})
            continue
        deadline = deadline_type(float(request.get("timeout", 60.0)))
        with lock:
            deadline.cancelled = rid in cancelled
            cancelled.discard(rid)
            current[rid] = deadline
        try:
            if op == "score":
                result = engine.score(request["system"], request["prompt"], request["prefix"],
                                      list(request["choices"]), deadline)
            else:
                result = engine.complete(request["system"], request["prompt"], request["schema"],
                                         int(request["max_tokens"]), deadline)
            send({"id": rid, "ok": True, "result": result})
        except ModelUnavailable as exc:
            send({"id": rid, "ok": False, "error": _error(exc)})
        finally:
            questions += 1
            with lock:
                current.pop(rid, None)
    engine.close()
    return 0


def main() -> int:
    return serve(llama_engine)


if __name__ == "__main__":
    sys.exit(main())
