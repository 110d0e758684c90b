"""A daemon's reply as the editor's diagnostics: each finding at its range, with its suggestion,
model and feedback, linked to the rule's documentation; a file the daemon could not lint or did
not lint; and config or skill problems on the file and line they name.

Pure conversions: the server (``server``) decides what to publish where.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

SOURCE = "tinyarms"
_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
             "info": lsp.DiagnosticSeverity.Information}
# A config or skill problem as ConfigError words it: "path:line: field: what is wrong"
_PROBLEM = re.compile(r"(?P<path>[^\n]+?\.(?:ya?ml)):(?P<line>\d+):\s*(?P<message>.*)", re.DOTALL)


def of_reply(reply: dict[str, Any], doc: TextDocument, root: Path, rel: str,
             docs_url: str | None) -> tuple[list[lsp.Diagnostic], dict[str, dict[str, Any]], list[str]]:
    """The diagnostics of the buffer at ``rel``, its findings by fingerprint, and the config and
    skill problems the reply names (an error's, or a reload warning's)."""
    diagnostics: list[lsp.Diagnostic] = []
    findings: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    if not reply.get("ok"):
        error = reply.get("error") or {}
        problems = list(error.get("problems") or [])
        message = error.get("message") or "the daemon could not lint this file"
        diagnostics.append(lsp.Diagnostic(
            _range(0, 0, 0, 0), f"tinyarms could not lint this file: {message}", lsp.DiagnosticSeverity.Error,
            code=error.get("code"), source=SOURCE))
    else:
        result = reply["result"]
        for finding in result.get("findings", []):
            if finding.get("path") != rel:
                continue
            findings[finding["fingerprint"]] = finding
            diagnostics.append(diagnostic(doc, root, finding, docs_url))
        for skipped in result.get("skipped", []):
            if skipped.get("rule") is None and skipped.get("path") in (rel, None):
                hint = f" ({skipped['hint']})" if skipped.get("hint") else ""
                diagnostics.append(lsp.Diagnostic(
                    _range(0, 0, 0, 0), f"not linted: {skipped['message']}{hint}",
                    lsp.DiagnosticSeverity.Information, code=skipped.get("reason"), source=SOURCE))
        for warning in result.get("warnings", []):
            problems += warning.split("\n")[1:] or [warning]
    return diagnostics, findings, problems


def diagnostic(doc: TextDocument, root: Path, finding: dict[str, Any], docs_url: str | None) -> lsp.Diagnostic:
    start = ServerTextPosition(max(0, finding["line"] - 1), max(0, finding["column"] - 1))
    end = ServerTextPosition(max(0, finding["end_line"] - 1), max(0, finding["end_column"] - 1))
    where = doc.range_to_client_units(ServerTextRange(start, max(start, end)))
    false_positive = finding.get("feedback") == "false-positive"
    severity = lsp.DiagnosticSeverity.Hint if false_positive else _SEVERITY.get(
        finding.get("severity", "warning"), lsp.DiagnosticSeverity.Warning)
    message = finding["message"]
    if finding.get("suggestion"):
        message += f"\nsuggestion: {finding['suggestion']}"
    if finding.get("engine") == "model":
        message += f"\n(model {finding.get('model')}, confidence {finding.get('confidence', 0):.2f})"
    if false_positive:
        message += "\n(reported as a false positive: it fails nothing)"
    elif finding.get("feedback") == "confirmed":
        message += "\n(confirmed)"
    href = rule_docs(root, finding.get("skill") or "", finding.get("rule") or "", docs_url)
    return lsp.Diagnostic(
        where, message, severity, code=finding["rule"], source=SOURCE,
        code_description=lsp.CodeDescription(href) if href else None,
        data={"fingerprint": finding["fingerprint"], "rule": finding["rule"]},
    )


def rule_docs(root: Path, skill: str, rule: str, docs_url: str | None) -> str | None:
    """A repository skill's own YAML file, else the rules reference at the rule's anchor."""
    own = root / ".tinyarms" / "skills" / f"{skill}.yaml"
    if skill and own.is_file():
        return own.as_uri()
    if docs_url is None:
        return None
    return f"{docs_url}#rule-{rule}" if rule else docs_url


def config_problems(root: Path, problems: list[str]) -> dict[str, list[lsp.Diagnostic]]:
    """Config and skill errors as diagnostics, by the URI of the file they name (files that do
    not exist, and problems that name no file and line, are left out)."""
    found: dict[str, list[lsp.Diagnostic]] = {}
    for problem in problems:
        match = _PROBLEM.match(problem.strip())
        if match is None:
            continue
        path = Path(match["path"])
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            continue
        line = max(0, int(match["line"]) - 1)
        found.setdefault(path.as_uri(), []).append(lsp.Diagnostic(
            _range(line, 0, line, 1000), match["message"].strip(), lsp.DiagnosticSeverity.Error,
            code="config-error", source=SOURCE))
    return found


def _range(line: int, column: int, end_line: int, end_column: int) -> lsp.Range:
    return lsp.Range(lsp.Position(line, column), lsp.Position(end_line, end_column))
