"""``tinyarms lsp``: findings in the editor while typing, from the daemon.

The editor's buffer (not the file on disk) is sent to the daemon as the file at its real path
in its repository, so the repository's config, skills and aliases apply; the daemon answers
Level 0 at once and model findings whose answers are cached. Model questions not yet answered
are queued in the daemon with no deadline; the daemon pushes an event when they are answered
(``op: subscribe``) and the buffers they concern are linted again, with no request from the
editor and no polling. A reply becomes diagnostics in ``diagnostics``; the quick fixes and the
feedback command on a finding are ``actions``'.

Imported only by ``tinyarms lsp``: pygls and lsprotocol are the ``lsp`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from tinyarms import __version__
from tinyarms.lsp import actions, diagnostics
from tinyarms.lsp.actions import FEEDBACK_COMMAND, Linted
from tinyarms.lsp.link import DaemonUnavailable, Link

DEBOUNCE = 0.03  # seconds after a keystroke before its lint: a burst of keys is one lint
BUDGET = 0.5  # seconds of model time per lint: answers already cached; the rest go to the background
MAX_SENT = 8 << 20  # bytes: a buffer over this is not sent (the daemon reports it too large)
RELINTS_PER_VERSION = 3  # "answered" events that may re-lint one version of a buffer
LINT_WORKSPACE_COMMAND = "tinyarms.lintWorkspace"
_DOCS = Path(__file__).resolve().parents[2] / "docs" / "skills.md"  # in a source checkout


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
        found, findings, problems = diagnostics.of_reply(reply, doc, root, rel, self.docs_url)
        self.linted[uri] = Linted(doc.version, root, rel, text.splitlines(), findings)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, found, version=doc.version))
        self.publish_config_problems(root, problems)

    def publish_config_problems(self, root: Path, problems: list[str]) -> None:
        """Config and skill errors as diagnostics on the file and line they name; files that had
        some and have none now are cleared."""
        found = diagnostics.config_problems(root, problems)
        for uri in self.config_uris.get(root, set()) - set(found):
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))
        for uri, shown in found.items():
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, shown))
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
        return actions.code_actions(params, state, doc)

    def record_feedback(self, uri: str, fingerprint: str, verdict: str) -> dict[str, Any]:
        """``tinyarms feedback`` on a finding of the buffer as last linted (on a worker thread)."""
        return actions.record_feedback(self.linted.get(uri), uri, fingerprint, verdict)

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
                shown = [diagnostics.diagnostic(doc, root, f, self.docs_url) for f in found]
                self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, shown))
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
