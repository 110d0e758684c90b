"""The OpenAI-compatible backend: the wire and its failures against a small scripted server
(``fake_openai``). Against a real ``llama_cpp.server``: ``test_openai_llama_server``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.models.fake_openai import EMPTY, MODEL, FakeOpenAI, Reply, completion, error
from tinyarms.config import OpenAIConfig
from tinyarms.models import answer, base, openai_wire
from tinyarms.models.base import MAX_ANSWER_BYTES
from tinyarms.models.openai import OpenAIBackend
from tinyarms.models.openai_wire import JSON_OBJECT, JSON_SCHEMA

SCHEMA = answer.schema(["magic-numbers"])

pytestmark = pytest.mark.usefixtures("fresh_shapes")


def with_backend(base_url: str, fn: Callable[[OpenAIBackend], Any], **config: Any) -> Any:
    async def run() -> Any:
        backend = OpenAIBackend(OpenAIConfig(base_url=base_url, **config))
        try:
            return await fn(backend)
        finally:
            await backend.close()
            assert backend._client.is_closed

    return asyncio.run(run())


def ask(base_url: str, model: str = MODEL, *, timeout: float = 5.0, max_tokens: int = 256,
        prompt: str = "  42| x = 42", **config: Any) -> base.Completion:
    return with_backend(base_url, lambda b: b.complete(
        model, "You review code.", prompt, SCHEMA, timeout=timeout, max_tokens=max_tokens), **config)


def refused(base_url: str, **kwargs: Any) -> tuple[base.ModelUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(base.ModelUnavailable) as caught:
        ask(base_url, **kwargs)
    return caught.value, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_port() -> str:
    """The base URL of a local port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.stop()


# -- the request ---------------------------------------------------------------------------------


def test_asks_in_openai_shape_first_and_keeps_it_when_accepted(server: FakeOpenAI) -> None:
    done = ask(server.base_url, max_tokens=300)

    assert done.text == EMPTY
    assert (done.model, done.prompt_tokens, done.completion_tokens) == (MODEL, 31, 7)
    [sent] = server.chats()
    assert sent.method == "POST"
    assert sent.body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "You review code."}, {"role": "user", "content": "  42| x = 42"}],
        "temperature": 0,
        "max_tokens": 300,
        "stream": False,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}},
    }
    assert openai_wire.remembered_shape(server.base_url) == JSON_SCHEMA

    ask(server.base_url + "/")  # the same server, spelled with a trailing slash
    assert server.shapes() == [JSON_SCHEMA, JSON_SCHEMA]


@pytest.mark.parametrize("rejection", [
    pytest.param(Reply(500, {"error": {"message": "1 validation error: ('body', 'response_format', 'type'): "
                                                  "Input should be 'text' or 'json_object'",
                                       "type": "internal_server_error", "param": None, "code": None}}),
                 id="llama_cpp.server-500"),
    pytest.param(Reply(500, b"Internal Server Error"), id="any-500"),
    pytest.param(error(400, "response_format.type 'json_schema' is not supported"), id="400-naming-it"),
    pytest.param(Reply(422, {"detail": [{"loc": ["body", "response_format", "type"], "msg": "unexpected value"}]}),
                 id="422-naming-it"),
])
def test_falls_back_to_json_object_once_and_remembers_it(server: FakeOpenAI, rejection: Reply) -> None:
    server.reject_json_schema(rejection)

    assert ask(server.base_url).text == EMPTY

    first, second = server.chats()
    assert first.body["response_format"]["type"] == JSON_SCHEMA
    assert second.body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert {k: v for k, v in second.body.items() if k != "response_format"} == \
        {k: v for k, v in first.body.items() if k != "response_format"}
    assert openai_wire.remembered_shape(server.base_url) == JSON_OBJECT

    ask(server.base_url)  # a new backend for the same server goes straight to the shape that works
    assert server.shapes() == [JSON_SCHEMA, JSON_OBJECT, JSON_OBJECT]


def test_no_fallback_for_errors_that_are_not_about_response_format(server: FakeOpenAI) -> None:
    server.reject_json_schema(error(400, "This model's maximum context length is 2048 tokens"))

    err, _ = refused(server.base_url)

    assert err.reason == base.BAD_ANSWER
    assert "400" in err.message and "maximum context length" in err.message
    assert server.shapes() == [JSON_SCHEMA]
    assert openai_wire.remembered_shape(server.base_url) is None


def test_when_both_shapes_fail_nothing_is_remembered(server: FakeOpenAI) -> None:
    server.chat = lambda body: Reply(500, {"error": {"message": "llama_decode failed"}})

    err, _ = refused(server.base_url)

    assert err.reason == base.BAD_ANSWER
    assert "500" in err.message and "llama_decode failed" in err.message
    assert err.hint == "see the server's log"
    assert server.shapes() == [JSON_SCHEMA, JSON_OBJECT]
    assert openai_wire.remembered_shape(server.base_url) is None


def test_a_remembered_shape_is_not_retried(server: FakeOpenAI) -> None:
    server.reject_json_schema(Reply(500, b"Internal Server Error"))
    ask(server.base_url)
    server.chat = lambda body: Reply(500, b"Internal Server Error")

    err, _ = refused(server.base_url)

    assert err.reason == base.BAD_ANSWER
    assert server.shapes() == [JSON_SCHEMA, JSON_OBJECT, JSON_OBJECT]


def test_api_key_from_the_named_environment_variable(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_TEST_KEY", "sk-local-123")
    ask(server.base_url, api_key_env="TINYARMS_TEST_KEY")
    monkeypatch.delenv("TINYARMS_TEST_KEY")
    ask(server.base_url, api_key_env="TINYARMS_TEST_KEY")

    with_key, without = server.chats()
    assert with_key.headers["Authorization"] == "Bearer sk-local-123"
    assert "Authorization" not in without.headers


def test_a_refused_key_says_which_variable_to_set(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYARMS_TEST_KEY", raising=False)
    server.chat = lambda body: error(401, "Incorrect API key provided")

    err, _ = refused(server.base_url, api_key_env="TINYARMS_TEST_KEY")

    assert err.reason == base.NO_BACKEND
    assert "401" in err.message and "Incorrect API key" in err.message
    assert "$TINYARMS_TEST_KEY" in (err.hint or "")
    assert server.shapes() == [JSON_SCHEMA]  # an auth failure is not a response_format problem


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    pytest.param(Reply(404, {"object": "error", "message": f"The model `{MODEL}` does not exist.",
                             "type": "NotFoundError", "param": None, "code": 404}), id="vllm"),
    pytest.param(error(404, f'model "{MODEL}" not found, try pulling it first'), id="ollama-v1"),
    pytest.param(error(404, f"The model '{MODEL}' does not exist", code="model_not_found"), id="openai"),
    pytest.param(error(400, "Model path does not exist: /models/x.gguf", code="model_not_found"),
                 id="llama_cpp.server"),
])
def test_a_model_the_server_does_not_have_is_missing(server: FakeOpenAI, reply: Reply) -> None:
    server.chat = lambda body: reply

    err, _ = refused(server.base_url)

    assert err.reason == base.MODEL_MISSING
    assert MODEL in err.message and server.base_url in err.message
    assert f"{server.base_url}/models" in (err.hint or "")
    assert server.shapes() == [JSON_SCHEMA]


def test_a_base_url_without_the_api_is_not_a_missing_model(server: FakeOpenAI) -> None:
    err, _ = refused(server.root)  # forgot the /v1: every path is a plain 404

    assert err.reason == base.SERVER_DOWN
    assert "/v1" in (err.hint or "")


@pytest.mark.parametrize("reply, says", [
    pytest.param(Reply(200, b"<html>It works!</html>"), "not JSON", id="not-json"),
    pytest.param(Reply(200, {"object": "chat.completion"}), "choices[0].message.content", id="no-choices"),
    pytest.param(Reply(200, {"choices": []}), "choices[0].message.content", id="empty-choices"),
    pytest.param(Reply(200, completion(content=None)), "NoneType", id="null-content"),
    pytest.param(Reply(200, completion(content={"violations": []})), "dict", id="object-content"),
])
def test_answers_not_shaped_like_openai_are_bad_answers(server: FakeOpenAI, reply: Reply, says: str) -> None:
    server.chat = lambda body: reply

    err, _ = refused(server.base_url)

    assert err.reason == base.BAD_ANSWER
    assert says in err.message
    assert openai_wire.remembered_shape(server.base_url) is None


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_an_answer_over_1_mib_is_refused(server: FakeOpenAI, length: bool) -> None:
    huge = json.dumps(completion(content="x" * (2 * MAX_ANSWER_BYTES))).encode()
    server.chat = lambda body: Reply(200, huge, length=length)

    err, seconds = refused(server.base_url)

    assert err.reason == base.BAD_ANSWER
    assert str(MAX_ANSWER_BYTES) in err.message
    assert seconds < 5


def test_a_server_that_does_not_answer_in_time_is_a_timeout(server: FakeOpenAI) -> None:
    server.hang.set()

    err, seconds = refused(server.base_url, timeout=0.3)

    assert err.reason == base.TIMEOUT
    assert "0.3 s" in err.message
    assert seconds < 2


def test_nothing_listening_is_server_down_at_once(closed_port: str) -> None:
    err, seconds = refused(closed_port, timeout=30)

    assert err.reason == base.SERVER_DOWN
    assert err.hint == f"is the server at {closed_port} running?"
    assert seconds < 1


def test_base_url_is_required() -> None:
    with pytest.raises(ValueError, match="base_url"):
        OpenAIBackend(OpenAIConfig.model_validate({}))


# -- digest and info -----------------------------------------------------------------------------


def digests(base_url: str, *models: str) -> list[str]:
    async def run(backend: OpenAIBackend) -> list[str]:
        return [await backend.digest(m) for m in models]

    return with_backend(base_url, run)


def model_list(*entries: dict[str, Any]) -> Callable[[], Reply]:
    return lambda: Reply(200, {"object": "list", "data": list(entries)})


def test_digest_follows_the_listed_id_created_and_owner(server: FakeOpenAI) -> None:
    entry = {"id": MODEL, "object": "model", "created": 1_700_000_000, "owned_by": "library"}
    server.models = model_list(entry)
    first, again = digests(server.base_url, MODEL, MODEL)
    server.models = model_list({**entry, "created": 1_710_000_000})
    [recreated] = digests(server.base_url, MODEL)
    server.models = model_list({**entry, "owned_by": "someone-else"})
    [reowned] = digests(server.base_url, MODEL)

    assert first.startswith("openai-sha256:")
    assert first == again
    assert len({first, recreated, reowned}) == 3


def test_digest_ignores_a_created_stamped_with_the_time_of_the_request(server: FakeOpenAI) -> None:
    # vLLM and llama-server put "now" in created: that must not make every digest new.
    calls = iter(range(100))
    server.models = lambda: Reply(200, {"object": "list", "data": [
        {"id": MODEL, "object": "model", "created": int(time.time()) + next(calls), "owned_by": "vllm"}]})

    first, second = digests(server.base_url, MODEL, MODEL)

    assert first == second


def test_digest_of_an_unlisted_model_is_by_name(server: FakeOpenAI) -> None:
    listed, unlisted, other = digests(server.base_url, MODEL, "qwen2.5-coder:7b", "llama3:8b")
    server.models = lambda: Reply(404, b"Not Found")  # a server without a model listing
    [no_listing] = digests(server.base_url, "qwen2.5-coder:7b")

    assert len({listed, unlisted, other}) == 3
    assert no_listing == unlisted


def test_digest_of_a_server_that_is_down_is_unavailable(closed_port: str) -> None:
    with pytest.raises(base.ModelUnavailable) as caught:
        digests(closed_port, MODEL)
    assert caught.value.reason == base.SERVER_DOWN


def test_info_lists_the_models(server: FakeOpenAI) -> None:
    server.models = model_list({"id": "a"}, {"id": "b", "owned_by": "x"}, {"no-id": True})

    info = with_backend(server.base_url, lambda b: b.info())

    assert (info.backend, info.reachable, info.present, info.loaded) == ("openai", True, ["a", "b"], [])
    assert server.base_url in info.detail


def test_info_of_a_server_that_is_down(closed_port: str) -> None:
    info = with_backend(closed_port, lambda b: b.info())

    assert not info.reachable
    assert closed_port in info.detail and "running?" in info.detail


def scored_completion(p_yes: float) -> dict[str, Any]:
    """A chat completion whose ``logprobs`` give the answer's yes/no token yes at ``p_yes``, as OpenAI's do."""
    import math

    reply = completion('{"answer":"yes"}')
    yes, no = math.log(p_yes), math.log(1 - p_yes)
    reply["choices"][0]["logprobs"] = {"content": [
        {"token": '{"', "logprob": -0.001, "bytes": None, "top_logprobs": [{"token": '{"', "logprob": -0.001}]},
        {"token": "answer", "logprob": -0.001, "bytes": None, "top_logprobs": []},
        {"token": '":"', "logprob": -0.01, "bytes": None, "top_logprobs": []},
        {"token": "yes", "logprob": yes, "bytes": None,
         "top_logprobs": [{"token": "yes", "logprob": yes}, {"token": "no", "logprob": no}]},
        {"token": '"}', "logprob": -0.001, "bytes": None, "top_logprobs": []},
    ]}
    return reply


def test_a_claim_is_scored_from_the_servers_logprobs(server: FakeOpenAI) -> None:
    server.chat = lambda body: Reply(200, scored_completion(0.7))
    scored = with_backend(server.base_url, lambda b: b.score(MODEL, "s", "is it?", '{"answer": "', ["yes", "no"],
                                                             timeout=5))
    assert abs(scored.probability("yes") - 0.7) < 1e-9 and scored.prompt_eval_tokens == 31
    sent = server.chats()[-1].body
    assert sent["logprobs"] is True and sent["top_logprobs"] >= 2 and sent["max_tokens"] <= 16


def test_a_server_without_logprobs_says_so(server: FakeOpenAI) -> None:
    server.chat = lambda body: Reply(200, completion('{"answer":"yes"}'))
    with pytest.raises(base.NoLogprobs):
        with_backend(server.base_url, lambda b: b.score(MODEL, "s", "p", '{"answer": "', ["yes", "no"], timeout=5))
