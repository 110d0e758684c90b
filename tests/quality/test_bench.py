"""``tinyarms.quality.bench``: the fixed workload, judging answers, the figures, against the fake Ollama
(which reports timings as the real server does) and once against the real embedded model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.models.ollama_server import FakeOllama, Request, ollama_server_fixture  # noqa: F401
from tests.models.test_llamacpp import MODEL, cached_model_fixture, fetched_fixture  # noqa: F401
from tinyarms.config import OllamaConfig
from tinyarms.levels import model as model_level
from tinyarms.levels import questions as questions_level
from tinyarms.models import answer, prompts
from tinyarms.models.ollama import OllamaBackend
from tinyarms.quality import bench
from tinyarms.ruleset import load_settings
from tinyarms.source import make_source

FAST = "qwen2.5-coder:3b"
DEEP = "qwen2.5-coder:7b"


def shown(request: Request) -> list[int]:
    """The line numbers a prompt shows (``  42| code``), in order."""
    text = request.body["messages"][-1]["content"]
    return [int(row.split("|")[0]) for row in text.splitlines() if "|" in row and row.split("|")[0].strip().isdigit()]


def flag_last_line(request: Request) -> str:
    """An answer that flags the last line the question shows: a candidate's second block."""
    line = shown(request)[-1]
    return json.dumps({"violations": [{"rule": bench.RULE, "line": line, "message": "repeated",
                                       "suggestion": "extract a function", "confidence": 0.9}]})


def run_bench(backend: Any, models: list[str], runs: int, **kw: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        try:
            return await bench.bench(backend, models, runs, **kw)
        finally:
            await backend.close()

    return asyncio.run(go())


# -- the workload ------------------------------------------------------------------------------


def test_the_workload_is_the_routers_own_questions_about_50_100_and_300_lines() -> None:
    questions = bench.workload()
    assert [bench.source(n).count("\n") for n in bench.SIZES] == [50, 100, 300]
    by_size = {n: [q for q in questions if q.size == n] for n in bench.SIZES}
    assert [len(by_size[n]) for n in bench.SIZES] == [1, 2, 4]  # clone pairs the finder proposes
    assert bench.workload() == questions  # fixed: every run and every model gets the same

    # The same prompt the model level builds for the same file and rule.
    settings = load_settings(None)
    rule = next(r for r in settings.ruleset.rules if r.id == bench.RULE)
    src = make_source(bench.SOURCE_PATH, bench.SOURCE_PATH, bench.source(100).encode())
    asked = [questions_level.Question(src, rule, c) for c in questions_level.candidates(src, rule, 8, None)]
    questions_level.prepare(asked, "m", "d", 2)
    assert [q.prompt for q in by_size[100]] == [q.prompt for q in asked]
    first = by_size[50][0]
    assert "Rule simple-dry:" in first.prompt and "23| def total_eu(items):" in first.prompt
    assert first.schema == answer.schema([bench.RULE]) and first.max_tokens == model_level.MAX_TOKENS
    assert first.shown == frozenset(prompts.shown_lines(asked[1].candidate))


def test_sizes_beyond_the_shipped_source_are_refused() -> None:
    with pytest.raises(ValueError, match="has 300 lines"):
        bench.source(301)


# -- judging answers ---------------------------------------------------------------------------

QUESTION = bench.Question(50, "p", answer.schema([bench.RULE]), frozenset(range(32, 39)), 256)
GOOD = {"rule": bench.RULE, "line": 32, "message": "m", "suggestion": "s", "confidence": 0.5}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"violations": []}', (True, True, [])),
    (json.dumps({"violations": [GOOD]}), (True, True, [32])),
    (json.dumps({"violations": [{**GOOD, "line": 3}]}), (True, True, [])),  # valid, but not a shown line: dropped
    (json.dumps({"violations": [{**GOOD, "rule": "other"}]}), (True, False, [])),  # enum
    (json.dumps({"violations": [GOOD] * 5}), (True, False, [32])),  # maxItems 4
    (json.dumps({"violations": [{**GOOD, "message": "x" * 161}]}), (True, False, [32])),  # maxLength
    (json.dumps({"violations": [{k: v for k, v in GOOD.items() if k != "suggestion"}]}), (True, False, [32])),
    ('{"findings": []}', (True, False, None)),
    ('{"violations": [', (False, False, None)),
    ("Sure! Here is the JSON", (False, False, None)),
])
def test_answers_are_counted_as_json_and_as_schema_valid_separately(text: str, expected: tuple) -> None:
    assert bench.judge(text, QUESTION) == expected


@pytest.mark.parametrize("data", [
    {"violations": []},
    {"violations": [GOOD]},
    {"violations": [{**GOOD, "line": 3.0}]},
    {"violations": [{**GOOD, "line": 0}]},
    {"violations": [{**GOOD, "line": True}]},
    {"violations": [{**GOOD, "confidence": 1.5}]},
    {"violations": [{**GOOD, "confidence": "high"}]},
    {"violations": [{**GOOD, "rule": "magic-numbers"}]},
    {"violations": [GOOD] * 4},
    {"violations": [GOOD] * 5},
    {"violations": {}},
    {"violations": [{**GOOD, "message": None}]},
    {"violations": [], "extra": 1},
    [],
    "violations",
])
def test_the_strict_schema_check_agrees_with_jsonschema(data: Any) -> None:
    schema = answer.schema([bench.RULE])
    assert (answer.schema_error(data, schema) is None) == jsonschema.Draft202012Validator(schema).is_valid(data)


# -- figures -----------------------------------------------------------------------------------


def test_median_and_spread() -> None:
    assert bench.stat([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert bench.stat([]) is None


def test_agreement_counts_verdicts_identical_answers_and_overlapping_lines() -> None:
    a = [[32], [], [67, 70], None, [5]]
    b = [[32], [4], [67], [1], []]
    got = bench.agreement(a, b)
    assert got["questions"] == 4 and got["unanswered"] == 1
    assert got["same_verdict"] == 2  # q1 both flag, q3 both flag
    assert got["identical"] == 1  # q1 only
    assert got["flagged"] == [4, 3] and got["overlap"] == 2  # (question, line) pairs
    assert got["overlap_share"] == pytest.approx(2 / 5)
    assert bench.agreement([[]], [[]])["overlap_share"] is None


# -- against the fake Ollama -------------------------------------------------------------------


def test_ollama_figures_come_from_its_timings_and_a_streamed_first_token(ollama_server: FakeOllama) -> None:
    ollama_server.speed(load=0.3, prompt_tps=4000.0, eval_tps=400.0)
    ollama_server.answer(flag_last_line)
    backend = OllamaBackend(OllamaConfig(host=ollama_server.host), stream=True)
    doc = run_bench(backend, [FAST], runs=2, sizes=(50, 100))

    entry = doc["models"][0]
    assert entry["model"] == FAST and entry["backend"] == "ollama" and entry["runs"] == 2
    assert entry["questions"] == {"50": 1, "100": 2} and entry["answers"] == 6
    assert entry["json_valid"] == entry["schema_valid"] == 6 and entry["errors"] == {}
    # Each run unloads the model and times a cold load (the fake takes 0.3 s).
    unloads = [r for r in ollama_server.calls("/api/chat") if not r.body.get("messages")
               and r.body.get("keep_alive") == 0]
    assert len(unloads) == 2
    assert 0.3 <= entry["load_s"]["min"] <= entry["load_s"]["max"] < 5.0
    # Rates are the server's counts over its durations, not the client's guess.
    assert entry["prompt_tps"]["median"] == pytest.approx(4000.0, rel=0.01)
    assert entry["gen_tps"]["median"] == pytest.approx(400.0, rel=0.01)
    # The first streamed piece comes after the prompt is read and before the answer ends.
    chats = [r for r in ollama_server.calls("/api/chat") if r.body.get("messages")]
    assert all(r.body["stream"] is True for r in chats) and len(chats) == 6
    first, question = entry["first_token_s"], entry["question_s"]
    assert first["min"] > 0 and first["median"] < question["median"] < 5.0
    assert entry["peak_rss_bytes"] is None  # the model lives in the server's process
    assert doc["machine"]["load_avg_1m"] >= 0 and doc["machine"]["ram_bytes"] > 0  # how busy the machine was
    # The verdicts are the lines flagged, as validated: the last shown line of each question.
    assert entry["verdicts"] == [[max(q.shown)] for q in bench.workload((50, 100))]
    assert set(entry["file_s"]) == {"50", "100"} and all(s["n"] == 2 for s in entry["file_s"].values())


def test_bad_answers_are_counted_not_fatal(ollama_server: FakeOllama) -> None:
    answers = iter(['{"violations": [', json.dumps({"violations": [{**GOOD, "rule": "nope"}]}), '{"violations": []}'])
    ollama_server.answer(lambda _req: next(answers))
    backend = OllamaBackend(OllamaConfig(host=ollama_server.host), stream=True)
    doc = run_bench(backend, [FAST], runs=1, sizes=(100, 50))
    entry = doc["models"][0]
    assert (entry["answers"], entry["json_valid"], entry["schema_valid"]) == (3, 2, 1)
    assert entry["verdicts"] == [None, [], []]


def test_a_missing_model_is_reported_with_its_fix_and_the_others_still_run(ollama_server: FakeOllama) -> None:
    backend = OllamaBackend(OllamaConfig(host=ollama_server.host), stream=True)
    doc = run_bench(backend, ["qwen2.5-coder:99b", FAST], runs=1, sizes=(50,))
    missing, ok = doc["models"]
    assert missing["reason"] == "model-missing" and "ollama pull qwen2.5-coder:99b" in missing["hint"]
    assert ok["answers"] == 1 and "error" not in ok
    assert doc["compare"] is None  # only one of the two could be measured


def test_compare_puts_the_agreement_of_two_models_next_to_their_figures(ollama_server: FakeOllama) -> None:
    # The deep model flags what the fast one flags on the 100-line file, and more on the 300-line one.
    def by_model(request: Request) -> str:
        lines = shown(request)
        if request.body["model"] == FAST and lines[-1] > 100:
            return '{"violations": []}'
        return flag_last_line(request)

    ollama_server.answer(by_model)
    backend = OllamaBackend(OllamaConfig(host=ollama_server.host), stream=True)
    doc = run_bench(backend, [FAST, DEEP], runs=1)
    c = doc["compare"]
    questions = bench.workload()
    late = sum(1 for q in questions if max(q.shown) > 100)
    total = len(questions)
    assert c["models"] == [FAST, DEEP] and c["questions"] == total == 7
    assert c["same_verdict"] == c["identical"] == total - late and late > 0
    assert c["flagged"] == [total - late, total] and c["overlap"] == total - late
    assert c["overlap_share"] == pytest.approx((total - late) / total)


# -- kept results ------------------------------------------------------------------------------


def test_results_are_kept_and_the_newest_figures_of_each_model_win(tmp_path: Path) -> None:
    def doc(at: str, model: str, question_s: float) -> dict[str, Any]:
        return {"version": bench.FORMAT_VERSION, "at": at, "backend": "embedded", "machine": {}, "models": [
            {"model": model, "backend": "embedded", "question_s": {"median": question_s}},
            {"model": "broken", "error": "no"}]}

    bench.save(doc("2026-01-01T10:00:00+00:00", "a", 1.0), tmp_path)
    bench.save(doc("2026-01-02T10:00:00+00:00", "b", 2.0), tmp_path)
    path = bench.save(doc("2026-01-03T10:00:00+00:00", "a", 3.0), tmp_path)
    (tmp_path / "junk.json").write_text("{not json")
    assert path.name == "2026-01-03T100000Z.json"
    assert bench.last(tmp_path)["at"] == "2026-01-03T10:00:00+00:00"
    latest = bench.latest_figures(tmp_path)
    assert {k: v["question_s"]["median"] for k, v in latest.items()} == {"a": 3.0, "b": 2.0}
    assert bench.last(tmp_path / "nowhere") is None and bench.latest_figures(tmp_path / "nowhere") == {}


# -- the real embedded model -------------------------------------------------------------------


@pytest.mark.usefixtures("fetched")
def test_the_real_embedded_model_one_prompt_one_run() -> None:
    from tinyarms.config import EmbeddedConfig
    from tinyarms.models.llamacpp import EmbeddedBackend

    backend = EmbeddedBackend(EmbeddedConfig(n_ctx=4096, threads=2))
    doc = run_bench(backend, [MODEL], runs=1, sizes=(50,), timeout=300)
    entry = doc["models"][0]
    assert "error" not in entry, entry
    assert entry["answers"] == 1 and entry["errors"] == {}
    assert entry["json_valid"] == 1  # the schema grammar makes it JSON whatever the model thinks
    assert 0 < entry["load_s"]["median"] < 120
    assert 0 < entry["first_token_s"]["median"] < entry["question_s"]["median"] < 300
    # measured, not judged: speed is benchmarks' business, and a loaded CI machine generates slowly
    assert entry["prompt_tps"]["median"] > 0 and entry["gen_tps"]["median"] > 0
    grew = entry["peak_rss_bytes"] - entry["rss_before_bytes"]
    assert 200 << 20 < grew < 4 << 30, grew  # the 469 MiB weights and the context, not gigabytes more
    assert doc["threads"] == 2 and doc["machine"]["ram_bytes"] > 0

