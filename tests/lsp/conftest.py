"""A real ``tinyarms lsp`` process driven by a real LSP client over stdio (pytest-lsp), with the
daemon it starts on a Unix socket in the test's state directory. The fixture shuts the server
down and stops that daemon (by its state directory, never by a process name)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, make_test_lsp_client

from tests.daemon.daemons import stop_daemons

LEVEL0 = {"TINYARMS_MODELS__BACKEND": "none", "TINYARMS_DAEMON__REQUEST_TIMEOUT": "5"}
WAIT = 30.0  # seconds for a diagnostic to arrive; a warm daemon answers in milliseconds


class Editor:
    """The client, with what a test does in an editor: open, type, wait for diagnostics."""

    def __init__(self, client: LanguageClient, home: Path) -> None:
        self.client = client
        self.home = home
        self.versions: dict[str, int] = {}

    def open(self, path: Path, text: str, language: str = "python") -> str:
        uri = path.as_uri()
        self.versions[uri] = 1
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri, language, 1, text)))
        return uri

    def replace(self, uri: str, text: str) -> None:
        """The whole buffer, as one change."""
        self.versions[uri] += 1
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(self.versions[uri], uri),
            [lsp.TextDocumentContentChangeWholeDocument(text)]))

    def edit(self, uri: str, edits: Sequence[lsp.TextEdit]) -> None:
        """Apply ``edits`` as the editor would apply a code action's."""
        self.versions[uri] += 1
        changes = [lsp.TextDocumentContentChangePartial(e.range, e.new_text) for e in
                   sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True)]
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(self.versions[uri], uri), changes))

    async def diagnostics(self, uri: str, until: Callable[[Sequence[lsp.Diagnostic]], Any],
                          timeout: float = WAIT) -> Sequence[lsp.Diagnostic]:
        """The diagnostics of ``uri`` once ``until`` holds for them (checked at each publish)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.client.diagnostics.get(uri)
            if found is not None and until(found):
                return found
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"not within {timeout} s; last diagnostics of {uri}: {found}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.client.wait_for_notification("textDocument/publishDiagnostics"), left)


async def start_editor(home: Path, workspace: Path, env: dict[str, str]) -> Editor:
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "tinyarms", "lsp", env={**os.environ, **env})
    await client.initialize_session(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=workspace.as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(workspace.as_uri(), workspace.name)],
        initialization_options={"debounce": 0.01}))
    return Editor(client, home)


@pytest.fixture
def workspace(repo: Path) -> Path:
    return repo


@pytest.fixture
def server_env() -> dict[str, str]:
    return dict(LEVEL0)


@pytest_asyncio.fixture
async def editor(isolated_env: Path, workspace: Path, server_env: dict[str, str]) -> AsyncIterator[Editor]:
    editor = await start_editor(isolated_env, workspace, server_env)
    try:
        yield editor
    finally:
        try:
            server = editor.client._server
            if server is not None and server.returncode is None:  # not shut down by the test itself
                await asyncio.wait_for(editor.client.shutdown_session(), 20)
        finally:
            await editor.client.stop()
            await asyncio.to_thread(stop_daemons, isolated_env)
