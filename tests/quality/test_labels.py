"""``tinyarms eval``'s corpus: the shipped one (every rule and language, no other project's
code, a deterministic split), and label checking."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.quality.corpora import BUILTIN, CORPUS_CACHE, RULE_IDS, corpus
from tinyarms.quality import evaluation
from tinyarms.quality.labels import load
from tinyarms.source import language_of
from tinyarms.yamlio import ConfigError

# --- the shipped corpus --------------------------------------------------------------------------

def test_the_shipped_corpus_covers_every_rule_and_language() -> None:
    loaded = load(evaluation.prepared(BUILTIN, CORPUS_CACHE), set(RULE_IDS))
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
    labels = load(evaluation.prepared(BUILTIN, CORPUS_CACHE)).labels.files
    own = {"labels.yaml", "PROVENANCE.md", ".tinyarms.yaml", "tsconfig.json"}
    kept = sorted(p.relative_to(BUILTIN).as_posix() for p in BUILTIN.rglob("*") if p.is_file())
    copies = [rel for rel in kept if rel not in own and not rel.startswith("patches/")
              and not (rel in labels and labels[rel].synthetic)]
    assert copies == []
    fetched = [item for item in labels.values() if not item.synthetic]
    assert fetched and all((item.pypi or item.npm) and item.path and item.sha256 for item in fetched)
    assert len(labels) >= 150


def test_the_split_is_deterministic_and_keeps_groups_together() -> None:
    loaded = load(evaluation.prepared(BUILTIN, CORPUS_CACHE))
    train, test = loaded.files("train"), loaded.files("test")
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == loaded.files()
    assert load(evaluation.prepared(BUILTIN, CORPUS_CACHE)).files("test") == test  # the same on every load
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
        load(root, set(RULE_IDS))
    problems = "\n".join(info.value.problems)
    assert re.search(r"labels\.yaml:5: files\.a\.py\.expect\[0\]\.rule: unknown rule 'magic-number'", problems)
    assert re.search(r"labels\.yaml:6: files\.gone\.py: no such file", problems)
    assert "b.py is in the corpus but not labelled" in problems

    (root / "labels.yaml").write_text(
        "version: 1\nfiles:\n  a.py:\n    expect:\n      - {rule: magic-numbers, line: 0}\n")
    with pytest.raises(ConfigError) as info:
        load(root)
    assert re.search(r"labels\.yaml:5: files\.a\.py\.expect\[0\]\.line: .*greater than or equal to 1",
                     info.value.problems[0]), info.value.problems


def test_a_folder_without_labels_is_not_a_corpus(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not a corpus: no labels\.yaml"):
        load(tmp_path)


