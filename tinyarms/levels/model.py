"""Levels 2 and 3: model rules, asked as narrow questions about candidates, within a deadline.

For each file and model rule a deterministic finder proposes candidates; each becomes one
prompt (``questions``). Answers are cached (key: the prompt, the model and its digest, the prompt
version, the level), validated, and turned into findings (``model_findings``). At the deadline the
questions not yet asked are reported as ``skipped`` ("budget") and handed back as pending work,
which the daemon finishes in the background so the next commit finds them cached. A backend that cannot answer at all
(server down, model missing) stops the level at once: one reason, one hint, no waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from tinyarms.finding import Finding, Skipped
from tinyarms.levels.model_findings import (
    cached_answer,
    claim_upheld,
    says_yes,
    scored_verdict,
    settled_answer,
    to_findings,
)
from tinyarms.levels.questions import Question, prepare
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
from tinyarms.stores.cache import Cache

MAX_TOKENS = 256
CONFIRM_MAX_TOKENS = 16
YES_PREFIX = '{"answer": "'  # what a yes/no answer starts with; the next token is scored
MIN_CALL_SECONDS = 0.3  # a question started with less time than this cannot finish
DEADLINE_MARGIN = 0.05  # seconds: a question that fails this close to the deadline is queued, not failed
NO_DEADLINE_TIMEOUT = 600.0  # seconds a question may take when no budget bounds it
NOT_IN_TIME = "not asked within the time budget; queued to be answered in the background"
_FATAL = frozenset({SERVER_DOWN, MODEL_MISSING, NOT_INSTALLED, NO_MEMORY})
T = TypeVar("T")


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
        out.findings += to_findings(settled, {q.key: [settled_answer(q)] for q in settled}, model, level,
                                    min_confidence)
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
    answers: dict[str, list[dict[str, Any]]] = {k: cached_answer(by_key[k], v, thresholds) for k, v in cached.items()}
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
                answers[q.key] = cached_answer(q, hit, thresholds)
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
                answers[q.key] = scored_verdict(q, p_yes, thresholds)
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
                        violations, dropped = claim_upheld(done.text, q), 0
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
        out.rejected = to_findings(questions, turned_down, model, level, min_confidence)
    out.findings = to_findings(questions, answers, model, level, min_confidence)
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
            verdicts[key] = says_yes(done.text)
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
