"""The embedded backend: llama.cpp through llama-cpp-python, in a worker process per model.

This process never imports ``llama_cpp``: questions go to a worker (``tinyarms.models.worker``),
which loads the model once and answers one question at a time within its deadline. A worker that
dies or hangs costs the question in flight (``model-crashed``, ``model-timeout``), and the next
question gets a new one; see ``worker.client`` for restarts, back-off, the *broken* state, the
memory check before a load and ``keep_alive``. Workers are shared by the whole process (the
router makes a new backend object for every lint), so ``close()`` frees nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from tinyarms.config import EmbeddedConfig
from tinyarms.models import registry
from tinyarms.models.base import (
    MODEL_MISSING,
    NOT_INSTALLED,
    Completion,
    ModelInfo,
    ModelUnavailable,
    Scored,
    timed_out,
)
from tinyarms.models.worker import client
from tinyarms.models.worker.client import memory_needed  # noqa: F401 - memory_needed: recommend, tests
from tinyarms.models.worker.process import Spec

INSTALL_HINT = "pip install 'tinyarms[embedded]'"
DEFAULT_KEEP_ALIVE = 300.0  # seconds, as Ollama's
PATIENCE = 0.1  # seconds past the deadline for the worker's own "out of time" answer

_pool = client.pool
atexit.register(_pool.stop_all)  # workers go with the process that started them


def installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def unload_all() -> None:
    """Stop every model worker of this process (daemon shutdown, tests)."""
    _pool.stop_all()


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, config: EmbeddedConfig | None = None, keep_alive: float = DEFAULT_KEEP_ALIVE) -> None:
        self.config = config or EmbeddedConfig()
        self.keep_alive = self.config.idle_unload if self.config.idle_unload is not None else keep_alive

    @property
    def threads(self) -> int:
        return self.config.threads or os.cpu_count() or 1

    # -- the Backend protocol --------------------------------------------------------------------

    async def complete(
        self, model: str, system: str, prompt: str, schema: dict[str, Any], *, timeout: float, max_tokens: int,
    ) -> Completion:
        spec = self._spec(model)
        deadline = time.monotonic() + timeout
        result, loaded = await self._ask(spec, "complete", deadline, system=system, prompt=prompt, schema=schema,
                                         max_tokens=max_tokens)
        try:
            return Completion(
                str(result["text"]), model, float(result["seconds"]), result.get("prompt_tokens"),
                result.get("completion_tokens"), first_token_seconds=result.get("first_token_seconds"),
                prompt_eval_tokens=result.get("prompt_eval_tokens"),
                prompt_eval_seconds=result.get("prompt_eval_seconds"),
                eval_tokens=result.get("eval_tokens"), eval_seconds=result.get("eval_seconds"),
                load_seconds=float(loaded.get("load_seconds") or 0.0) if loaded else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            from tinyarms.models.base import BAD_ANSWER

            raise ModelUnavailable(BAD_ANSWER, f"the model worker's answer is malformed: {exc!r}") from None

    async def score(self, model: str, system: str, prompt: str, prefix: str, choices: list[str], *,
                    timeout: float) -> Scored:
        """Log probabilities of each choice's first token after ``prefix`` in the answer: a
        verdict as a probability, from one forward pass (no token generated)."""
        spec = self._spec(model)
        result, _ = await self._ask(spec, "score", time.monotonic() + timeout, system=system, prompt=prompt,
                                    prefix=prefix, choices=choices)
        try:
            logprobs = {str(k): float(v) for k, v in dict(result["logprobs"]).items()}
            if set(logprobs) != set(choices):
                raise ValueError(f"scored {sorted(logprobs)}, asked {sorted(choices)}")
            return Scored(logprobs, model, float(result["seconds"]), result.get("prompt_eval_tokens"))
        except (KeyError, TypeError, ValueError) as exc:
            from tinyarms.models.base import BAD_ANSWER

            raise ModelUnavailable(BAD_ANSWER, f"the model worker's scores are malformed: {exc!r}") from None

    async def digest(self, model: str) -> str:
        path = self._path(model)
        return registry.digest(model) if registry.get(model) else await asyncio.to_thread(registry.digest, path)

    async def info(self) -> ModelInfo:
        state = _pool.status()
        loaded = [w["model"] for w in state["workers"] if w["ready"]]
        present = [m.name for m in registry.MODELS.values() if registry.local_path(m.name) is not None]
        if not installed():
            return ModelInfo(self.name, False, f"llama-cpp-python is not installed: {INSTALL_HINT}", present, loaded)
        if state["broken"]:
            return ModelInfo(self.name, False, f"{state['broken']}; {state['last_crash']['hint']}", present, loaded)
        detail = f"llama.cpp in a worker process per model, {self.threads} threads, n_ctx {self.config.n_ctx}"
        if not present:
            detail += f"; no model fetched (`tinyarms models fetch {next(iter(registry.MODELS))}`)"
        return ModelInfo(self.name, True, detail, present, loaded)

    async def close(self) -> None:
        """Nothing to free here: workers are shared by the process and stop when idle."""

    # -- the rest --------------------------------------------------------------------------------

    async def load(self, model: str, timeout: float = 600.0) -> float | None:
        """Load ``model`` now; the seconds llama.cpp took, or None when it was already loaded."""
        spec = self._spec(model)
        _, loaded = await self._ask(spec, "load", time.monotonic() + timeout)
        return float(loaded.get("load_seconds") or 0.0) if loaded else None

    def unload_idle(self) -> list[str]:
        return _pool.stop_idle()

    def loads(self, model: str) -> int:
        """How many times this process has loaded ``model`` (tests, ``status``)."""
        return _pool.loads.get(self._path(model), 0)

    async def _ask(self, spec: Spec, op: str, deadline: float,
                   **fields: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The pool's answer, in a thread of its own; at the deadline the asker has its timeout at
        once, whatever the worker does. The thread then tells the worker to stop, kills it if it
        will not, and ends: it is no ``to_thread`` worker, which ``asyncio.run`` would wait for."""
        _pool.keep_alive = self.keep_alive
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[dict[str, Any], dict[str, Any] | None]] = loop.create_future()
        abandoned = threading.Event()

        def settle(result: Any, error: BaseException | None) -> None:
            if not future.done():
                future.set_exception(error) if error is not None else future.set_result(result)

        def work() -> None:
            try:
                result, error = _pool.ask(spec, op, deadline, abandoned, **fields), None
            except BaseException as exc:  # noqa: BLE001 - handed to the asker, whatever it is
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the asker's loop is gone: nobody to tell
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=work, name=f"model-{op}", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.monotonic()) + PATIENCE)
        except TimeoutError:
            raise timed_out(spec.name, "the model worker was still working at the deadline") from None
        finally:
            if not future.done():  # timed out or cancelled: the worker is told to stop now
                abandoned.set()
                future.add_done_callback(_consume)

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
        return path.resolve()  # one worker per file, however it is named

    def _spec(self, model: str) -> Spec:
        if not installed():
            raise ModelUnavailable(NOT_INSTALLED, "the embedded backend (llama-cpp-python) is not installed",
                                   INSTALL_HINT)
        return Spec(self._path(model), model, self.config.n_ctx, self.threads)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a worker thread's late result or error so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
