"""``tinyarms doctor``: can a model answer on this machine, and if not, what to do about it.

It loads the embedded fast model in a worker process of its own (so a build that dies on this
CPU kills the worker, not the doctor), asks it one real question twice (cold and warm), and
prints llama.cpp's CPU features, the load time, the seconds per question and the worker's RSS;
then which backend ``auto`` picks and why, and, when that is Ollama or an OpenAI-compatible
server, one question to it as well. A crash prints the signal and the exact command that fixes
it. Exit 0 when a model answered, 1 when none could; a pass also mends an embedded backend that
was marked broken after repeated crashes (the daemon sees it at its next question).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tinyarms import __version__
from tinyarms.paths import state_dir

QUESTION_TIMEOUT = 120.0
LOAD_TIMEOUT = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME", help="the embedded model to try (default: models.fast.embedded)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from tinyarms.config import find_root, load_config

    config = load_config(find_root(Path.cwd())).config.models
    out = Report()
    out.row("tinyarms", f"{__version__}, Python {platform.python_version()}, {platform.machine()}, "
            f"{_cpu_name()}")
    embedded_ok = _embedded(config, args.model, out)
    choice_ok = asyncio.run(_chosen(config, out, embedded_ok))
    ok = embedded_ok or choice_ok
    if embedded_ok:
        from tinyarms.models.worker import crashes

        (state_dir() / crashes.DOCTOR_MARK).touch()  # mends a backend marked broken
    out.row("result", "a model answers on this machine" if ok else "no model can answer on this machine; see above")
    return 0 if ok else 1


class Report:
    def row(self, label: str, text: str) -> None:
        print(f"{label:<13} {text}", flush=True)

    def fix(self, text: str) -> None:
        print(f"{'  fix':<13} {text}", flush=True)


def _embedded(config: Any, model: str | None, out: Report) -> bool:
    """The embedded backend, tried in a worker; True when it answered."""
    from tinyarms.models import buildflags, llamacpp, registry, select
    from tinyarms.models.base import ModelUnavailable
    from tinyarms.models.worker.client import Pool, mib
    from tinyarms.models.worker.process import Spec

    name = model or select.model_for(config, "embedded", 2)
    if not llamacpp.installed():
        out.row("embedded", "llama-cpp-python is not installed")
        out.fix(f'CMAKE_ARGS="{buildflags.cmake_args()}" pip install \'tinyarms[embedded]\'')
        return False
    out.row("embedded", f"llama-cpp-python {metadata.version('llama-cpp-python')}")
    path = registry.local_path(name)
    if path is None:
        out.row("model", f"{name} is not fetched")
        out.fix(f"tinyarms models fetch {name}")
        return False
    out.row("model", f"{name}: {path} ({mib(path.stat().st_size)})")
    backend = llamacpp.EmbeddedBackend(config.embedded)
    spec = Spec(path.resolve(), name, backend.config.n_ctx, backend.threads)
    pool = Pool()  # its own: a backend marked broken elsewhere is exactly what this re-tries
    try:
        started = time.monotonic()
        ready, _ = pool.ask(spec, "load", started + LOAD_TIMEOUT)
        out.row("llama.cpp", str(ready.get("system_info") or "?"))
        out.row("load", f"{ready.get('load_seconds', 0):.2f} s in worker pid {ready.get('pid')} "
                f"({time.monotonic() - started:.2f} s with the process start), {backend.threads} threads")
        times = []
        for _ in range(2):
            system, prompt, schema = _question()
            begun = time.monotonic()
            result, _ = pool.ask(spec, "complete", begun + QUESTION_TIMEOUT, system=system, prompt=prompt,
                                 schema=schema, max_tokens=64)
            times.append(time.monotonic() - begun)
        out.row("question", f"{times[0]:.2f} s cold, {times[1]:.2f} s warm; it answered {result['text'][:100]!s}")
        [worker] = pool.status()["workers"]
        free = _available()
        out.row("memory", f"worker RSS {mib(worker['rss'] or 0)}; {mib(free)} free")
        return True
    except ModelUnavailable as exc:
        out.row("FAILED", exc.message)
        if exc.hint:
            out.fix(exc.hint)
        return False
    finally:
        pool.stop_all()


async def _chosen(config: Any, out: Report, embedded_ok: bool) -> bool:
    """Which backend ``auto`` (or the configured one) picks, and, for a server, one question."""
    from tinyarms.models import select
    from tinyarms.models.base import ModelUnavailable

    choice = await select.choose(config, 2)
    if choice.backend is None:
        out.row("backend", f"none: {choice.why}")
        if choice.hint and not embedded_ok:
            out.fix(choice.hint)
        return False
    out.row("backend", f"{choice.name} ({config.backend} picks it: {choice.why})")
    if choice.name == "embedded":
        return embedded_ok
    model = select.model_for(config, choice.name or "", 2)
    system, prompt, schema = _question()
    try:
        done = await choice.backend.complete(model, system, prompt, schema, timeout=QUESTION_TIMEOUT, max_tokens=64)
    except ModelUnavailable as exc:
        out.row(choice.name or "backend", f"{model} did not answer: {exc.message}")
        if exc.hint:
            out.fix(exc.hint)
        return False
    finally:
        await choice.backend.close()
    out.row(choice.name or "backend", f"{model} answered in {done.seconds:.2f} s: {done.text[:100]}")
    return True


def _question() -> tuple[str, str, dict[str, Any]]:
    """A small real lint question: is this block a repetition of that one (the demo's kind)?"""
    from tinyarms.candidates import Candidate
    from tinyarms.models import answer, prompts

    code = ["def net(items):", "    total = 0", "    for item in items:", "        total += item.price",
            "    return total", "", "def gross(items):", "    total = 0", "    for item in items:",
            "        total += item.price * 1.2", "    return total"]
    # tinyarms: ignore[magic-numbers]  the line ranges of the sample above
    candidate = Candidate("simple-dry", ((1, 5), (7, 11)), (7, 11), "Does lines 7-11 repeat the logic of lines 1-5?")
    prompt = prompts.user_prompt("simple-dry", "Logic repeated within a file should be extracted.", [],
                                 "shop/totals.py", code, candidate)
    return prompts.SYSTEM, prompt, answer.schema(["simple-dry"])


def _available() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(model=None)))
