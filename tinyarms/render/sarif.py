"""``--format sarif``: a SARIF 2.1.0 log for code-scanning tools (GitHub code scanning and others).

Stable ``ruleId`` and ``partialFingerprints`` let a viewer follow an alert across commits.
Paths are relative to ``%SRCROOT%``; the renderer is not told the root, so it does not claim one
in ``originalUriBaseIds`` and leaves resolving it to the uploader, as SARIF allows.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import tinyarms
from tinyarms.finding import FALSE_POSITIVE
from tinyarms.render import escape_surrogates, file_skips, region

if TYPE_CHECKING:
    from tinyarms.finding import Finding, LintResult, RuleMeta, Skipped

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/tinyarms/tinyarms"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "tinyarms/v1"

_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def render(
    result: LintResult,
    rules: Mapping[str, RuleMeta],
    *,
    fail_on: str = "warning",
    color: bool = False,
) -> str:
    text = json.dumps(sarif_log(result, rules), indent=2, ensure_ascii=False)
    return escape_surrogates(text) + "\n"


def sarif_log(result: LintResult, rules: Mapping[str, RuleMeta]) -> dict[str, Any]:
    descriptors = _descriptors(result.findings, rules)
    rule_index = {d["id"]: i for i, d in enumerate(descriptors)}
    ordered = sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.rule))
    run = {
        "tool": {
            "driver": {
                "name": "tinyarms",
                "version": tinyarms.__version__,
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }
        },
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": _notifications(result.skipped, rule_index),
            }
        ],
        "results": [_result(f, rule_index[f.rule]) for f in ordered],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _descriptors(findings: list[Finding], rules: Mapping[str, RuleMeta]) -> list[dict[str, Any]]:
    by_id = {meta.id: _descriptor(meta) for meta in rules.values()}
    # A finding from a rule the caller did not describe (a repo skill loaded elsewhere, say)
    # still needs a descriptor for its ruleIndex; describe it from the finding itself.
    for f in findings:
        if f.rule not in by_id:
            by_id[f.rule] = {
                "id": f.rule,
                "shortDescription": {"text": f.rule},
                "defaultConfiguration": {"level": _LEVELS.get(f.severity, "warning")},
                "properties": {"skill": f.skill, "level": f.level, "engine": f.engine},
            }
    return [by_id[rule_id] for rule_id in sorted(by_id)]


def _descriptor(meta: RuleMeta) -> dict[str, Any]:
    description = meta.description.strip() or meta.id
    help_text = description if not meta.suggestion else f"{description}\n\n{meta.suggestion}"
    return {
        "id": meta.id,
        "shortDescription": {"text": next(iter(description.splitlines()), "")},
        "fullDescription": {"text": description},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": _LEVELS.get(meta.severity, "warning")},
        "properties": {"skill": meta.skill, "level": meta.level, "engine": meta.engine},
    }


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    r = region(f)
    # An empty message.text is schema-valid but useless in a viewer; say at least which rule.
    text = f.message if f.message.strip() else f.rule
    if f.suggestion:
        text += f"\nSuggestion: {f.suggestion}"
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": _LEVELS.get(f.severity, "warning"),
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(f.path),
                    "region": {
                        "startLine": r.start_line,
                        "startColumn": r.start_column,
                        "endLine": r.end_line,
                        "endColumn": r.end_column,
                    },
                }
            }
        ],
    }
    # Without a fingerprint, every alert would look like one and the same to a viewer.
    if f.fingerprint:
        result["partialFingerprints"] = {FINGERPRINT_KEY: f.fingerprint}
    if f.feedback == FALSE_POSITIVE:
        # Viewers (GitHub code scanning among them) hide suppressed results but keep them.
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": "marked a false positive with `tinyarms feedback`"}]
    result["properties"] = {
        "skill": f.skill,
        "level": f.level,
        "engine": f.engine,
        "model": f.model,
        # NaN or infinity would make the whole log invalid JSON.
        "confidence": f.confidence if math.isfinite(f.confidence) else None,
    }
    return result


def _notifications(skipped: list[Skipped], rule_index: Mapping[str, int]) -> list[dict[str, Any]]:
    files = file_skips(skipped)
    checks = sorted(
        (s for s in skipped if s.rule is not None),
        key=lambda s: (s.rule or "", s.path or "", s.reason, s.message),
    )
    return [_notification(s, rule_index) for s in files + checks]


def _notification(s: Skipped, rule_index: Mapping[str, int]) -> dict[str, Any]:
    text = s.message if s.message.strip() else f"skipped ({s.reason})"
    if s.hint:
        text += f"\nHint: {s.hint}"
    notification: dict[str, Any] = {
        # A skipped file went unchecked entirely; a skipped model check is expected when no
        # model is available, and the deterministic rules still ran.
        "level": "warning" if s.rule is None else "note",
        "message": {"text": text},
    }
    if s.path is not None:
        notification["locations"] = [
            {"physicalLocation": {"artifactLocation": artifact_location(s.path)}}
        ]
    if s.rule is not None:
        rule_ref: dict[str, Any] = {"id": s.rule}
        if s.rule in rule_index:
            rule_ref["index"] = rule_index[s.rule]
        notification["associatedRule"] = rule_ref
    notification["properties"] = {
        "reason": s.reason,
        "rule": s.rule,
        "level": s.level,
        "hint": s.hint,
    }
    return notification


def artifact_location(path: str, sep: str = os.sep) -> dict[str, str]:
    """A SARIF artifactLocation: relative paths against %SRCROOT%, absolute ones as file URIs."""
    posix = path.replace(sep, "/") if sep != "/" else path
    # "c:/x" is a drive only where "\\" separates paths; on POSIX it is a directory named "c:".
    if posix.startswith("/") or (sep == "\\" and _WINDOWS_DRIVE.match(posix)):
        absolute = posix if posix.startswith("/") else "/" + posix
        return {"uri": "file://" + _quote(absolute, safe="/:")}
    # "./x" and ".//x" are "x"; a leading "//" left in place would read as a host name.
    while posix.startswith(("./", "/")):
        posix = posix[1:] if posix.startswith("/") else posix[2:]
    # quote() leaves only unreserved characters and "/", so a ":" in the first segment cannot
    # be read as a scheme and spaces, "#", "?" and non-ASCII are escaped as RFC 3986 wants.
    return {"uri": _quote(posix, safe="/"), "uriBaseId": SRCROOT}


def _quote(path: str, safe: str) -> str:
    try:
        # A name os.fsdecode could not decode gets its original bytes back, which is the
        # file's real name on disk.
        return quote(path, safe=safe, errors="surrogateescape")
    except UnicodeEncodeError:
        return quote(path, safe=safe, errors="surrogatepass")
