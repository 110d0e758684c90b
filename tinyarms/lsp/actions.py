"""What the editor can do about a finding of a buffer: suppress it on its line or in its file
(``suppressions``' edits), or tell tinyarms it is a false positive or confirmed (``tinyarms
feedback``, recorded against the buffer as last linted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from tinyarms.lsp import suppressions
from tinyarms.lsp.diagnostics import SOURCE

FEEDBACK_COMMAND = "tinyarms.feedback"


@dataclass(slots=True)
class Linted:
    """What the last lint of a buffer said, for code actions and feedback."""

    version: int | None
    root: Path
    rel: str
    lines: list[str]
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)  # by fingerprint


def code_actions(params: lsp.CodeActionParams, state: Linted, doc: TextDocument) -> list[lsp.CodeAction]:
    """The quick fixes for the diagnostics ``params`` names that are findings of ``state``."""
    uri = params.text_document.uri
    lines = doc.source.splitlines()
    actions = []
    for diagnostic in params.context.diagnostics:
        data = diagnostic.data if isinstance(diagnostic.data, dict) else None
        if diagnostic.source != SOURCE or data is None or data.get("fingerprint") not in state.findings:
            continue
        rule, line = data["rule"], diagnostic.range.start.line
        for title, edit in (
            (f"Suppress {rule} on this line", suppressions.on_line(lines, line, rule, state.rel)),
            (f"Suppress {rule} in this file", suppressions.in_file(lines, rule, state.rel)),
        ):
            if edit is not None:
                actions.append(lsp.CodeAction(
                    title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                    edit=lsp.WorkspaceEdit(changes={uri: [text_edit(doc, edit)]})))
        for title, verdict in ((f"Report {rule} here as a false positive", "false-positive"),
                               (f"Confirm this {rule} finding", "confirmed")):
            actions.append(lsp.CodeAction(
                title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                command=lsp.Command(title, FEEDBACK_COMMAND, arguments=[uri, data["fingerprint"], verdict])))
    return actions


def text_edit(doc: TextDocument, edit: suppressions.Edit) -> lsp.TextEdit:
    where = doc.range_to_client_units(ServerTextRange(
        ServerTextPosition(edit.line, edit.column), ServerTextPosition(edit.end_line, edit.end_column)))
    return lsp.TextEdit(where, edit.text)


def record_feedback(state: Linted | None, uri: str, fingerprint: str, verdict: str) -> dict[str, Any]:
    """``tinyarms feedback`` on a finding of the buffer as last linted (on a worker thread)."""
    from tinyarms.finding import CONFIRMED, FALSE_POSITIVE, Finding
    from tinyarms.stores import feedback

    if verdict not in (FALSE_POSITIVE, CONFIRMED):
        raise ValueError(f"verdict must be {FALSE_POSITIVE} or {CONFIRMED}, not {verdict!r}")
    found = state.findings.get(fingerprint) if state is not None else None
    if state is None or found is None:
        raise ValueError(f"no finding {fingerprint} in {uri} as last linted; it may have changed since")
    finding = Finding.from_dict(found)
    kind = _claim_kind(state, finding)
    with feedback.Store() as store:
        entry = store.record_finding(state.root, finding, state.rel, state.lines, verdict, kind=kind)
    return {"id": entry.id, "fingerprint": entry.fingerprint, "verdict": verdict, "rule": finding.rule}


def _claim_kind(state: Linted, finding: Any) -> str | None:
    """The kind of claim a model (or finder) finding made, so feedback settles its like (as ``tinyarms feedback``)."""
    from tinyarms.finding import CLAIM_ENGINES

    if finding.engine not in CLAIM_ENGINES:
        return None
    from tinyarms.levels.questions import claim_kind
    from tinyarms.ruleset import load_settings
    from tinyarms.source import Source, make_source

    settings = load_settings(state.root)
    rule = next((r for r in settings.ruleset.rules if r.id == finding.rule), None)
    raw = "\n".join(state.lines).encode()
    src = make_source(state.rel, state.rel, raw, len(raw) + 1)
    if rule is None or not isinstance(src, Source):
        return None
    return claim_kind(src, rule, finding.line, settings.ruleset.root, finding.column)
