"""Levels 2 and 3: model rules, asked as narrow questions about candidates, within a deadline.

For each file and model rule a deterministic finder proposes candidates; each becomes one
prompt. Answers are cached (key: the prompt, the model and its digest, the prompt version, the
level), validated, and turned into findings. At the deadline the questions not yet asked are
reported as ``skipped`` ("budget") and handed back as pending work, which the daemon finishes
in the background so the next commit finds them cached. A backend that cannot answer at all
(server down, model missing) stops the level at once: one reason, one hint, no waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tinyarms import suppress
from tinyarms.candidates import Candidate
from tinyarms.finding import FALSE_POSITIVE, Finding, Skipped, assign_fingerprints
from tinyarms.models import answer, prompts
from tinyarms.models.base import (
    BAD_ANSWER,
    BUDGET,
    MODEL_MISSING,
    NO_MEMORY,
    NOT_INSTALLED,
    SERVER_DOWN,
    Backend,
    ModelUnavailable,
    NoLogprobs,
)
from tinyarms.models.slots import Slots
from tinyarms.ruleset import ActiveRule
from tinyarms.source import Source
from tinyarms.stores.cache import Cache

if TYPE_CHECKING:
    from tinyarms.stores.feedback import Entry

MAX_TOKENS = 256
CONFIRM_MAX_TOKENS = 16
YES_NO_CONFIDENCE = 0.8  # a bare yes says nothing about certainty; above min_confidence, below a sure 1.0
YES_PREFIX = '{"answer": "'  # what a yes/no answer starts with; the next token is scored
DEFAULT_THRESHOLD = 0.5  # P(yes) for a finding where no threshold was fitted for the rule and model
# P(yes) thresholds fitted on the built-in corpus's train split (`tinyarms eval --calibrate`, the
# F1-best), per rule and model; docs/evaluation.md, "How often is it right", has what they are worth on test.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "simple-dry": {"qwen2.5-coder:0.5b": 0.368, "qwen2.5-coder:1.5b": 0.855},
    "design-tokens": {"qwen2.5-coder:0.5b": 0.32, "qwen2.5-coder:1.5b": 0.617},
}
MIN_CALL_SECONDS = 0.3  # a question started with less time than this cannot finish
DEADLINE_MARGIN = 0.05  # seconds: a question that fails this close to the deadline is queued, not failed
NO_DEADLINE_TIMEOUT = 600.0  # seconds a question may take when no budget bounds it
NOT_IN_TIME = "not asked within the time budget; queued to be answered in the background"
_FATAL = frozenset({SERVER_DOWN, MODEL_MISSING, NOT_INSTALLED, NO_MEMORY})
T = TypeVar("T")


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


@dataclass(slots=True)
class LevelResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pending: list[Question] = field(default_factory=list)
    rejected: list[Finding] = field(default_factory=list)  # findings the confirm pass turned down
    asked: int = 0
    cached: int = 0
    dropped: int = 0  # violations an answer gave for rules not asked or lines not shown
    confirm_asked: int = 0
    settled: int = 0  # questions settled by feedback, not asked
    seconds: float = 0.0
    scored: bool = False  # yes/no claims were answered by P(yes) (Backend.score), not by a generated word


def candidates(src: Source, rule: ActiveRule, limit: int, root: str | None) -> list[Candidate]:
    """The questions for one file and rule, from the rule's finder (``params.finder``)."""
    finder = finder_of(rule)
    if finder == "clones":
        from tinyarms.candidates import simple_dry

        return simple_dry.find(src, rule.id, limit)
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
CLAIM_FINDERS = frozenset({"clones", "tokens", "cross-file"})


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


async def run(
    questions: list[Question], backend: Backend, model: str, level: int, *, deadline: float | None,
    store: Cache | None, concurrency: int, min_confidence: float, confirm: bool = False, mode: str = "report",
    slots: Slots | None = None, defer: Callable[[], bool] | None = None, thresholds: dict[str, float] | None = None,
) -> LevelResult:
    """Ask the questions (those feedback settled are answered without the model, whatever the
    backend's state) and turn the answers into findings. ``slots``: the process's for this
    backend (``models/slots.py``; None: ``concurrency`` of this run's own); ``defer``: while it
    says so, no question is started (background work giving way)."""
    settled = [q for q in questions if q.settled_by is not None]
    out = await _ask(
        [q for q in questions if q.settled_by is None], backend, model, level, deadline=deadline, store=store,
        turns=slots or Slots(concurrency), defer=defer, min_confidence=min_confidence, confirm=confirm, mode=mode,
        thresholds=thresholds)
    if settled:
        for i, q in enumerate(settled):
            q.key = f"settled:{i}"
        out.settled = len(settled)
        out.findings += _findings(settled, {q.key: [_settled_answer(q)] for q in settled}, model, level, min_confidence)
    return out


async def _ask(
    questions: list[Question], backend: Backend, model: str, level: int, *, deadline: float | None,
    store: Cache | None, turns: Slots, defer: Callable[[], bool] | None, min_confidence: float, confirm: bool,
    mode: str, thresholds: dict[str, float] | None = None,
) -> LevelResult:
    out = LevelResult()
    started = time.monotonic()
    try:
        digest = await _by(deadline, backend.digest(model))
    except ModelUnavailable as exc:
        out.skipped += _skips(questions, exc.reason, exc.message, exc.hint, level)
        return out
    except TimeoutError:  # a server slow to say even which model it has: every question waits for later
        out.pending = list(questions)
        out.skipped += [_skip(q, BUDGET, NOT_IN_TIME, None, level) for q in questions]
        return out
    scored = thresholds is not None and callable(getattr(backend, "score", None))
    prepare(questions, model, digest, level, mode, scored)
    out.scored = scored and any(q.yes_no for q in questions)
    by_key = {q.key: q for q in questions}
    cached = store.get_many(q.key for q in questions) if store is not None else {}
    answers: dict[str, list[dict[str, Any]]] = {k: _cached_answer(by_key[k], v, thresholds) for k, v in cached.items()}
    out.cached = len(answers)
    todo = [q for q in questions if q.key not in answers]
    fatal: list[ModelUnavailable] = []

    no_logprobs: list[bool] = []  # the backend turned out to give none: words from then on

    def unavailable(q: Question, exc: ModelUnavailable) -> None:
        """A question the model could not answer: fatal for all, for later at the deadline, or skipped."""
        if exc.reason in _FATAL:
            fatal.append(exc)
        elif deadline is not None and time.monotonic() >= deadline - DEADLINE_MARGIN:
            out.pending.append(q)
        else:
            out.skipped.append(_skip(q, exc.reason, exc.message, exc.hint, level))

    async def ask(q: Question) -> None:
        async with turns.turn(deadline, defer) as mine:
            if not mine:  # every slot busy until the deadline: for the background, like any the budget cut
                out.pending.append(q)
                return
            if fatal:
                return
            # Whoever held the slot may have been asking this very question (the background
            # finishing what a commit's budget cut, a parallel hook): then it is answered.
            hit = store.get_many([q.key]).get(q.key) if store is not None else None
            if hit is not None:
                answers[q.key] = _cached_answer(q, hit, thresholds)
                out.cached += 1
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining < MIN_CALL_SECONDS:
                out.pending.append(q)
                return
            verdict = None
            if q.yes_no and scored and not no_logprobs:
                assert thresholds is not None
                try:
                    verdict = await backend.score(  # type: ignore[attr-defined]
                        model, prompts.YES_NO_SYSTEM, q.prompt, YES_PREFIX, ["yes", "no"],
                        timeout=remaining if remaining is not None else NO_DEADLINE_TIMEOUT)
                except ModelUnavailable as exc:
                    unavailable(q, exc)
                    return
                except NoLogprobs:  # an older server: the word, as before, for this question and the rest
                    no_logprobs.append(True)
                    verdict = None
            if verdict is not None:
                out.asked += 1
                p_yes = verdict.probability("yes")
                answers[q.key] = _verdict(q, p_yes, thresholds)
                if store is not None:
                    store.put_many([(q.key, {"violations": answers[q.key], "p_yes": p_yes, "model": model})])
                return
            schema = prompts.CONFIRM_SCHEMA if q.yes_no else answer.schema([q.rule.id])
            system = prompts.YES_NO_SYSTEM if q.yes_no else prompts.SYSTEM
            for attempt in (1, 2):
                try:
                    done = await backend.complete(
                        model, system, q.prompt, schema,
                        timeout=remaining if remaining is not None else NO_DEADLINE_TIMEOUT,
                        max_tokens=CONFIRM_MAX_TOKENS if q.yes_no else MAX_TOKENS)
                    if q.yes_no:
                        violations, dropped = _claim_upheld(done.text, q), 0
                    else:
                        violations, dropped = answer.parse(done.text, {q.rule.id}, prompts.shown_lines(q.candidate))
                except answer.BadAnswer as exc:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if attempt == 1 and (remaining is None or remaining >= MIN_CALL_SECONDS):
                        continue  # one retry when the budget allows
                    out.skipped.append(_skip(q, BAD_ANSWER, f"the model's answer was unusable: {exc}", None, level))
                    return
                except ModelUnavailable as exc:
                    unavailable(q, exc)
                    return
                out.asked += 1
                out.dropped += dropped
                answers[q.key] = [asdict(v) for v in violations]
                if store is not None:
                    store.put_many([(q.key, {"violations": answers[q.key], "model": model})])
                return

    await asyncio.gather(*(ask(q) for q in todo))
    out.scored = out.scored and not no_logprobs
    if fatal:
        first = fatal[0]
        unanswered = [q for q in questions if q.key not in answers]
        out.skipped += _skips(unanswered, first.reason, first.message, first.hint, level)
        out.pending = []
    for q in out.pending:
        out.skipped.append(_skip(q, BUDGET, NOT_IN_TIME, None, level))
    if confirm and not fatal and not out.scored:  # a scored verdict is already a probability: no second question
        answers, turned_down = await _confirm(
            questions, answers, backend, model, digest, level, deadline=deadline, store=store, turns=turns, out=out)
        out.rejected = _findings(questions, turned_down, model, level, min_confidence)
    out.findings = _findings(questions, answers, model, level, min_confidence)
    out.seconds = time.monotonic() - started
    return out


async def _confirm(
    questions: list[Question], answers: dict[str, list[dict[str, Any]]], backend: Backend, model: str, digest: str,
    level: int, *, deadline: float | None, store: Cache | None, turns: Slots, out: LevelResult,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Ask one yes/no question per violation the first pass reported; split ``answers`` into the
    confirmed and the turned down. A "no", or an answer that is not yes or no, turns a violation
    down. A violation the deadline or a failing backend leaves unconfirmed is kept as it was:
    the confirm pass narrows findings, it never costs the first pass's work."""
    items = [(q, v) for q in questions for v in answers.get(q.key, [])]
    if not items:
        return answers, {}
    keys: list[str] = []
    texts: list[str] = []
    for q, v in items:
        text = prompts.confirm_prompt(q.rule.id, q.rule.description, q.src.rel, q.src.lines, q.candidate,
                                      v["line"], v["message"])
        texts.append(text)
        keys.append("confirm:" + hashlib.sha256(json.dumps(
            [prompts.PROMPT_VERSION, model, digest, level, q.rule.id, prompts.SYSTEM, text]).encode()).hexdigest())
    verdicts: dict[str, bool] = {}
    if store is not None:
        verdicts = {k: bool(v.get("yes")) for k, v in store.get_many(keys).items()}

    async def ask(key: str, text: str) -> None:
        async with turns.turn(deadline) as mine:
            if not mine:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining < MIN_CALL_SECONDS:
                return
            try:
                done = await backend.complete(
                    model, prompts.SYSTEM, text, prompts.CONFIRM_SCHEMA,
                    timeout=remaining if remaining is not None else NO_DEADLINE_TIMEOUT, max_tokens=CONFIRM_MAX_TOKENS)
            except ModelUnavailable:
                return
            out.confirm_asked += 1
            verdicts[key] = _says_yes(done.text)
            if store is not None:
                store.put_many([(key, {"yes": verdicts[key], "model": model})])

    todo = {k: text for k, text in zip(keys, texts, strict=True) if k not in verdicts}
    await asyncio.gather(*(ask(k, text) for k, text in todo.items()))
    kept: dict[str, list[dict[str, Any]]] = {}
    turned_down: dict[str, list[dict[str, Any]]] = {}
    for (q, v), key in zip(items, keys, strict=True):
        target = turned_down if verdicts.get(key) is False else kept
        target.setdefault(q.key, []).append(v)
    return kept, turned_down


def _claim_upheld(text: str, q: Question) -> list[answer.Violation]:
    """A yes to a candidate's claim is one violation on the first line it reports, in the rule's
    own words; anything but yes or no is an unusable answer."""
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise answer.BadAnswer(f"not JSON ({exc.msg})") from None
    verdict = str(data.get("answer", "")).strip().lower() if isinstance(data, dict) else ""
    if verdict not in ("yes", "no"):
        raise answer.BadAnswer('expected {"answer": "yes"} or {"answer": "no"}')
    if verdict == "no":
        return []
    return [answer.Violation(q.rule.id, q.candidate.report[0], q.rule.message,
                             q.candidate.suggestion or q.rule.suggestion,
                             YES_NO_CONFIDENCE)]


def _cached_answer(q: Question, entry: dict[str, Any], thresholds: dict[str, float] | None) -> list[dict[str, Any]]:
    """A cached answer's violations; a cached P(yes) is judged against today's threshold."""
    if "p_yes" in entry and thresholds is not None:
        return _verdict(q, entry["p_yes"], thresholds)
    violations: list[dict[str, Any]] = entry["violations"]
    return violations


def _verdict(q: Question, p_yes: float, thresholds: dict[str, float] | None) -> list[dict[str, Any]]:
    """A scored claim: one violation, of confidence P(yes), when P(yes) reaches the rule's threshold."""
    threshold = globals()["threshold"](thresholds, q.rule.id)
    if p_yes < threshold:
        return []
    found = answer.Violation(q.rule.id, q.candidate.report[0], q.rule.message,
                             q.candidate.suggestion or q.rule.suggestion, round(p_yes, ndigits=4))
    return [{**asdict(found), "threshold": threshold}]


def threshold(thresholds: dict[str, float] | None, rule: str) -> float:
    """The P(yes) a claim of ``rule`` needs ("*": every rule's, as eval's every-candidate run sets)."""
    table = thresholds or {}
    return table.get(rule, table.get("*", DEFAULT_THRESHOLD))


def thresholds_for(config: Any, model: str) -> dict[str, float] | None:
    """Per rule, the P(yes) at which a scored claim becomes a finding for ``model``: the config's
    ``models.thresholds``, else the ones shipped for the built-in models; None when verdicts are
    not scored (``models.verdict: answer``)."""
    if getattr(config, "verdict", "probability") != "probability":
        return None
    out: dict[str, float] = {}
    for table in (DEFAULT_THRESHOLDS, calibrated(), getattr(config, "thresholds", None) or {}):
        for rule, by_model in table.items():
            if model in by_model:
                out[rule] = float(by_model[model])
    return out


CALIBRATED = "thresholds.json"  # in the state directory: what `tinyarms eval --calibrate` fitted


def calibrated() -> dict[str, dict[str, float]]:
    """The thresholds `tinyarms eval --calibrate` fitted on this machine ({} when none were)."""
    from tinyarms.paths import state_dir

    try:
        data = json.loads((state_dir(create=False) / CALIBRATED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _settled_answer(q: Question) -> dict[str, Any]:
    entry = q.settled_by
    assert entry is not None
    why = f"; {entry.note}" if entry.note else ""
    return {"line": q.candidate.report[0], "confidence": 1.0, "suggestion": q.candidate.suggestion,
            "message": (f"{q.rule.message} (not asked: like the false positive reported at {entry.path}:{entry.line}"
                        f"{why})"),
            "feedback": FALSE_POSITIVE}


def _says_yes(text: str) -> bool:
    try:
        data = json.loads(text, strict=False)
    except ValueError:
        return False
    return isinstance(data, dict) and str(data.get("answer", "")).strip().lower() == "yes"


def _findings(questions: list[Question], answers: dict[str, list[dict[str, Any]]], model: str, level: int,
              min_confidence: float) -> list[Finding]:
    by_file: dict[str, list[Finding]] = {}
    sources: dict[str, Source] = {}
    for q in questions:
        for v in answers.get(q.key, []):
            src = q.src
            line = v["line"]
            text = src.lines[line - 1] if line <= len(src.lines) else ""
            indent = len(text) - len(text.lstrip())
            severity = q.rule.severity if v["confidence"] >= v.get("threshold", min_confidence) else "info"
            column, end_column = indent + 1, (len(src.lines[q.candidate.report[1] - 1]) + 1
                                              if q.candidate.report[1] <= len(src.lines) else 1)
            if q.candidate.columns is not None and line == q.candidate.report[0]:
                column, end_column = q.candidate.columns
            message = v["message"]
            if q.candidate.other is not None:  # a cross-file finding names the other place, whatever the model said
                message = f"{message} (other place: {q.candidate.other.path}:{q.candidate.other.start})"
            elif q.candidate.where and q.candidate.where not in message:  # so does a clone pair's
                message = f"{message} ({q.candidate.where})"
            by_file.setdefault(src.rel, []).append(Finding(
                path=src.path, line=line, column=column, end_line=max(line, q.candidate.report[1]),
                end_column=end_column,
                rule=q.rule.id, skill=q.rule.skill, severity=severity, message=message,
                suggestion=q.candidate.suggestion or v.get("suggestion"), level=level, engine="model", model=model,
                confidence=round(v["confidence"], ndigits=3), feedback=v.get("feedback"),
            ))
            sources[src.rel] = src
    out: list[Finding] = []
    for rel, found in by_file.items():
        src = sources[rel]
        findings = dedupe(found)
        if "tinyarms:" in src.text:
            findings, _ = suppress.apply(findings, suppress.parse(src.lines, src.in_comment))
        assign_fingerprints(rel, findings, src.lines)
        out += findings
    return out


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per rule and place, the most confident: a place is a line, or a column of it
    for candidates about part of a line (``Candidate.columns``: each value of a shorthand)."""
    seen: set[tuple[str, int, int]] = set()
    kept = []
    for f in sorted(findings, key=lambda f: (f.line, f.column, f.rule, -f.confidence)):
        if (f.rule, f.line, f.column) not in seen:
            seen.add((f.rule, f.line, f.column))
            kept.append(f)
    return kept


async def _by(deadline: float | None, awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result, or TimeoutError once ``deadline`` (monotonic) has passed."""
    if deadline is None:
        return await awaitable
    return await asyncio.wait_for(awaitable, max(0.0, deadline - time.monotonic()))


def _skip(q: Question, reason: str, message: str, hint: str | None, level: int) -> Skipped:
    return Skipped(q.src.path, reason, message, rule=q.rule.id, level=level, hint=hint)


def _skips(questions: list[Question], reason: str, message: str, hint: str | None, level: int) -> list[Skipped]:
    seen: set[tuple[str, str]] = set()
    out = []
    for q in questions:
        if (q.src.path, q.rule.id) not in seen:
            seen.add((q.src.path, q.rule.id))
            out.append(_skip(q, reason, message, hint, level))
    return out
