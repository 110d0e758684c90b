"""What Levels 2 and 3 make of the model's answers: a yes to a candidate's claim, a P(yes)
against the rule's threshold, a cached answer, a question feedback settled, a confirm verdict;
then the findings, one per rule and place, with the file's suppressions and fingerprints.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from tinyarms import suppress
from tinyarms.finding import FALSE_POSITIVE, Finding, assign_fingerprints
from tinyarms.levels.questions import Question
from tinyarms.levels.thresholds import threshold
from tinyarms.models import answer
from tinyarms.source import Source

YES_NO_CONFIDENCE = 0.8  # a bare yes says nothing about certainty; above min_confidence, below a sure 1.0


def claim_upheld(text: str, q: Question) -> list[answer.Violation]:
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


def cached_answer(q: Question, entry: dict[str, Any], thresholds: dict[str, float] | None) -> list[dict[str, Any]]:
    """A cached answer's violations; a cached P(yes) is judged against today's threshold."""
    if "p_yes" in entry and thresholds is not None:
        return scored_verdict(q, entry["p_yes"], thresholds)
    violations: list[dict[str, Any]] = entry["violations"]
    return violations


def scored_verdict(q: Question, p_yes: float, thresholds: dict[str, float] | None) -> list[dict[str, Any]]:
    """A scored claim: one violation, of confidence P(yes), when P(yes) reaches the rule's threshold."""
    needed = threshold(thresholds, q.rule.id)
    if p_yes < needed:
        return []
    found = answer.Violation(q.rule.id, q.candidate.report[0], q.rule.message,
                             q.candidate.suggestion or q.rule.suggestion, round(p_yes, ndigits=4))
    return [{**asdict(found), "threshold": needed}]


def settled_answer(q: Question) -> dict[str, Any]:
    entry = q.settled_by
    assert entry is not None
    why = f"; {entry.note}" if entry.note else ""
    return {"line": q.candidate.report[0], "confidence": 1.0, "suggestion": q.candidate.suggestion,
            "message": (f"{q.rule.message} (not asked: like the false positive reported at {entry.path}:{entry.line}"
                        f"{why})"),
            "feedback": FALSE_POSITIVE}


def says_yes(text: str) -> bool:
    try:
        data = json.loads(text, strict=False)
    except ValueError:
        return False
    return isinstance(data, dict) and str(data.get("answer", "")).strip().lower() == "yes"


def finder_findings(questions: list[Question], level: int) -> list[Finding]:
    """Each question's candidate as a finding, no model asked (``models.verdict: finder``; what
    ``tinyarms eval --backend none`` measures); one like a reported false positive is that."""
    answers = {}
    for i, q in enumerate(questions):
        q.key = f"finder:{i}"
        answers[q.key] = [settled_answer(q)] if q.settled_by is not None else [
            {"line": q.candidate.report[0], "confidence": 1.0, "message": q.rule.message,
             "suggestion": q.candidate.suggestion or q.rule.suggestion}]
    return to_findings(questions, answers, None, level, 0.0, engine="finder")


def to_findings(questions: list[Question], answers: dict[str, list[dict[str, Any]]], model: str | None, level: int,
                min_confidence: float, engine: str = "model") -> list[Finding]:
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
                suggestion=q.candidate.suggestion or v.get("suggestion"), level=level, engine=engine, model=model,
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
