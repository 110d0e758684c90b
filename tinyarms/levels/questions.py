"""Levels 2 and 3's questions, before any is asked: each rule's finder proposes candidates, and
each candidate becomes one question with its prompt, its cache key, the repository's
counter-examples most like its code, and the reported false positive that settles it, if any.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinyarms.candidates import Candidate
from tinyarms.models import prompts
from tinyarms.ruleset import ActiveRule
from tinyarms.source import Source

if TYPE_CHECKING:
    from tinyarms.finding import Skipped
    from tinyarms.levels.level0 import Job
    from tinyarms.ruleset import Settings
    from tinyarms.stores.feedback import Entry


@dataclass(slots=True)
class Question:
    src: Source
    rule: ActiveRule
    candidate: Candidate
    prompt: str = ""
    key: str = ""
    # This repository's false positives of the rule most like this code (feedback.py); part of
    # the prompt, so of the cache key: answers cached before the feedback are not reused.
    counter_examples: tuple[Entry, ...] = ()
    # A false positive of the same kind of claim (Candidate.kind) this repository reported: the
    # question is not asked, its finding is reported as a known false positive.
    settled_by: Entry | None = None
    yes_no: bool = False  # asked as a yes/no question about the candidate's claim (models.question)


def gather(settings: Settings, pairs: list[tuple[Job, ActiveRule]], limit: int,
           skipped: list[Skipped]) -> tuple[list[Question], dict[str, tuple[ActiveRule, list[Source]]]]:
    """The questions about each file's candidates that touch its changed lines, at most ``limit``
    per file and rule (the rest listed in ``skipped``); and the sources of the cross-file rules."""
    from tinyarms.finding import Skipped
    from tinyarms.source import make_source

    sources: dict[str, Source] = {}
    questions: list[Question] = []
    cross: dict[str, tuple[ActiveRule, list[Source]]] = {}
    for job, rule in pairs:
        src = sources.get(job.rel) or make_source(job.path, job.rel, job.raw, settings.config.max_file_bytes)
        if not isinstance(src, Source):
            continue
        sources[job.rel] = src
        if finder_of(rule) == "cross-file":
            cross.setdefault(rule.id, (rule, []))[1].append(src)
            continue
        found = candidates(src, rule, limit * CANDIDATE_SURPLUS, settings.ruleset.root)
        touching = [c for c in found if touches(c, job.changed)]
        questions += [Question(src, rule, c) for c in touching[:limit]]
        if len(touching) > limit:  # a check not done is listed, never dropped in silence
            skipped.append(Skipped(
                job.path, "candidate-limit",
                f"more {rule.id} candidates than the {limit} a file gets; the rest were not checked",
                rule=rule.id, level=rule.level, hint="raise models.max_candidates to check more in each lint"))
    return questions, cross


def candidates(src: Source, rule: ActiveRule, limit: int, root: str | None) -> list[Candidate]:
    """The questions for one file and rule, from the rule's finder (``params.finder``)."""
    finder = finder_of(rule)
    if finder == "clones":
        from tinyarms.candidates import simple_dry

        return simple_dry.find(src, rule.id, limit, int(rule.params.get("min_logic", simple_dry.MIN_LOGIC)))
    if finder == "tokens":
        from tinyarms.candidates import design_tokens, tokens

        root_font_px = float(rule.params.get("root_font_px", tokens.ROOT_FONT_PX))
        return design_tokens.find(src, rule.id, limit, root, root_font_px)
    from tinyarms.candidates import functions

    return functions.find(src, rule.id, limit)


def finder_of(rule: ActiveRule) -> str:
    finder: str = rule.params.get("finder", "functions")
    return finder


def touches(candidate: Candidate, changed: tuple[tuple[int, int], ...] | None) -> bool:
    """Whether a candidate shows a changed line (``changed`` None: the whole file is new)."""
    if changed is None:
        return True
    return any(s <= ce and cs <= e for s, e in candidate.lines for cs, ce in changed)


# Finders whose candidates make a claim a yes/no question can test; whole functions make none.


# Finders whose candidates make a claim a yes/no question can test; whole functions make none.
CLAIM_FINDERS = frozenset({"clones", "tokens", "cross-file"})
PER_FILE_CLAIMS = CLAIM_FINDERS - {"cross-file"}  # claim finders that need one file, not the repository
CANDIDATE_SURPLUS = 4  # candidates found per one asked: most do not touch the change


def prepare(questions: list[Question], model: str, digest: str, level: int, mode: str = "report",
            scored: bool = False) -> None:
    """Each question's prompt and cache key. ``scored``: yes/no questions are answered by the
    probability of "yes" (``Backend.score``), which is cached as such."""
    for q in questions:
        q.yes_no = mode == "yes-no" and finder_of(q.rule) in CLAIM_FINDERS
        if q.yes_no:
            q.prompt = prompts.yes_no_prompt(q.rule.id, q.rule.description, q.src.rel, q.src.lines, q.candidate,
                                             q.counter_examples)
        else:
            q.prompt = prompts.user_prompt(
                q.rule.id, q.rule.description, list(q.rule.examples), q.src.rel, q.src.lines, q.candidate,
                q.counter_examples)
        system = prompts.YES_NO_SYSTEM if q.yes_no else prompts.SYSTEM
        how = ["p(yes)"] if q.yes_no and scored else []
        q.key = "model:" + hashlib.sha256(json.dumps(
            [prompts.PROMPT_VERSION, model, digest, level, q.rule.id, q.rule.severity, system, q.prompt, *how],
        ).encode()).hexdigest()


def attach_counter_examples(questions: list[Question], root: Path | str | None, path: Path | None = None) -> None:
    """Give each question the repository's false positives most like the code it shows (from the
    feedback file at ``path``, by default the state directory's)."""
    from tinyarms.stores import feedback

    examples = feedback.Examples.load(root, path) if questions else None
    if examples is None:
        return
    for q in questions:
        q.counter_examples = tuple(examples.for_code(q.rule.id, shown_code(q)))
        q.settled_by = examples.settling(q.rule.id, q.candidate.kind)


def claim_kind(src: Source, rule: ActiveRule, line: int, root: str | None, column: int | None = None) -> str | None:
    """The kind of claim behind a finding of ``rule`` on ``line`` (None when its finder makes no
    kinds): what a false positive reported for it settles (``Question.settled_by``). ``column``:
    the finding's, which tells the claims about several values on one line apart."""
    if finder_of(rule) != "tokens":  # the only finder whose claims fall into kinds
        return None
    here = [c for c in candidates(src, rule, KIND_SEARCH, root) if c.report[0] <= line <= c.report[1]]
    exact = [c for c in here if column is not None and c.columns is not None and c.columns[0] == column]
    return next((c.kind for c in exact or here), None)


KIND_SEARCH = 10_000  # candidates looked through for the one behind a finding


def shown_code(q: Question) -> str:
    """The code a question shows: the other place of a cross-file pair, then its own lines."""
    lines = [] if q.candidate.other is None else list(q.candidate.other.lines)
    for start, end in q.candidate.lines:
        lines += q.src.lines[start - 1 : end]
    return "\n".join(lines)
