"""``tinyarms eval --feedback``: what feedback on the training split is worth on the held-out one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.quality.corpora import CORPUS_CACHE, corpus
from tinyarms.quality import evaluation, feedback_effect
from tinyarms.quality.labels import Corpus, FileLabels, LabelsFile


def group_in(split: str) -> str:
    """A group name the deterministic split puts in ``split``."""
    labels = LabelsFile(version=1, files={})
    for i in range(100):
        labels.files = {"f": FileLabels(group=f"g{i}")}
        if Corpus(Path("."), labels).split_of("f") == split:
            return f"g{i}"
    raise AssertionError(f"no group falls in {split}")


def model_that_learns(request) -> str:
    """Says yes to every candidate unless the prompt shows a counter-example: a model that
    follows the feedback perfectly, so what is measured is the plumbing around it."""
    return json.dumps({"answer": "no" if "NOT a violation" in request.body["messages"][-1]["content"] else "yes"})


def test_feedback_on_the_training_split_lowers_false_positives_on_the_held_out_one(
        tmp_path: Path, ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    ollama_server.answer(model_that_learns)
    fine = "two tax rules that happen to look alike; they change separately"
    held_out = TWINS.replace("total_", "sum_")  # like the training file, not the same
    root = corpus(tmp_path / "corpus", {"train.py": TWINS, "test.py": held_out, "other.py": TWINS}, (
        "version: 1\ntolerance: {simple-dry: 2}\nfiles:\n"
        f"  train.py:\n    group: {group_in('train')}\n    expect: []\n"
        f"    fine:\n      - {{rule: simple-dry, line: 12, note: \"{fine}\"}}\n"
        f"  other.py:\n    group: {group_in('train')}\n    expect: [{{rule: simple-dry, line: 12}}]\n"
        f"  test.py:\n    group: {group_in('test')}\n    expect: []\n"
    ))
    options = evaluation.EvalOptions(select=["simple-dry"], backend="ollama", confirm=False, question="yes-no")
    report = feedback_effect.run_feedback(root, options)

    assert report.before.scores["simple-dry"].fp == 1  # the held-out twins, before any feedback
    # Every model false positive of the training split is taught, with the label's note; a true
    # positive (other.py) is not.
    assert [(t.path, t.rule, t.note) for t in report.taught] == [("train.py", "simple-dry", fine)]
    assert report.after.scores["simple-dry"].fp == 0
    assert report.after.models["2"]["with_counter_examples"] == 1
    [taught_prompt] = [c.body["messages"][-1]["content"] for c in ollama_server.calls("/api/chat")
                       if "NOT a violation" in c.body["messages"][-1]["content"]]
    assert "Not a violation (from train.py)" in taught_prompt and fine in taught_prompt
    assert "def sum_us(basket):" in taught_prompt  # asked about the held-out file
    # The corpus is not the user's repository: nothing was written to their feedback file.
    assert not (Path(os.environ["TINYARMS_HOME"]) / "feedback.db").exists()

    data = report.to_dict()
    assert data["before"]["rules"]["simple-dry"]["fp"] == 1 and data["after"]["rules"]["simple-dry"]["fp"] == 0
    assert "| `simple-dry` | 1 | 0 |" in feedback_effect.feedback_markdown(report)


def test_eval_feedback_command_refuses_a_split(tmp_path: Path) -> None:
    done = run_cli("eval", "--feedback", "--split", "test", "--level", "0", "--corpus-cache", str(CORPUS_CACHE),
                   cwd=tmp_path)
    assert done.returncode == 2 and "--feedback uses both splits" in done.stderr


def test_feedback_settles_a_kind_of_claim_on_the_held_out_split_when_the_model_ignores_examples(
        tmp_path: Path, ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.commands.test_feedback import model_saying_yes

    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    ollama_server.answer(model_saying_yes)
    tokens = ":root {\n  --size-3: 1rem;\n  --size-5: 1.5rem;\n}\n"
    root = corpus(tmp_path / "corpus", {
        "tokens.css": tokens,
        "train.css": ".a {\n  padding: 1rem;\n  margin: 1.5rem;\n}\n",
        "test.css": ".b {\n  margin: 1rem;\n  gap: 1.5rem;\n}\n",
    }, (
        "version: 1\nfiles:\n"
        f"  tokens.css:\n    group: {group_in('train')}\n    expect: []\n"
        f"  train.css:\n    group: {group_in('train')}\n    expect: [{{rule: design-tokens, line: 2}}]\n"
        "    fine: [{rule: design-tokens, line: 3, note: \"our margins are layout, not steps\"}]\n"
        f"  test.css:\n    group: {group_in('test')}\n    expect: [{{rule: design-tokens, line: 3}}]\n"
    ))
    report = feedback_effect.run_feedback(root, evaluation.EvalOptions(select=["design-tokens"], backend="ollama",
                                                                  confirm=False))
    before, after = report.before.scores["design-tokens"], report.after.scores["design-tokens"]
    # tinyarms: ignore[line-references]  the comment names a line of the fixture above, which does not move
    assert (before.tp, before.fp) == (1, 1)  # the margin on line 2 of test.css is a false positive
    assert [(t.path, t.line, t.kind) for t in report.taught] == [("train.css", 3, "margin:--size")]
    assert (after.tp, after.fp, after.fn) == (1, 0, 0)  # settled without the model; the gap is still found
    assert report.after.models["2"]["settled_by_feedback"] == 1

    # Counter-examples alone do not move a model that ignores them.
    alone = feedback_effect.run_feedback(root, evaluation.EvalOptions(select=["design-tokens"], backend="ollama",
                                                                 confirm=False, settle=False))
    assert [t.kind for t in alone.taught] == [None]
    assert alone.after.scores["design-tokens"].fp == 1 and alone.after.models["2"]["settled_by_feedback"] == 0
