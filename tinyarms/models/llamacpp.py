"""The embedded backend: llama.cpp inside this process, through llama-cpp-python.

What it takes care of, because nothing else does:

- **One model per process.** The router makes a new backend object for every lint, so loaded
  models live in a process-wide pool, keyed by file: each is loaded on first use (under its lock,
  so two requests never load it twice) and freed after ``idle_unload`` seconds unused — by a timer,
  or by ``unload_idle()``. ``close()`` on a backend object therefore frees nothing.
- **Memory.** Before a model is loaded, free memory must cover the file (×1.3) plus the context;
  otherwise the request fails with ``NO_MEMORY`` rather than pushing the machine into swap in the
  middle of someone's commit.
- **Time.** Inference blocks, so it runs in a worker thread; a llama.cpp context is not
  thread-safe, so the thread holds the model's lock. The caller's ``timeout`` is a deadline for
  the whole thing — waiting for the lock, loading, reading the prompt, generating. The caller gets
  ``TIMEOUT`` at the deadline whatever the thread is doing, and the thread stops soon after too: a
  stopping criterion ends generation at the deadline, and an abort callback ends prompt evaluation
  (it is installed only while the prompt is read: llama.cpp calls it for every graph node, which
  costs too much per generated token). A thread that outlived its caller would otherwise hold the
  model for the next request, and ``asyncio.run`` waits for its worker threads before returning.

``llama_cpp`` is imported only when a model is first loaded: importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyarms.config import EmbeddedConfig
from tinyarms.models import registry
from tinyarms.models.base import (
    BAD_ANSWER,
    MODEL_MISSING,
    NO_MEMORY,
    NOT_INSTALLED,
    TIMEOUT,
    Completion,
    ModelInfo,
    ModelUnavailable,
)

INSTALL_HINT = "pip install 'tinyarms[embedded]'"
FILE_FACTOR = 1.3  # the weights, plus what llama.cpp allocates around them
CONTEXT_BASE = 64 << 20  # compute buffers that do not grow with the context
CONTEXT_PER_TOKEN = 48 << 10  # KV cache and scratch per context token (generous for 0.5B-1.5B models)
GRACE = 0.2  # seconds past the deadline before the caller stops waiting for the worker


def installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def memory_needed(file_size: int, n_ctx: int) -> int:
    return int(file_size * FILE_FACTOR) + CONTEXT_BASE + n_ctx * CONTEXT_PER_TOKEN


class _Deadline:
    """When a request must end. The worker thread checks it from inside llama.cpp."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.cancelled = False  # the caller stopped waiting
        self.hit = False  # generation was cut short by it

    def passed(self) -> bool:
        return self.cancelled or time.monotonic() >= self.at

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


@dataclass(eq=False)
class _Slot:
    """One model file and, while it is loaded, its ``Llama``. ``lock`` is held to load or use it."""

    path: Path
    name: str
    lock: threading.Lock
    llm: Any = None
    formatter: Any = None  # the model's chat template
    settings: tuple[int, int] | None = None  # (n_ctx, n_threads) it was loaded with
    idle_unload: float = 600.0
    last_used: float = 0.0
    loads: int = 0
    load_seconds: float = 0.0


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Path, _Slot] = {}
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0

    def slot(self, path: Path, name: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(path)
            if slot is None:
                slot = self._slots[path] = _Slot(path, name, threading.Lock())
            return slot

    def slots(self) -> list[_Slot]:
        with self._lock:
            return list(self._slots.values())

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Free every model unused for its ``idle_unload`` seconds; returns their names."""
        now = time.monotonic() if now is None else now
        freed = []
        for slot in self.slots():
            if slot.llm is None or now - slot.last_used < slot.idle_unload:
                continue
            if not slot.lock.acquire(blocking=False):
                continue  # in use right now: not idle
            try:
                if slot.llm is not None and now - slot.last_used >= slot.idle_unload:
                    _free(slot)
                    freed.append(slot.name)
            finally:
                slot.lock.release()
        return freed

    def unload_all(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for slot in self.slots():
            with slot.lock:
                _free(slot)

    def arm(self, delay: float) -> None:
        """Make sure the idle check runs within ``delay`` seconds."""
        due = time.monotonic() + delay
        with self._lock:
            if self._timer is not None and self._timer.is_alive() and self._timer_due <= due:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(delay, self._tick)
            self._timer.daemon = True
            self._timer_due = due
            self._timer.start()

    def _tick(self) -> None:
        with self._lock:
            self._timer = None
        self.unload_idle()
        now = time.monotonic()
        pending = [s.last_used + s.idle_unload - now for s in self.slots() if s.llm is not None]
        if pending:
            self.arm(max(min(pending), 0.05) + 0.05)


_pool = _Pool()
atexit.register(_pool.unload_all)  # free llama.cpp state before the interpreter tears modules down


def unload_all() -> None:
    """Free every loaded model in this process (daemon shutdown, tests)."""
    _pool.unload_all()


def _free(slot: _Slot) -> None:
    if slot.llm is not None:
        try:
            slot.llm.close()
        finally:
            slot.llm = slot.formatter = slot.settings = None


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        self.config = config or EmbeddedConfig()

    @property
    def threads(self) -> int:
        return self.config.threads or os.cpu_count() or 1

    # -- the Backend protocol --------------------------------------------------------------------

    async def complete(
        self, model: str, system: str, prompt: str, schema: dict[str, Any], *, timeout: float, max_tokens: int,
    ) -> Completion:
        deadline = _Deadline(timeout)
        slot = self._slot(model)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        work = asyncio.ensure_future(asyncio.to_thread(self._complete, slot, model, deadline, messages, schema, max_tokens))
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout + GRACE)
        except TimeoutError:
            raise _timeout(model, timeout) from None
        finally:
            if not work.done():
                deadline.cancelled = True  # the worker stops at its next check
                work.add_done_callback(_consume)

    async def digest(self, model: str) -> str:
        path = self._path(model)
        return registry.digest(model) if registry.get(model) else await asyncio.to_thread(registry.digest, path)

    async def info(self) -> ModelInfo:
        loaded = [s.name for s in _pool.slots() if s.llm is not None]
        present = [m.name for m in registry.MODELS.values() if registry.local_path(m.name) is not None]
        if not installed():
            return ModelInfo(self.name, False, f"llama-cpp-python is not installed: {INSTALL_HINT}", present, loaded)
        detail = f"llama.cpp in process, {self.threads} threads, n_ctx {self.config.n_ctx}"
        if not present:
            detail += f"; no model fetched (`tinyarms models fetch {next(iter(registry.MODELS))}`)"
        return ModelInfo(self.name, True, detail, present, loaded)

    async def close(self) -> None:
        """Nothing to free here: loaded models are shared by the process and freed when idle."""

    # -- the rest --------------------------------------------------------------------------------

    def unload_idle(self) -> list[str]:
        return _pool.unload_idle()

    def loads(self, model: str) -> int:
        """How many times this process has loaded ``model`` (tests, ``status``)."""
        slot = _pool.slot(self._path(model), model)
        return slot.loads

    def _path(self, model: str) -> Path:
        path = registry.local_path(model)
        if path is None:
            known = registry.get(model)
            if known is not None:
                state = registry.state(known)
                why = "has changed since it was verified" if state == "unverified" else "is not fetched"
                raise ModelUnavailable(MODEL_MISSING, f"model {model} {why}", f"tinyarms models fetch {model}")
            raise ModelUnavailable(
                MODEL_MISSING, f"unknown model {model!r}: neither a known model nor a .gguf file",
                f"use one of {', '.join(registry.MODELS)} (`tinyarms models fetch NAME`) or the path of a .gguf file",
            )
        return path.resolve()  # one Llama per file, however it is named

    def _slot(self, model: str) -> _Slot:
        if not installed():
            raise ModelUnavailable(NOT_INSTALLED, "the embedded backend (llama-cpp-python) is not installed", INSTALL_HINT)
        return _pool.slot(self._path(model), model)

    def _complete(self, slot: _Slot, model: str, deadline: _Deadline, messages: list[dict[str, str]],
                  schema: dict[str, Any], max_tokens: int) -> Completion:
        """In a worker thread: wait for the model, load it if needed, ask."""
        if not slot.lock.acquire(timeout=deadline.remaining()):
            raise _timeout(slot.name, None, "waiting for the model, busy with another question")
        try:
            loads = slot.loads
            self._load(slot)
            if deadline.passed():
                raise _timeout(slot.name, None, "loading the model")
            started = time.monotonic()
            result, timings = self._generate(slot, deadline, messages, schema, max_tokens)
            seconds = time.monotonic() - started
        finally:
            slot.last_used = time.monotonic()
            slot.lock.release()
            _pool.arm(slot.idle_unload)
        usage = result.get("usage") or {}
        first = timings.pop("first_token_at", None)
        return Completion(
            result["choices"][0]["text"] or "", model, seconds,
            usage.get("prompt_tokens"), usage.get("completion_tokens"),
            first_token_seconds=None if first is None else first - started,
            load_seconds=slot.load_seconds if slot.loads > loads else None, **timings,
        )

    async def load(self, model: str, timeout: float = 600.0) -> float | None:
        """Load ``model`` now; the seconds llama.cpp took, or None when it was already loaded."""
        slot = self._slot(model)

        def work() -> float | None:
            if not slot.lock.acquire(timeout=timeout):
                raise _timeout(slot.name, timeout, "waiting for the model, busy with another question")
            try:
                loads = slot.loads
                self._load(slot)
                return slot.load_seconds if slot.loads > loads else None
            finally:
                slot.last_used = time.monotonic()
                slot.lock.release()
                _pool.arm(slot.idle_unload)

        return await asyncio.to_thread(work)

    def _load(self, slot: _Slot) -> Any:
        """The slot's ``Llama``, loaded with this backend's settings. Called with ``slot.lock`` held."""
        settings = (self.config.n_ctx, self.threads)
        slot.idle_unload = self.config.idle_unload
        if slot.llm is not None and slot.settings == settings:
            return slot.llm
        _free(slot)  # loaded with other settings (the config changed)
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except ImportError as exc:
            raise ModelUnavailable(NOT_INSTALLED, f"llama-cpp-python cannot be imported: {exc}", INSTALL_HINT) from None
        size = slot.path.stat().st_size
        need = memory_needed(size, self.config.n_ctx)
        import psutil

        available = psutil.virtual_memory().available
        if available < need:
            raise ModelUnavailable(
                NO_MEMORY,
                f"not enough free memory to load {slot.name}: {_mib(available)} available, about {_mib(need)} needed",
                "close other programs, lower models.embedded.n_ctx, or use a smaller model",
            )
        started = time.monotonic()
        try:
            llm = llama_cpp.Llama(
                model_path=str(slot.path), n_ctx=self.config.n_ctx, n_threads=self.threads,
                n_threads_batch=self.threads, verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(
                MODEL_MISSING, f"llama.cpp could not load {slot.path}: {exc}",
                f"tinyarms models fetch {slot.name}" if registry.get(slot.name) else "check that the file is a GGUF model",
            ) from None
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ModelUnavailable(
                MODEL_MISSING, f"{slot.path} has no chat template: tinyarms needs an instruct model that carries one",
                f"use one of {', '.join(registry.MODELS)} (`tinyarms models fetch NAME`)",
            )
        slot.formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()), stop_token_ids=[llm.token_eos()],
        )
        slot.llm, slot.settings = llm, settings
        slot.loads += 1
        slot.load_seconds = time.monotonic() - started
        return llm

    def _generate(self, slot: _Slot, deadline: _Deadline, messages: list[dict[str, str]],
                  schema: dict[str, Any], max_tokens: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """What ``create_chat_completion(response_format=json_object+schema)`` does, plus deadlines.

        llama-cpp-python 0.3.36's ``create_chat_completion`` takes no stopping criteria, so the
        model's chat template is applied here (as llama-cpp-python applies it) and the prompt goes
        to ``create_completion`` with the JSON-schema grammar and a deadline criterion.
        """
        import llama_cpp
        from llama_cpp import llama_grammar

        llm = slot.llm
        ctx = llm._ctx.ctx  # no public setter for the abort callback

        log = logging.getLogger("llama-cpp-python")
        log_level = log.level

        @llama_cpp.ggml_abort_callback
        def abort(_data: Any) -> bool:
            if not deadline.passed():
                return False
            log.setLevel(logging.CRITICAL)  # llama.cpp logs the abort as an error: it is our doing
            return True

        reading = [True]
        timings: dict[str, Any] = {}

        def stop(_tokens: Any, _logits: Any) -> bool:
            if reading[0]:  # the first token is out: the prompt is read, stop paying for the callback
                reading[0] = False
                timings["first_token_at"] = time.monotonic()
                llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
            if deadline.passed():
                deadline.hit = True
                return True
            return False

        chat = slot.formatter(messages=messages)
        tokens = llm.tokenize(chat.prompt.encode("utf-8"), add_bos=not chat.added_special, special=True)
        try:
            grammar = llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except Exception:  # noqa: BLE001 - a schema the converter cannot take still gets JSON
            grammar = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
        llama_cpp.llama_set_abort_callback(ctx, abort, None)
        llama_cpp.llama_perf_context_reset(ctx)
        try:
            result = llm.create_completion(
                prompt=tokens, temperature=0.0, max_tokens=max_tokens, stop=chat.stop, grammar=grammar,
                repeat_penalty=1.0, stopping_criteria=llama_cpp.StoppingCriteriaList([stop, *(chat.stopping_criteria or [])]),
            )
        except RuntimeError as exc:
            if deadline.passed():  # llama_decode returned 2: aborted while reading the prompt
                raise _timeout(slot.name, None, "reading the prompt") from None
            raise ModelUnavailable(BAD_ANSWER, f"llama.cpp failed: {exc}") from None
        except ValueError as exc:  # e.g. the prompt does not fit the context
            raise ModelUnavailable(BAD_ANSWER, f"llama.cpp refused the question: {exc}",
                                   "raise models.embedded.n_ctx, or ask about fewer lines") from None
        finally:
            llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
            log.setLevel(log_level)
        if deadline.hit:
            raise _timeout(slot.name, None, "generating the answer")
        # llama.cpp's own counters: the prompt tokens it evaluated (a prefix kept from the last
        # question is not) and the tokens it generated after the first, with their times.
        perf = llama_cpp.llama_perf_context(ctx)
        timings.update(prompt_eval_tokens=perf.n_p_eval, prompt_eval_seconds=perf.t_p_eval_ms / 1000,
                       eval_tokens=perf.n_eval, eval_seconds=perf.t_eval_ms / 1000)
        return result, timings


def _timeout(model: str, seconds: float | None, doing: str | None = None) -> ModelUnavailable:
    when = f" while {doing}" if doing else ""
    limit = f" after {seconds:.1f} s" if seconds is not None else ""
    return ModelUnavailable(
        TIMEOUT, f"{model} did not answer in time{limit}{when}",
        "raise the budget (--budget), or use a smaller model; unfinished files are linted in the background",
    )


def _token_text(llm: Any, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a worker's late result or error so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB"
