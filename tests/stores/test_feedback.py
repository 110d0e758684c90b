"""The feedback store, counter-example ranking, prompts and cache keys, and marking a lint's findings."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tinyarms.candidates import simple_dry
from tinyarms.finding import CONFIRMED, FALSE_POSITIVE, Finding, LintResult, fails
from tinyarms.levels import questions as questions_level
from tinyarms.models import prompts
from tinyarms.ruleset import load_settings
from tinyarms.source import Source, make_source
from tinyarms.stores import feedback
from tinyarms.stores.feedback import Entry, FeedbackError, Store

REPO = "/work/some-repo"


def record(store: Store, fingerprint: str, code: str, *, rule: str = "simple-dry", verdict: str = FALSE_POSITIVE,
           repo: str = REPO, now: float = 1000.0, note: str | None = None) -> Entry:
    return store.record(repo, fingerprint, verdict, rule=rule, path="a.py", line=3, code=code, message="dup",
                        note=note, now=now)


def finding(fingerprint: str, severity: str = "warning") -> Finding:
    return Finding(path="a.py", line=1, column=1, end_line=1, end_column=2, rule="magic-numbers",
                   skill="code-linting-fast", severity=severity, message="m", fingerprint=fingerprint)


# -- the store --------------------------------------------------------------------------------


def test_a_verdict_is_kept_across_reopening_and_a_new_one_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    with Store(path) as store:
        first = record(store, "f1", "x = 1", note="  on\n purpose ")
        assert first.note == "on purpose"  # one line: it goes into prompts
    with Store(path) as store:
        assert store.lookup(REPO, "f1") == first
        again = record(store, "f1", "x = 1", verdict=CONFIRMED, now=2000.0)
        assert (again.id, again.verdict, again.created) == (first.id, CONFIRMED, 2000.0)
        assert store.counts() == {"false_positives": 0, "confirmed": 1, "repos": 1}
        assert store.lookup("/another/repo", "f1") is None  # entries belong to their repository
        assert store.remove(first.id) and not store.remove(first.id)
        assert store.entries() == []


def test_bad_verdicts_are_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "f.db") as store, pytest.raises(ValueError, match="verdict must be one of"):
        record(store, "f1", "x", verdict="meh")


def test_a_damaged_file_is_an_error_that_says_what_to_do_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    path.write_bytes(b"this is not sqlite" * 300)
    with pytest.raises(FeedbackError) as caught:
        Store(path)
    [problem] = caught.value.problems
    assert str(path) in problem and "damaged" in problem and "move it aside" in problem
    assert path.read_bytes() == b"this is not sqlite" * 300  # feedback is never thrown away for us


def test_a_file_from_a_newer_tinyarms_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={feedback.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(FeedbackError, match="newer tinyarms"):
        Store(path)


def test_writers_wait_for_each_other_and_for_a_reader_instead_of_failing(tmp_path: Path) -> None:
    """The daemon reads while `tinyarms feedback` writes (several at once, even): WAL and
    BEGIN IMMEDIATE with a busy timeout make every write land."""
    path = tmp_path / "feedback.db"
    Store(path).close()
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM feedback").fetchone() == (0,)  # a read transaction stays open
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with Store(path) as store:
                for i in range(10):
                    record(store, f"t{n}-{i}", f"x = {i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert reader.execute("SELECT count(*) FROM feedback").fetchone() == (0,)  # its snapshot is unchanged
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM feedback").fetchone() == (40,)
    assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reader.close()


def test_fingerprint_prefixes_match_within_a_repository(tmp_path: Path) -> None:
    with Store(tmp_path / "f.db") as store:
        record(store, "abc123", "x")
        record(store, "abd456", "y")
        record(store, "abc789", "z", repo="/other")
        assert {e.fingerprint for e in store.matching(REPO, "ab")} == {"abc123", "abd456"}
        assert [e.fingerprint for e in store.matching(REPO, "abc")] == ["abc123"]
        assert {e.fingerprint for e in store.matching(None, "abc")} == {"abc123", "abc789"}
        assert store.matching(REPO, "a%") == []  # LIKE's wildcards are taken literally


# -- counter-examples -------------------------------------------------------------------------


def test_counter_examples_are_the_most_similar_then_the_newest_and_at_most_the_limit(tmp_path: Path) -> None:
    code = "def total(items):\n    return sum(item.price * item.qty for item in items)"
    with Store(tmp_path / "f.db") as store:
        same_old = record(store, "same-old", code, now=1.0)
        same_new = record(store, "same-new", code, now=2.0)
        alike = record(store, "alike", code.replace("price", "cost"), now=3.0)
        record(store, "unrelated", "COLOURS = {'red': '#ff0000'}", now=4.0)  # shares nothing: never shown
        record(store, "other-rule", code, rule="design-tokens", now=5.0)
        record(store, "other-repo", code, repo="/other", now=6.0)
        record(store, "confirmed", code, verdict=CONFIRMED, now=7.0)

        got = store.counter_examples(REPO, "simple-dry", code, limit=3)
        assert [e.fingerprint for e in got] == [same_new.fingerprint, same_old.fingerprint, alike.fingerprint]
        assert [e.fingerprint for e in store.counter_examples(REPO, "simple-dry", code, limit=1)] == ["same-new"]
        assert store.counter_examples(REPO, "simple-dry", "import os") == []
        # the same ranking whether read per question (Store) or once per lint (Examples)
        examples = feedback.Examples.load(REPO, tmp_path / "f.db")
        assert examples is not None and examples.for_code("simple-dry", code, 3) == got


def test_no_feedback_file_means_no_examples_and_no_file_made(tmp_path: Path) -> None:
    assert feedback.Examples.load(REPO, tmp_path / "feedback.db") is None
    assert not (tmp_path / "feedback.db").exists()


def simple_dry_question(code: str = TWINS) -> questions_level.Question:
    [rule] = load_settings(None, select=["simple-dry"]).ruleset.rules
    src = make_source("prices.py", "prices.py", code.encode())
    assert isinstance(src, Source)
    [candidate] = simple_dry.find(src, rule.id, 8)
    return questions_level.Question(src, rule, candidate)


def test_counter_examples_go_into_the_prompt_bounded_and_change_the_cache_key(tmp_path: Path) -> None:
    plain = simple_dry_question()
    questions_level.prepare([plain], "qwen2.5-coder:3b", "digest", 2)
    assert "NOT a violation" not in plain.prompt

    long_code = "\n".join(f"    total += item.price * {n}" for n in range(30))
    with Store(tmp_path / "f.db") as store:
        for n in range(5):
            record(store, f"fp{n}", questions_level.shown_code(plain) + "\n" + long_code, now=float(n),
                   note=f"reason {n}")
    taught = simple_dry_question()
    examples = feedback.Examples.load(REPO, tmp_path / "f.db")
    assert examples is not None
    taught.counter_examples = tuple(examples.for_code("simple-dry", questions_level.shown_code(taught)))
    questions_level.prepare([taught], "qwen2.5-coder:3b", "digest", 2)

    assert taught.key != plain.key  # answers cached before the feedback are not reused
    shown = taught.prompt.split("Not a violation (from a.py):\n")[1:]
    assert len(shown) == feedback.MAX_EXAMPLES  # five recorded, three shown: the newest, all equally alike
    assert [part.split("Why it is fine: ")[1].split("\n")[0] for part in shown] == ["reason 4", "reason 3", "reason 2"]
    for part in shown:
        example = part.split("\nWhy it is fine:")[0]
        assert len(example.split("\n")) == prompts.MAX_EXAMPLE_LINES + 1 and example.endswith("\n...")
    assert taught.prompt.index("NOT a violation") < taught.prompt.index("Code from prices.py")
    # the same counter-examples, the same prompt and key: cached answers are reused again
    again = simple_dry_question()
    again.counter_examples = taught.counter_examples
    questions_level.prepare([again], "qwen2.5-coder:3b", "digest", 2)
    assert again.key == taught.key


def test_the_router_attaches_counter_examples_of_the_repository_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    q = simple_dry_question()
    with Store(tmp_path / "feedback.db") as store:
        record(store, "fp", questions_level.shown_code(q), repo=str(tmp_path.resolve()))
    monkeypatch.setenv("TINYARMS_HOME", str(tmp_path))
    questions_level.attach_counter_examples([q], tmp_path)
    assert [e.fingerprint for e in q.counter_examples] == ["fp"]
    other = simple_dry_question()
    questions_level.attach_counter_examples([other], tmp_path / "elsewhere")
    assert other.counter_examples == ()


# -- marking a lint's findings ----------------------------------------------------------------


def test_mark_flags_known_false_positives_which_then_fail_nothing(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    with Store(path) as store:
        record(store, "fp", "x = 3", rule="magic-numbers")
        record(store, "ok", "y = 4", rule="magic-numbers", verdict=CONFIRMED)
        record(store, "new", "z = 5", rule="magic-numbers", repo="/other")
    result = LintResult(findings=[finding("fp"), finding("ok"), finding("new")])
    feedback.mark(result, REPO, path)
    assert [f.feedback for f in result.findings] == [FALSE_POSITIVE, CONFIRMED, None]
    assert result.stats["false_positives"] == 1
    assert [fails(f, "warning") for f in result.findings] == [False, True, True]
    assert result.to_dict()["findings"][0]["feedback"] == FALSE_POSITIVE


def test_mark_with_a_damaged_file_goes_on_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    path.write_bytes(b"garbage" * 1000)
    result = LintResult(findings=[finding("fp")])
    feedback.mark(result, REPO, path)
    assert result.findings[0].feedback is None and fails(result.findings[0], "warning")
    assert "damaged" in result.stats["feedback_error"]


def test_the_text_output_shows_a_known_false_positive_and_does_not_count_it() -> None:
    from tinyarms.render import render

    known, real = finding("fp"), finding("real")
    known.feedback = FALSE_POSITIVE
    text = render("text", LintResult(findings=[known], stats={"files": 1}), {})
    assert "a.py:1:1: magic-numbers [warning] (known false positive) m" in text
    assert "No problems in 1 file; 1 known false positive not counted." in text
    text = render("text", LintResult(findings=[known, real], stats={"files": 1}), {})
    assert "Found 1 problem (1 warning) in 1 file; 1 file checked, 1 known false positive not counted." in text


def test_sarif_suppresses_and_github_demotes_a_known_false_positive() -> None:
    import json

    from tests.render.test_sarif import assert_valid_sarif
    from tinyarms.render import render

    known = finding("fp")
    known.feedback = FALSE_POSITIVE
    log = json.loads(render("sarif", LintResult(findings=[known, finding("real")]), {}))
    assert_valid_sarif(log)
    suppressed, plain = log["runs"][0]["results"]
    assert suppressed["suppressions"][0]["kind"] == "external" and "suppressions" not in plain
    lines = render("github", LintResult(findings=[known]), {}).splitlines()
    assert lines[0].startswith("::notice ") and "(known false positive)" in lines[0]


def test_a_schema_1_file_is_upgraded_in_place_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    old = sqlite3.connect(path)
    old.execute(feedback._SCHEMA[0].replace("    kind TEXT,\n", ""))
    old.execute("INSERT INTO feedback (repo, fingerprint, verdict, rule, path, line, code, message, note, created)"
                " VALUES (?, 'fp1', 'false-positive', 'simple-dry', 'a.py', 3, 'x = 1', 'dup', NULL, 1.0)", (REPO,))
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    with Store(path) as store:
        [kept] = store.entries(REPO)
        assert (kept.fingerprint, kept.kind) == ("fp1", None)
        assert store.record(REPO, "fp2", FALSE_POSITIVE, rule="design-tokens", path="a.css", line=2, code="gap: 1rem;",
                            message="m", kind="gap:--size").kind == "gap:--size"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == feedback.SCHEMA_VERSION
