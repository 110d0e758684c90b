"""`tinyarms feedback` end to end: a real git repository, the real command line, real SQLite, and
Ollama's API served by the test server for the model rules."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_router_models import agreeing_model
from tinyarms.stores import feedback

NUMBERS = "RATE = 0.2\nprint(3 * 7)\nprint(3 * 7)\n"


def lint(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = run_cli("lint", "--no-daemon", "--format", "json", *args, cwd=repo, env=env)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def teach(repo: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("feedback", *args, cwd=repo, env=env)


@pytest.fixture
def numbers(repo: Path) -> Path:
    (repo / "src").mkdir()
    (repo / "src" / "calc.py").write_text(NUMBERS)
    return repo


def test_path_line_rule_marks_the_finding_and_the_lint_passes(numbers: Path, isolated_env: Path) -> None:
    offline = {"OLLAMA_HOST": "http://127.0.0.1:9"}  # no model: Level 0 only
    code, before = lint(numbers, "src/calc.py", "--select", "magic-numbers", env=offline)
    assert code == 1 and [(f["line"], f["column"]) for f in before["findings"]] == [(2, 7), (2, 11), (3, 7), (3, 11)]

    # as the text output prints it, copied with its space, from a subdirectory
    done = teach(numbers / "src", "false-positive", "calc.py:2:7:", "magic-numbers", "--note", "the 3 of 3-phase power")
    assert done.returncode == 0, done.stderr
    assert "calc.py:2: magic-numbers is a known false positive now" in done.stdout
    assert "tinyarms feedback remove 1" in done.stderr

    code, after = lint(numbers, "src/calc.py", "--select", "magic-numbers", env=offline)
    assert code == 1  # three more magic numbers are still real
    marked = [f for f in after["findings"] if f["feedback"] == "false-positive"]
    assert [(f["line"], f["column"]) for f in marked] == [(2, 7)]
    assert marked[0]["fingerprint"] == before["findings"][0]["fingerprint"]
    assert after["stats"]["false_positives"] == 1

    [entry] = json.loads(teach(numbers, "list", "--json").stdout)
    assert (entry["path"], entry["line"], entry["rule"], entry["verdict"]) == ("src/calc.py", 2, "magic-numbers",
                                                                              "false-positive")
    assert entry["code"] == "print(3 * 7)" and entry["note"] == "the 3 of 3-phase power"
    assert entry["repo"] == str(numbers.resolve())

    # the cache is disposable, feedback is not: a damaged cache is set aside, the verdict stays
    (isolated_env / "cache.db").write_bytes(b"not a database" * 500)
    for suffix in ("-wal", "-shm"):
        (isolated_env / f"cache.db{suffix}").unlink(missing_ok=True)
    code, again = lint(numbers, "src/calc.py", "--select", "magic-numbers", env=offline)
    assert list(isolated_env.glob("cache.db.corrupt-*"))
    assert [f["feedback"] for f in again["findings"]] == ["false-positive", None, None, None]

    done = teach(numbers, "remove", str(entry["id"]))
    assert done.returncode == 0 and "removed: false-positive src/calc.py:2: magic-numbers" in done.stdout
    _, undone = lint(numbers, "src/calc.py", "--select", "magic-numbers", env=offline)
    assert all(f["feedback"] is None for f in undone["findings"])


def test_a_fingerprint_or_a_prefix_of_it_names_a_finding(numbers: Path) -> None:
    offline = {"OLLAMA_HOST": "http://127.0.0.1:9"}
    _, out = lint(numbers, "src/calc.py", "--select", "magic-numbers", env=offline)
    third = out["findings"][2]["fingerprint"]
    done = teach(numbers, "confirm", third[:10], env=offline)
    assert done.returncode == 0, done.stderr
    assert f"calc.py:3: magic-numbers is confirmed (fingerprint {third})" in done.stdout

    last = out["findings"][3]["fingerprint"]
    done = teach(numbers, "false-positive", last, env=offline)
    assert done.returncode == 0, done.stderr
    code, out = lint(numbers, "src/calc.py", "--select", "magic-numbers", env=offline)
    assert [f["feedback"] for f in out["findings"]] == [None, None, "confirmed", "false-positive"]
    assert code == 1

    status = sqlite3.connect(feedback.feedback_path())
    assert status.execute("SELECT verdict, count(*) FROM feedback GROUP BY verdict ORDER BY verdict").fetchall() == [
        ("confirmed", 1), ("false-positive", 1)]
    status.close()


@pytest.mark.parametrize(("finding", "expected"), [
    ("src/calc.py:2:magic-numbers", ["2 magic-numbers findings on this line", "src/calc.py:2:7:magic-numbers",
                                     "src/calc.py:2:11:magic-numbers"]),
    ("src/calc.py:2:9:magic-numbers", ["no magic-numbers finding there", "at another column",
                                       "src/calc.py:2:11:magic-numbers"]),
    ("src/calc.py:1:magic-numbers", ["src/calc.py:1: no magic-numbers finding there",
                                     "magic-numbers findings in src/calc.py are on lines 2, 3"]),
    ("src/calc.py:40:magic-numbers", ["src/calc.py:40: the file has"]),
    ("src/calc.py:2:magic-numbrs", ["no rule 'magic-numbrs' (did you mean 'magic-numbers'?)"]),
    ("src/nope.py:2:magic-numbers", ["src/nope.py: no such file"]),
    ("../outside.py:1:magic-numbers", ["../outside.py: outside the repository"]),
    ("0123456789abcdef", ["no finding with fingerprint 0123456789abcdef"]),
    ("what?", ["names no finding", "PATH:LINE:RULE"]),
])
def test_what_names_no_finding_or_several_is_a_clear_error(numbers: Path, finding: str, expected: list[str]) -> None:
    (numbers.parent / "outside.py").write_text("x = 42\n")
    done = teach(numbers, "false-positive", finding, env={"OLLAMA_HOST": "http://127.0.0.1:9"})
    assert done.returncode == 2, done.stdout + done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not feedback.feedback_path().exists()  # nothing recorded, not even an empty file


def test_outside_a_repository_and_unknown_entries_are_errors(tmp_path: Path, numbers: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    done = teach(loose, "false-positive", "a.py:1:magic-numbers")
    assert done.returncode == 2 and "not inside a repository" in done.stderr
    done = teach(numbers, "remove", "42")
    assert done.returncode == 2 and "no feedback 42" in done.stderr
    done = teach(numbers, "list")
    assert done.returncode == 0 and "no feedback yet in this repository" in done.stderr


def test_a_model_false_positive_becomes_a_counter_example_in_the_next_prompt(
    repo: Path, ollama_server: FakeOllama,
) -> None:
    """The finding is found again from the cache (no new question), then the prompt about that
    code carries it as a counter-example, so its cache key is new and the model is asked again."""
    ollama_server.answer(agreeing_model)
    env = {"OLLAMA_HOST": ollama_server.host}
    (repo / "prices.py").write_text(TWINS)
    code, out = lint(repo, "prices.py", "--select", "simple-dry", env=env)
    [found] = out["findings"]
    assert code == 1 and (found["rule"], found["line"]) == ("simple-dry", 12)
    assert len(ollama_server.calls("/api/chat")) == 1

    done = teach(repo, "false-positive", "prices.py:12:simple-dry", "--note", "EU and US totals will diverge",
                 env=env)
    assert done.returncode == 0, done.stderr
    assert len(ollama_server.calls("/api/chat")) == 1  # resolved from the cached answer

    code, out = lint(repo, "prices.py", "--select", "simple-dry", env=env)
    assert code == 0, out  # the model said the same again: a known false positive fails nothing
    [again] = out["findings"]
    assert again["fingerprint"] == found["fingerprint"] and again["feedback"] == "false-positive"
    calls = ollama_server.calls("/api/chat")
    assert len(calls) == 2  # a new prompt, so a new cache key: asked again
    prompt = calls[-1].body["messages"][-1]["content"]
    counter = prompt.split("Not a violation (from prices.py):\n")[1].split("\n\nCode from prices.py")[0]
    assert counter.startswith("def total_us(basket):") and "return amount * 1.08" in counter
    assert counter.endswith("Why it is fine: EU and US totals will diverge")
    assert prompt.count("Not a violation") == 1

    lint(repo, "prices.py", "--select", "simple-dry", env=env)
    assert len(ollama_server.calls("/api/chat")) == 2  # the new prompt's answer is cached in turn


TOKENS = ":root {\n  --size-3: 1rem;\n  --size-5: 1.5rem;\n}\n"
CARD = ".card {\n  padding: 1rem;\n  margin: 1.5rem;\n}\n.title {\n  margin: 1rem;\n  gap: 1.5rem;\n}\n"


def model_saying_yes(request) -> str:
    """Upholds every candidate, whatever else the prompt says: counter-examples change nothing."""
    prompt = request.body["messages"][-1]["content"]
    rule, line = re.search(r"report one violation of rule ([\w-]+) on line (\d+)", prompt).groups()
    return json.dumps({"violations": [{"rule": rule, "line": int(line), "message": "use the token",
                                       "suggestion": "use the token", "confidence": 0.9}]})


def asked_about(server: FakeOllama, since: int = 0) -> list[int]:
    """The lines the model was asked about, in calls from number ``since`` on."""
    return sorted(int(re.search(r"Line (\d+) sets", c.body["messages"][-1]["content"]).group(1))
                  for c in server.calls("/api/chat")[since:])


def test_a_false_positive_settles_its_kind_of_claim_until_one_of_them_is_confirmed(
    repo: Path, ollama_server: FakeOllama,
) -> None:
    """design-tokens claims fall into kinds (the property and the token family): a margin
    reported false settles the other margins equal to a size token without asking the model,
    which here would say yes to anything; paddings and gaps stay the model's to judge.
    Confirming a margin hands the kind back to the model."""
    ollama_server.answer(model_saying_yes)
    env = {"OLLAMA_HOST": ollama_server.host}
    (repo / "tokens.css").write_text(TOKENS)
    (repo / "card.css").write_text(CARD)
    code, out = lint(repo, "card.css", "--select", "design-tokens", env=env)
    assert code == 1 and sorted(f["line"] for f in out["findings"]) == [2, 3, 6, 7]
    assert asked_about(ollama_server) == [2, 3, 6, 7]

    done = teach(repo, "false-positive", "card.css:3:design-tokens", "--note", "our margins are layout, not steps",
                 env=env)
    assert done.returncode == 0, done.stderr
    assert "Other design-tokens findings of its kind (margin:--size) are settled" in done.stdout
    [entry] = json.loads(teach(repo, "list", "--json").stdout)
    assert entry["kind"] == "margin:--size"

    before = len(ollama_server.calls("/api/chat"))
    code, out = lint(repo, "card.css", "--select", "design-tokens", env=env)
    by_line = {f["line"]: f for f in out["findings"]}
    assert sorted(by_line) == [2, 3, 6, 7]
    assert by_line[6]["feedback"] == "false-positive"  # settled: like the one reported, never asked
    assert ("not asked: like the false positive reported at card.css:3; our margins are layout, not steps"
            in by_line[6]["message"])
    assert by_line[3]["feedback"] == "false-positive"
    assert by_line[2]["feedback"] is None and by_line[7]["feedback"] is None
    assert code == 1  # the padding and gap findings still fail
    assert out["stats"]["models"]["2"]["settled_by_feedback"] == 2
    assert not {3, 6} & set(asked_about(ollama_server, before))

    # A developer confirms a margin: the kind is the model's to judge again, each one.
    done = teach(repo, "confirm", "card.css:6:design-tokens", env=env)
    assert done.returncode == 0, done.stderr
    before = len(ollama_server.calls("/api/chat"))
    code, out = lint(repo, "card.css", "--select", "design-tokens", "--no-cache", env=env)
    by_line = {f["line"]: f for f in out["findings"]}
    assert by_line[6]["feedback"] == "confirmed" and "not asked" not in by_line[6]["message"]
    assert by_line[3]["feedback"] == "false-positive"  # that one finding is still known false
    assert out["stats"]["models"]["2"]["settled_by_feedback"] == 0
    assert asked_about(ollama_server, before) == [2, 3, 6, 7]


def test_each_value_of_a_shorthand_is_a_finding_a_verdict_names_by_its_column(
    repo: Path, ollama_server: FakeOllama,
) -> None:
    """`padding: 1rem 1.5rem` is two claims, two findings on one line at their own columns, with
    fingerprints of their own; PATH:LINE:RULE is ambiguous there, PATH:LINE:COL:RULE is not."""
    ollama_server.answer(model_saying_yes)
    env = {"OLLAMA_HOST": ollama_server.host}
    (repo / "tokens.css").write_text(TOKENS)
    (repo / "card.css").write_text(".card {\n  padding: 1rem 1.5rem;\n  margin: 1.5rem;\n}\n")
    code, out = lint(repo, "card.css", "--select", "design-tokens", env=env)
    assert code == 1
    assert [(f["line"], f["column"], f["end_column"], f["suggestion"]) for f in out["findings"]] == [
        (2, 12, 16, "use var(--size-3) instead of 1rem"), (2, 17, 23, "use var(--size-5) instead of 1.5rem"),
        (3, 11, 17, "use var(--size-5) instead of 1.5rem")]
    assert len({f["fingerprint"] for f in out["findings"]}) == 3

    done = teach(repo, "false-positive", "card.css:2:design-tokens", env=env)
    assert done.returncode == 2 and "2 design-tokens findings on this line" in done.stderr
    done = teach(repo, "false-positive", "card.css:2:17:design-tokens", env=env)
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(teach(repo, "list", "--json").stdout)
    assert (entry["line"], entry["kind"]) == (2, "padding:--size")
    _, out = lint(repo, "card.css", "--select", "design-tokens", env=env)
    assert [(f["column"], f["feedback"]) for f in out["findings"]] == [(12, "false-positive"), (17, "false-positive"),
                                                                        (11, None)]
