"""The corpora the evaluation's tests lint: the shipped one (its files fetched once into a cache
kept between runs), and small ones written into a test's folder."""

from __future__ import annotations

import os
from pathlib import Path

from tinyarms.quality import labels
from tinyarms.skills import load_skills

BUILTIN = labels.builtin_corpus()
# The shipped corpus's files come from registries: fetched once into a cache kept between runs
# ($TINYARMS_TEST_CORPUS_CACHE, else ~/.cache/tinyarms-test-corpus), as the test models are.
CORPUS_CACHE = Path(
    os.environ.get("TINYARMS_TEST_CORPUS_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyarms-test-corpus"
).expanduser()
RULE_IDS = {r.id: r for skill, _ in load_skills(None).values() for r in skill.rules}


def corpus(tmp_path: Path, files: dict[str, str], labels: str) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "labels.yaml").write_text(labels)
    return tmp_path

