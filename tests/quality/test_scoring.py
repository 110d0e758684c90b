"""``tinyarms eval``'s scoring: findings matched to labels one to one, the rates they give."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.quality.corpora import corpus
from tinyarms.finding import Finding
from tinyarms.quality import evaluation, labels, scoring


def finding(path: str, line: int, rule: str = "magic-numbers") -> Finding:
    return Finding(path, line, 1, line, 2, rule, "code-linting-fast", "warning", "m")



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
    loaded = labels.load(root)
    score, misses = scoring.score_file(loaded, "a.py", "magic-numbers", [finding("a.py", 3), finding("a.py", 4)])
    # tinyarms: ignore[line-references]  the comment names lines of the fixture above, which do not move
    assert (score.tp, score.fp, score.fn) == (1, 1, 1)  # two labels on line 3, one finding there; line 4 is off
    assert sorted((m.kind, m.line) for m in misses) == [("fn", 3), ("fp", 4)]
    score, _ = scoring.score_file(loaded, "a.py", "simple-dry", [finding("a.py", 12, "simple-dry")])
    assert (score.tp, score.fp, score.fn) == (1, 0, 0)  # within the rule's tolerance of 2
    score, _ = scoring.score_file(loaded, "a.py", "simple-dry", [finding("a.py", 13, "simple-dry")])
    assert (score.tp, score.fp, score.fn) == (0, 1, 1)
    score, _ = scoring.score_file(loaded, "a.py", "complex-dry",
                                     [finding("a.py", 22, "complex-dry"), finding("a.py", 24, "complex-dry")])
    assert (score.tp, score.fp, score.fn) == (1, 1, 0)  # a range is one expected finding


def block(line: int, end_line: int) -> Finding:
    return Finding("a.py", line, 1, end_line, 2, "simple-dry", "code-linting-fast", "warning", "m")


def test_a_copied_block_matches_the_label_it_covers_at_least_half_of(tmp_path: Path) -> None:
    root = corpus(tmp_path, {"a.py": "\n" * 80}, (
        "version: 1\ntolerance: {simple-dry: 2}\nfiles:\n  a.py:\n    expect:\n"
        "      - {rule: simple-dry, line: 30, end_line: 36}\n"
    ))
    loaded = labels.load(root)

    def tp_fp_fn(*found: Finding) -> tuple[int, int, int]:
        score, _ = scoring.score_file(loaded, "a.py", "simple-dry", list(found))
        return score.tp, score.fp, score.fn

    assert tp_fp_fn(block(12, 36)) == (1, 0, 0)  # the copy reported from its def line: covers the whole label
    assert tp_fp_fn(block(26, 33)) == (1, 0, 0)  # four of the label's seven lines
    assert tp_fp_fn(block(20, 31)) == (0, 1, 1)  # two lines of seven: a neighbouring block
    assert tp_fp_fn(block(5, 32)) == (0, 1, 1)  # a wide block reaching three lines into it
    assert tp_fp_fn(block(12, 36), block(30, 36)) == (1, 1, 0)  # still one finding per label


def test_scores_and_rates() -> None:
    score = scoring.Score(tp=3, fp=1, fn=3, files=4, files_with_fp=1)
    assert score.precision == 0.75 and score.recall == 0.5 and score.f1 == pytest.approx(0.6)
    assert score.fp_per_file == 0.25
    empty = scoring.Score(files=2)
    assert empty.precision is None and empty.recall is None and empty.f1 is None and empty.fp_per_file == 0.0
    assert scoring.Score(fp=2, files=1).precision == 0.0


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

