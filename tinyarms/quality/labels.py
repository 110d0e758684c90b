"""A labelled corpus (``tinyarms eval``): ``labels.yaml``, its checks, and the train/test split.

A corpus is a folder of source files plus ``labels.yaml``, which lists every file and the
findings it should get (rule and line; model rules may give a line range and have a line
tolerance). A file with no expected findings is *clean*: whatever is found there is a false
positive.

Files fall deterministically into a ``train`` and a held-out ``test`` split by a hash of the
file's ``group`` (by default the file itself; the files of a cross-file pair share a group, so they
stay together): prompt tuning and feedback may look at ``train``; ``test`` measures whether that
generalises.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinyarms.errors import ConfigError
from tinyarms.yamlio import Document, load_file, validation_problems

LABELS = "labels.yaml"
TEST_SHARE = 30  # percent of groups held out as the test split
SPLITS = ("all", "train", "test")


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    line: int = Field(ge=1)
    end_line: int | None = Field(None, ge=1, description="a range: any line in it matches (whole-function rules)")
    note: str | None = None


class FileLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expect: list[Expected] = []
    # Hard negatives written down: places that look like a violation of a rule and are not. Any
    # finding there is already a false positive (it matches no `expect`); the note says why, and
    # is what `eval --feedback` tells the store, as a developer's `feedback --note` would.
    fine: list[Expected] = []
    group: str | None = Field(None, description="files that belong together share a split (default: each file alone)")
    source: str | None = Field(None, description="the PROVENANCE.md entry this file comes from")
    note: str | None = None
    # Where the text comes from (tinyarms.quality.corpus): a registry archive, the file in it and its hash,
    # and this project's own edit as a patch; or a file written here (synthetic).
    pypi: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9.!+_-]+$", description="NAME==VERSION")
    npm: str | None = Field(None, pattern=r"^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+@[A-Za-z0-9.+_-]+$",
                            description="NAME@VERSION")
    dist: Literal["sdist", "wheel"] | None = Field(None, description="pypi: which archive (default sdist)")
    path: str | None = Field(None, description="the file inside the archive, below its top folder")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="of the file as the archive holds it")
    patch: str | None = Field(None, description="a unified diff in the corpus folder, applied after the fetch")
    synthetic: bool = Field(False, description="written for this corpus, not taken from anywhere")


class LabelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2]
    tolerance: dict[str, int] = Field({}, description="lines a finding may be off by, per rule id")
    files: dict[str, FileLabels]


@dataclass(slots=True)
class Corpus:
    root: Path
    labels: LabelsFile

    def split_of(self, rel: str) -> str:
        key = self.labels.files[rel].group or rel
        bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
        return "test" if bucket < TEST_SHARE else "train"

    def files(self, split: str = "all") -> list[str]:
        return sorted(rel for rel in self.labels.files if split == "all" or self.split_of(rel) == split)

    def tolerance(self, rule: str) -> int:
        return self.labels.tolerance.get(rule, 0)


def builtin_corpus() -> Path:
    from tinyarms.resources import data_dir

    return data_dir("eval") / "corpus"


def load(root: Path, known_rules: set[str] | None = None) -> Corpus:
    """Read and check ``root/labels.yaml``: every labelled file exists, every lintable file is
    labelled, every rule id is known. Problems are ``file:line: field: message`` errors."""
    path = root / LABELS
    if not path.is_file():
        raise ConfigError([f"{root}: not a corpus: no {LABELS} (a corpus is source files plus {LABELS}; "
                           "see eval/corpus/ in the tinyarms repository)"])
    doc = load_file(path, str(path))
    try:
        labels = LabelsFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc)) from None
    problems = _check(root, labels, doc, known_rules)
    if problems:
        raise ConfigError(problems)
    return Corpus(root, labels)


def _check(root: Path, labels: LabelsFile, doc: Document, known_rules: set[str] | None) -> list[str]:
    from tinyarms.source import language_of

    problems = []
    for rel, item in labels.files.items():
        where = f"{doc.path}:{doc.line_of(('files', rel))}"
        fetched = item.pypi or item.npm
        if fetched and not (item.path and item.sha256):
            problems.append(f"{where}: files.{rel}: a file from {'pypi' if item.pypi else 'npm'} needs its path "
                            "in the archive and its sha256")
        if item.pypi and item.npm:
            problems.append(f"{where}: files.{rel}: pypi and npm both given; a file comes from one archive")
        if not (root / rel).is_file():
            problems.append(f"{where}: files.{rel}: no such file in the corpus" + (
                " (it is fetched from its registry: run `tinyarms eval` on the corpus, not on this folder)"
                if fetched else ""))
        for key, entries in (("expect", item.expect), ("fine", item.fine)):
            problems += _check_entries(doc, rel, key, entries, known_rules)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and language_of(rel) and rel not in labels.files:
            problems.append(f"{doc.path}: {rel} is in the corpus but not labelled: add it under files "
                            "(with expect: [] if it should get no finding)")
    return problems


def _check_entries(doc: Document, rel: str, key: str, entries: list[Expected],
                   known_rules: set[str] | None) -> list[str]:
    problems = []
    for i, expected in enumerate(entries):
        where = f"{doc.path}:{doc.line_of(('files', rel, key, i))}: files.{rel}.{key}[{i}]"
        if known_rules is not None and expected.rule not in known_rules:
            problems.append(f"{where}.rule: unknown rule {expected.rule!r}")
        if expected.end_line is not None and expected.end_line < expected.line:
            problems.append(f"{where}.end_line: before line {expected.line}")
    return problems

