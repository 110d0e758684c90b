"""The Ollama backend against a fake ``ollama serve`` over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import httpx
import ollama
import pytest

from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401 - the fixture
from tinyarms import log
from tinyarms.config import OllamaConfig
from tinyarms.models import base
from tinyarms.models.answer import schema
from tinyarms.models.ollama import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    OllamaBackend,
    _cap_response,
)

MODEL = "qwen2.5-coder:3b"
SCHEMA = schema(["magic-numbers"])


def ask(host: str, model: str = MODEL, *, timeout: float = 5.0, max_tokens: int = 256,
        prompt: str = "  42| x = 42", keep_alive: str = "10m") -> base.Completion:
    async def run() -> base.Completion:
        backend = OllamaBackend(OllamaConfig(host=host, keep_alive=keep_alive, timeout=30))
        try:
            return await backend.complete(model, "You review code.", prompt, SCHEMA, timeout=timeout,
                                          max_tokens=max_tokens)
        finally:
            await backend.close()

    return asyncio.run(run())


def refused(host: str, **kwargs: Any) -> tuple[base.ModelUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(base.ModelUnavailable) as caught:
        ask(host, **kwargs)
    return caught.value, time.monotonic() - started


def with_backend(host: str, fn: Any) -> Any:
    async def run() -> Any:
        backend = OllamaBackend(OllamaConfig(host=host, timeout=30))
        try:
            return await fn(backend)
        finally:
            await backend.close()

    return asyncio.run(run())


@pytest.fixture(name="closed_port")
def closed_port_fixture() -> str:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_request_asks_for_the_schema_deterministically(ollama_server: FakeOllama) -> None:
    ollama_server.answer('{"violations": []}', prompt_eval_count=31, eval_count=7)

    done = ask(ollama_server.host, max_tokens=300, keep_alive="15m")

    sent = ollama_server.last("/api/chat").body
    assert sent["model"] == MODEL
    assert sent["messages"] == [
        {"role": "system", "content": "You review code."}, {"role": "user", "content": "  42| x = 42"},
    ]
    assert sent["format"] == SCHEMA
    assert sent["options"] == {"temperature": 0, "num_ctx": 4096, "num_predict": 300}
    assert sent["keep_alive"] == "15m"
    assert sent["stream"] is False
    assert done.text == '{"violations": []}'
    assert (done.model, done.prompt_tokens, done.completion_tokens) == (MODEL, 31, 7)
    assert 0 < done.seconds < 5


def test_answer_can_be_computed_from_the_request(ollama_server: FakeOllama) -> None:
    ollama_server.answer(lambda req: json.dumps({"echo": req.body["messages"][1]["content"]}))

    assert json.loads(ask(ollama_server.host, prompt="hello").text) == {"echo": "hello"}


def test_missing_model_names_the_pull_command(ollama_server: FakeOllama) -> None:
    error, _ = refused(ollama_server.host, model="qwen2.5-coder:14b")

    assert error.reason == base.MODEL_MISSING
    assert error.hint == "`ollama pull qwen2.5-coder:14b`"
    assert "qwen2.5-coder:14b" in error.message


def test_no_server_is_server_down_quickly(closed_port: str) -> None:
    error, seconds = refused(closed_port)

    assert error.reason == base.SERVER_DOWN
    assert "ollama serve" in (error.hint or "")
    assert seconds < 2


def test_hanging_server_times_out_on_time(ollama_server: FakeOllama) -> None:
    ollama_server.hang()

    error, seconds = refused(ollama_server.host, timeout=1.0)

    assert error.reason == base.TIMEOUT
    assert 1.0 <= seconds < 1.5


def test_slow_answer_within_the_timeout_arrives(ollama_server: FakeOllama) -> None:
    ollama_server.slow(0.3, '{"violations": []}')

    assert ask(ollama_server.host, timeout=2.0).text == '{"violations": []}'


def test_dropped_connection_is_reported_not_waited_on(ollama_server: FakeOllama) -> None:
    ollama_server.drop()

    error, seconds = refused(ollama_server.host, timeout=5.0)

    assert error.reason == base.SERVER_DOWN
    assert "mid-answer" in error.message
    assert seconds < 2


def test_non_json_answer_is_a_bad_answer(ollama_server: FakeOllama) -> None:
    ollama_server.garbage()

    error, _ = refused(ollama_server.host)

    assert error.reason == base.BAD_ANSWER


def test_huge_answer_is_refused(ollama_server: FakeOllama) -> None:
    ollama_server.huge()

    error, seconds = refused(ollama_server.host)

    assert error.reason == base.BAD_ANSWER
    assert str(MAX_ANSWER_BYTES) in error.message
    assert seconds < 3


def test_huge_content_length_is_refused_before_reading() -> None:
    response = httpx.Response(200, headers={"content-length": str(MAX_ANSWER_BYTES + 1)}, stream=httpx.ByteStream(b""))

    with pytest.raises(AnswerTooLarge):
        asyncio.run(_cap_response(response))


@pytest.mark.parametrize(("message", "reason"), [
    ("model requires more system memory (5.6 GiB) than is available (3.1 GiB)", base.NO_MEMORY),
    ("llama runner process has terminated: exit status 2", base.BAD_ANSWER),
])
def test_server_errors_carry_the_servers_text(ollama_server: FakeOllama, message: str, reason: str) -> None:
    ollama_server.error(500, message)

    error, _ = refused(ollama_server.host)

    assert error.reason == reason
    assert message in error.message


def test_probe(ollama_server: FakeOllama, closed_port: str) -> None:
    assert with_backend(ollama_server.host, lambda b: b.probe()) is True
    assert with_backend(closed_port, lambda b: b.probe()) is False


def test_probe_gives_up_on_a_server_that_never_answers() -> None:
    with socket.socket() as listener:  # the kernel accepts connections; nobody ever reads them
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()

        assert with_backend(host, lambda b: b.probe(timeout=0.3)) is None  # no answer: not "no Ollama"
        assert time.monotonic() - started < 1.0


def test_models_present_and_loaded(ollama_server: FakeOllama) -> None:
    ollama_server.add_model("qwen2.5-coder:7b", loaded=True)
    ask(ollama_server.host)  # loads the 3b, as Ollama does

    present, loaded = with_backend(ollama_server.host, lambda b: b.models())

    assert {"qwen2.5-coder:3b", "qwen2.5-coder:7b", "qwen2.5-coder:0.5b"} <= set(present)
    assert sorted(loaded) == ["qwen2.5-coder:3b", "qwen2.5-coder:7b"]


def test_digest_comes_from_tags(ollama_server: FakeOllama) -> None:
    ollama_server.add_model("mine", digest="ab" * 32)

    assert with_backend(ollama_server.host, lambda b: b.digest("mine")) == "ab" * 32
    assert with_backend(ollama_server.host, lambda b: b.digest("mine:latest")) == "ab" * 32


def test_digest_of_a_missing_model(ollama_server: FakeOllama) -> None:
    with pytest.raises(base.ModelUnavailable) as caught:
        with_backend(ollama_server.host, lambda b: b.digest("nope:1b"))
    assert caught.value.reason == base.MODEL_MISSING
    assert ollama_server.last("/api/show").body == {"model": "nope:1b"}


def test_info(ollama_server: FakeOllama, closed_port: str) -> None:
    up = with_backend(ollama_server.host, lambda b: b.info())
    down = with_backend(closed_port, lambda b: b.info())

    assert up.reachable and up.backend == "ollama" and MODEL in up.present
    assert not down.reachable and "ollama serve" in down.detail


def test_prompt_is_never_logged(ollama_server: FakeOllama, capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(2)
    try:
        ask(ollama_server.host, prompt="SECRET-CODE-1")
        ollama_server.error(500, "boom")
        refused(ollama_server.host, prompt="SECRET-CODE-2")
    finally:
        log.configure(0)
    err = capsys.readouterr().err
    assert "ollama.unavailable" in err
    assert "SECRET-CODE" not in err


# -- the fake itself speaks Ollama's wire format ---------------------------------------------


def test_fake_streams_ndjson_like_ollama(ollama_server: FakeOllama) -> None:
    ollama_server.answer("a streamed answer, in several pieces")

    async def run() -> list[Any]:
        client = ollama.AsyncClient(host=ollama_server.host, timeout=httpx.Timeout(5.0))
        try:
            return [part async for part in await client.generate(MODEL, "hi", stream=True)]
        finally:
            await client.close()

    parts = asyncio.run(run())
    assert "".join(p.response for p in parts) == "a streamed answer, in several pieces"
    assert [p.done for p in parts][-2:] == [False, True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count


def test_fake_answers_bad_requests_like_ollama(ollama_server: FakeOllama) -> None:
    with httpx.Client(base_url=ollama_server.host, timeout=5) as client:
        bad = client.post("/api/chat", content=b"{not json")
        missing = client.post("/api/chat", json={"model": "x:1b", "messages": []})
        show = client.post("/api/show", json={"model": "x:1b"})

    assert bad.status_code == 400 and "error" in bad.json()
    assert missing.status_code == 404
    assert missing.json() == {"error": 'model "x:1b" not found, try pulling it first'}
    assert show.status_code == 404 and show.json() == {"error": "model 'x:1b' not found"}


def test_fake_stop_releases_a_hanging_request() -> None:
    server = FakeOllama().start()
    server.hang()

    def hang() -> None:
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"{server.host}/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
                       timeout=10)

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2


def test_load_and_unload_answers_carry_no_timings_and_a_cold_load_is_timed(ollama_server: FakeOllama) -> None:
    """As ``server/routes.go`` answers them; a request that had to load reports it in load_duration."""
    ollama_server.speed(load=0.2)
    backend = OllamaBackend(OllamaConfig(host=ollama_server.host))

    async def go() -> tuple[float, float, Any]:
        try:
            cold = await backend.load(MODEL, 10, unload_first=True)
            warm = await backend.load(MODEL, 10)
            done = await backend.complete(MODEL, "s", "p", {"type": "object"}, timeout=10, max_tokens=16)
            return cold, warm, done
        finally:
            await backend.close()

    cold, warm, done = asyncio.run(go())
    assert cold >= 0.2 > warm
    unload, load = [json.loads(r.raw) for r in ollama_server.calls("/api/chat")[:2]]
    assert unload["keep_alive"] == 0 and unload["messages"] == [] and load["messages"] == []
    assert done.load_seconds is not None and done.load_seconds < 0.2  # already loaded
    assert done.first_token_seconds is None  # not streamed: no first token to time
    assert done.prompt_eval_tokens == done.prompt_tokens and done.prompt_eval_seconds is not None


def test_the_fake_answers_load_and_unload_like_ollama(ollama_server: FakeOllama) -> None:
    with httpx.Client(base_url=ollama_server.host) as http:
        unload = http.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": 0}).json()
        load = http.post("/api/chat", json={"model": MODEL, "messages": []}).json()
    assert unload["done_reason"] == "unload" and load["done_reason"] == "load"
    for answer in (unload, load):
        assert answer["message"] == {"role": "assistant", "content": ""} and answer["done"] is True
        assert not {"load_duration", "total_duration", "eval_count"} & set(answer)
    assert ollama_server.is_loaded(MODEL)


def test_a_claim_is_scored_from_ollamas_logprobs(ollama_server: FakeOllama) -> None:
    from tinyarms.models.base import choice_logprobs

    ollama_server.answer('{"answer": "yes"}').scores(0.7)
    scored = with_backend(ollama_server.host, lambda b: b.score(
        MODEL, "s", "is it?", '{"answer": "', ["yes", "no"], timeout=10))
    assert abs(scored.probability("yes") - 0.7) < 1e-9
    sent = ollama_server.last("/api/chat").body
    assert sent["logprobs"] is True and sent["top_logprobs"] >= 2 and sent["stream"] is False
    assert sent["format"]["properties"]["answer"]["enum"] == ["yes", "no"]
    # a choice split into pieces (`"yes`), and one missing from the alternatives (the least listed)
    assert choice_logprobs([('{"', -0.1, []), ('"yes', -0.2, [('"yes', -0.2), ('maybe', -3.0)])], ["yes", "no"]) == {
        "yes": -0.2, "no": -3.0}
    assert choice_logprobs([("{}", -0.1, [])], ["yes", "no"]) is None


def test_an_ollama_without_logprobs_says_so(ollama_server: FakeOllama) -> None:
    from tinyarms.models.base import NoLogprobs

    ollama_server.answer('{"answer": "yes"}').without_logprobs()
    with pytest.raises(NoLogprobs):
        with_backend(ollama_server.host, lambda b: b.score(MODEL, "s", "p", '{"answer": "', ["yes", "no"], timeout=10))
