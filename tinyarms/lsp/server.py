"""``tinyarms lsp``: findings in the editor while typing, from the daemon.

The editor's buffer (not the file on disk) is sent to the daemon as the file at its real path
in its repository, so the repository's config, skills and aliases apply; the daemon answers
Level 0 at once and model findings whose answers are cached. Model questions not yet answered
are queued in the daemon with no deadline; the daemon pushes an event when they are answered
(``op: subscribe``) and the buffers they concern are linted again, with no request from the
editor and no polling.

Imported only by ``tinyarms lsp``: pygls and lsprotocol are the ``lsp`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from tinyarms import __version__
from tinyarms.lsp import suppressions
from tinyarms.lsp.link import DaemonUnavailable, Link

SOURCE = "tinyarms"
DEBOUNCE = 0.03  # seconds after a keystroke before its lint: a burst of keys is one lint
BUDGET = 0.5  # seconds of model time per lint: answers already cached; the rest go to the background
MAX_SENT = 8 << 20  # bytes: a buffer over this is not sent (the daemon reports it too large)
RELINTS_PER_VERSION = 3  # "answered" events that may re-lint one version of a buffer
FEEDBACK_COMMAND = "tinyarms.feedback"
LINT_WORKSPACE_COMMAND = "tinyarms.lintWorkspace"
_SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
             "info": lsp.DiagnosticSeverity.Information}
# A config or skill problem as ConfigError words it: "path:line: field: what is wrong"
_PROBLEM = re.compile(r"(?P<path>[^\n]+?\.(?:ya?ml)):(?P<line>\d+):\s*(?P<message>.*)", re.DOTALL)
_DOCS = Path(__file__).resolve().parents[2] / "docs" / "skills.md"  # in a source checkout


@dataclass(slots=True)
class Linted:
    """What the last lint of a buffer said, for code actions and feedback."""

    version: int | None
    root: Path
    rel: str
    lines: list[str]
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)  # by fingerprint


class TinyarmsServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("tinyarms", __version__)
        from tinyarms.paths import state_dir

        self.link = Link(state_dir(), self._event)
        self.budget = BUDGET
        self.debounce = DEBOUNCE
        self.docs_url: str | None = _DOCS.as_uri() if _DOCS.is_file() else None
        self.linted: dict[str, Linted] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.relints: dict[str, tuple[int | None, int]] = {}
        self.config_uris: dict[Path, set[str]] = {}  # per project root: skill and config files with diagnostics
        self.workspace_uris: set[str] = set()  # files the workspace lint published diagnostics for
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.warned: set[str] = set()

    # -- where a buffer belongs -----------------------------------------------------------------

    @staticmethod
    def target(uri: str) -> tuple[Path, str] | None:
        """(project root, path from it) of a file URI; a file outside any repository is its own
        folder's project. None: not a file (an unsaved "untitled:" buffer)."""
        if urlparse(uri).scheme != "file":
            return None
        path = Path(to_fs_path(uri) or "")
        if not path.is_absolute():
            return None
        from tinyarms.config import find_root

        existing = next((p for p in path.parents if p.is_dir()), None)  # a new file's folder may not exist yet
        root = (find_root(existing) if existing is not None else None) or path.parent
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = path.name
            root = path.parent
        return root, rel

    # -- linting --------------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float) -> None:
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.ensure_future(self.lint_document(uri, delay))
        self.pending[uri] = task
        task.add_done_callback(lambda t: self.pending.pop(uri, None) if self.pending.get(uri) is t else None)

    async def lint_document(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        doc = self.workspace.text_documents.get(uri)
        where = self.target(uri)
        if doc is None or where is None:
            return
        root, rel = where
        version, text = doc.version, doc.source
        raw = text.encode("utf-8", "surrogatepass")
        try:
            reply = await asyncio.to_thread(
                self.link.lint_buffer, root, rel, raw if len(raw) <= MAX_SENT else None, len(raw), self.budget)
        except DaemonUnavailable as exc:
            self._warn_once("daemon", f"tinyarms: {exc}", lsp.MessageType.Error)
            return
        current = self.workspace.text_documents.get(uri)
        if current is None or current.version != version:
            return  # edited meanwhile: the lint of the newer version publishes
        self.publish(uri, current, root, rel, text, reply)

    def publish(self, uri: str, doc: TextDocument, root: Path, rel: str, text: str, reply: dict[str, Any]) -> None:
        lines = text.splitlines()
        state = Linted(doc.version, root, rel, lines)
        diagnostics: list[lsp.Diagnostic] = []
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
                state.findings[finding["fingerprint"]] = finding
                diagnostics.append(self.diagnostic(doc, root, finding))
            for skipped in result.get("skipped", []):
                if skipped.get("rule") is None and skipped.get("path") in (rel, None):
                    hint = f" ({skipped['hint']})" if skipped.get("hint") else ""
                    diagnostics.append(lsp.Diagnostic(
                        _range(0, 0, 0, 0), f"not linted: {skipped['message']}{hint}",
                        lsp.DiagnosticSeverity.Information, code=skipped.get("reason"), source=SOURCE))
            for warning in result.get("warnings", []):
                problems += warning.split("\n")[1:] or [warning]
        self.linted[uri] = state
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, diagnostics, version=doc.version))
        self.publish_config_problems(root, problems)

    def diagnostic(self, doc: TextDocument, root: Path, finding: dict[str, Any]) -> lsp.Diagnostic:
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
        href = self.rule_docs(root, finding.get("skill") or "", finding.get("rule") or "")
        return lsp.Diagnostic(
            where, message, severity, code=finding["rule"], source=SOURCE,
            code_description=lsp.CodeDescription(href) if href else None,
            data={"fingerprint": finding["fingerprint"], "rule": finding["rule"]},
        )

    def rule_docs(self, root: Path, skill: str, rule: str = "") -> str | None:
        """A repository skill's own YAML file, else the rules reference at the rule's anchor."""
        own = root / ".tinyarms" / "skills" / f"{skill}.yaml"
        if skill and own.is_file():
            return own.as_uri()
        if self.docs_url is None:
            return None
        return f"{self.docs_url}#rule-{rule}" if rule else self.docs_url

    def publish_config_problems(self, root: Path, problems: list[str]) -> None:
        """Config and skill errors as diagnostics on the file and line they name; files that had
        some and have none now are cleared."""
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
        for uri in self.config_uris.get(root, set()) - set(found):
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))
        for uri, diagnostics in found.items():
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, diagnostics))
        self.config_uris[root] = set(found)

    # -- events from the daemon -----------------------------------------------------------------

    def _event(self, event: dict[str, Any]) -> None:
        """On the link's thread: an event the daemon pushed."""
        loop = self.event_loop
        if event.get("event") != "answered" or loop is None or loop.is_closed():
            return
        paths = set(event.get("paths") or [])
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.answered, paths)

    def answered(self, paths: set[str]) -> None:
        for uri, state in list(self.linted.items()):
            if state.rel not in paths or uri not in self.workspace.text_documents:
                continue
            version, count = self.relints.get(uri, (None, 0))
            count = count + 1 if version == state.version else 1
            if count > RELINTS_PER_VERSION:
                continue  # answers that keep failing must not re-lint forever
            self.relints[uri] = (state.version, count)
            self.schedule(uri, 0)

    # -- code actions and commands --------------------------------------------------------------

    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        state = self.linted.get(uri)
        doc = self.workspace.text_documents.get(uri)
        if state is None or doc is None:
            return []
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
                        edit=lsp.WorkspaceEdit(changes={uri: [self.text_edit(doc, edit)]})))
            for title, verdict in ((f"Report {rule} here as a false positive", "false-positive"),
                                   (f"Confirm this {rule} finding", "confirmed")):
                actions.append(lsp.CodeAction(
                    title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                    command=lsp.Command(title, FEEDBACK_COMMAND, arguments=[uri, data["fingerprint"], verdict])))
        return actions

    @staticmethod
    def text_edit(doc: TextDocument, edit: suppressions.Edit) -> lsp.TextEdit:
        where = doc.range_to_client_units(ServerTextRange(
            ServerTextPosition(edit.line, edit.column), ServerTextPosition(edit.end_line, edit.end_column)))
        return lsp.TextEdit(where, edit.text)

    def record_feedback(self, uri: str, fingerprint: str, verdict: str) -> dict[str, Any]:
        """``tinyarms feedback`` on a finding of the buffer as last linted (on a worker thread)."""
        from tinyarms.finding import CONFIRMED, FALSE_POSITIVE, Finding
        from tinyarms.stores import feedback

        if verdict not in (FALSE_POSITIVE, CONFIRMED):
            raise ValueError(f"verdict must be {FALSE_POSITIVE} or {CONFIRMED}, not {verdict!r}")
        state = self.linted.get(uri)
        found = state.findings.get(fingerprint) if state is not None else None
        if state is None or found is None:
            raise ValueError(f"no finding {fingerprint} in {uri} as last linted; it may have changed since")
        finding = Finding.from_dict(found)
        kind = _claim_kind(state, finding)
        with feedback.Store() as store:
            entry = store.record_finding(state.root, finding, state.rel, state.lines, verdict, kind=kind)
        return {"id": entry.id, "fingerprint": entry.fingerprint, "verdict": verdict, "rule": finding.rule}

    async def lint_workspace(self) -> dict[str, Any]:
        folders = [to_fs_path(f.uri) for f in self.workspace.folders.values()] or [self.workspace.root_path]
        roots = [Path(f) for f in folders if f]
        published: set[str] = set()
        findings = files = 0
        for root in roots:
            reply = await asyncio.to_thread(self.link.lint_paths, root, [str(root)], self.budget)
            if not reply.get("ok"):
                error = reply.get("error") or {}
                self.publish_config_problems(root, list(error.get("problems") or []))
                raise ValueError(f"{root}: {error.get('message', 'the lint failed')}")
            result = reply["result"]
            files += result["stats"].get("files", 0)
            by_file: dict[str, list[dict[str, Any]]] = {}
            for finding in result["findings"]:
                by_file.setdefault(finding["path"], []).append(finding)
            for path, found in by_file.items():
                uri = (root / path).as_uri()
                findings += len(found)
                if uri in self.workspace.text_documents:
                    continue  # an open buffer's diagnostics come from the buffer, not the disk
                doc = TextDocument(uri, (root / path).read_text(encoding="utf-8", errors="replace"))
                diagnostics = [self.diagnostic(doc, root, f) for f in found]
                self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, diagnostics))
                published.add(uri)
        for uri in self.workspace_uris - published:
            if uri not in self.workspace.text_documents:
                self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))
        self.workspace_uris = published
        return {"roots": [str(r) for r in roots], "files": files, "findings": findings}

    def _warn_once(self, key: str, message: str, kind: lsp.MessageType) -> None:
        self.window_log_message(lsp.LogMessageParams(kind, message))
        if key not in self.warned:
            self.warned.add(key)
            self.window_show_message(lsp.ShowMessageParams(kind, message))


def _range(line: int, column: int, end_line: int, end_column: int) -> lsp.Range:
    return lsp.Range(lsp.Position(line, column), lsp.Position(end_line, end_column))


def _claim_kind(state: Linted, finding: Any) -> str | None:
    """The kind of claim a model finding made, so feedback settles its like (as ``tinyarms feedback``)."""
    if finding.engine != "model":
        return None
    from tinyarms.levels.model import claim_kind
    from tinyarms.ruleset import load_settings
    from tinyarms.source import Source, make_source

    settings = load_settings(state.root)
    rule = next((r for r in settings.ruleset.rules if r.id == finding.rule), None)
    raw = "\n".join(state.lines).encode()
    src = make_source(state.rel, state.rel, raw, len(raw) + 1)
    if rule is None or not isinstance(src, Source):
        return None
    return claim_kind(src, rule, finding.line, settings.ruleset.root, finding.column)


def build() -> TinyarmsServer:
    server = TinyarmsServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: TinyarmsServer, params: lsp.InitializeParams) -> None:
        ls.event_loop = asyncio.get_running_loop()
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        if isinstance(options.get("budget"), int | float) and options["budget"] > 0:
            ls.budget = float(options["budget"])
        if isinstance(options.get("debounce"), int | float) and options["debounce"] >= 0:
            ls.debounce = float(options["debounce"])
        if isinstance(options.get("docsUrl"), str):
            ls.docs_url = options["docsUrl"].rstrip("/") or None

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TinyarmsServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TinyarmsServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, ls.debounce)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: TinyarmsServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TinyarmsServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.linted.pop(uri, None)
        ls.relints.pop(uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: TinyarmsServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return ls.code_actions(params)

    @server.command(FEEDBACK_COMMAND)
    async def give_feedback(ls: TinyarmsServer, *args: Any) -> dict[str, Any]:
        if not (isinstance(args, tuple) and [type(a) for a in args] == [str, str, str]):
            raise ValueError(f"{FEEDBACK_COMMAND} takes [uri, fingerprint, verdict], not {list(args)!r}")
        uri, fingerprint, verdict = args
        result = await asyncio.to_thread(ls.record_feedback, uri, fingerprint, verdict)
        ls.schedule(uri, 0)  # the verdict shows at once: a false positive becomes a hint
        return result

    @server.command(LINT_WORKSPACE_COMMAND)
    async def lint_workspace(ls: TinyarmsServer, *args: Any) -> dict[str, Any]:
        return await ls.lint_workspace()

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: TinyarmsServer, params: None) -> None:
        for task in ls.pending.values():
            task.cancel()
        threading.Thread(target=ls.link.close, daemon=True).start()

    return server


def main() -> int:
    server = build()
    server.start_io()
    server.link.close()
    return 0
