"""``tinyarms lsp`` as an editor meets it: a real LSP client over stdio, a real daemon."""

from __future__ import annotations

import ast
import os
import signal
from pathlib import Path

import attrs
import pytest
from lsprotocol import types as lsp

from tests.daemon.daemons import gone, wait_for
from tests.lsp.conftest import Editor
from tinyarms import suppress
from tinyarms.daemon import control

pytestmark = pytest.mark.asyncio

BAD = 'BRAND = "#ff0000"\nprint(BRAND)\n'
FIXED = "BRAND = theme.brand\nprint(BRAND)\n"


def colour_findings(found: object) -> list[lsp.Diagnostic]:
    return [d for d in found if d.code == "hardcoded-colors"]  # type: ignore[attr-defined]


async def test_unsaved_content_gets_a_diagnostic_at_the_right_range_and_a_fix_clears_it(
    editor: Editor, workspace: Path,
) -> None:
    (workspace / "app.py").write_text(FIXED)  # on disk: clean; the buffer is what counts
    uri = editor.open(workspace / "app.py", BAD)
    found = await editor.diagnostics(uri, colour_findings)
    [diagnostic] = found
    assert diagnostic.range == lsp.Range(lsp.Position(0, 9), lsp.Position(0, 16))  # #ff0000 in "..."
    assert diagnostic.severity == lsp.DiagnosticSeverity.Warning
    assert diagnostic.source == "tinyarms"
    assert "suggestion:" in diagnostic.message
    assert diagnostic.code_description is not None
    assert diagnostic.code_description.href.endswith("skills.md#rule-hardcoded-colors")  # the rule's own row
    editor.replace(uri, FIXED)
    assert list(await editor.diagnostics(uri, lambda d: not d)) == []


async def test_a_new_file_never_saved_is_linted_with_the_repository_config(editor: Editor, workspace: Path) -> None:
    (workspace / ".tinyarms.yaml").write_text("rules:\n  hardcoded-colors:\n    severity: error\n")
    uri = editor.open(workspace / "src" / "new.py", BAD)  # neither the file nor its folder exists
    [diagnostic] = await editor.diagnostics(uri, colour_findings)
    assert diagnostic.severity == lsp.DiagnosticSeverity.Error


async def test_code_actions_suppress_on_the_line_and_in_the_file_as_edits(editor: Editor, workspace: Path) -> None:
    text = 'A = "#ff0000"\nB = "#00ff00"\n'
    uri = editor.open(workspace / "palette_use.py", text)
    found = await editor.diagnostics(uri, lambda d: len(colour_findings(d)) == 2)
    first = min(found, key=lambda d: d.range.start.line)
    actions = await editor.client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), first.range, lsp.CodeActionContext([first])))
    assert actions is not None
    by_title = {a.title: a for a in actions}
    assert set(by_title) == {
        "Suppress hardcoded-colors on this line", "Suppress hardcoded-colors in this file",
        "Report hardcoded-colors here as a false positive", "Confirm this hardcoded-colors finding",
    }
    report = by_title["Report hardcoded-colors here as a false positive"]
    # lsprotocol's converter reads a CodeAction that has a command and no edit as a Command whose
    # command is the action's repr: read that back (the wire carries a proper CodeAction)
    sent = ast.literal_eval(report.command) if isinstance(report, lsp.Command) else attrs.asdict(report.command)
    assert sent["command"] == "tinyarms.feedback"
    assert sent["arguments"] == [uri, first.data["fingerprint"], "false-positive"]  # type: ignore[index]
    suppress_here = by_title["Suppress hardcoded-colors on this line"]
    assert isinstance(suppress_here, lsp.CodeAction)
    on_line = suppress_here.edit
    assert on_line is not None and on_line.changes is not None
    [edit] = on_line.changes[uri]
    assert edit.new_text == "# tinyarms: ignore[hardcoded-colors]\n" and edit.range.start == lsp.Position(0, 0)
    editor.edit(uri, on_line.changes[uri])
    [left] = await editor.diagnostics(uri, lambda d: len(colour_findings(d)) == 1)
    assert left.range.start.line == 2  # B, one line down under the new comment

    actions = await editor.client.text_document_code_action_async(lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), left.range, lsp.CodeActionContext([left])))
    assert actions is not None
    in_file = next(a for a in actions if isinstance(a, lsp.CodeAction) and a.title.endswith("in this file"))
    assert in_file.edit is not None and in_file.edit.changes is not None
    editor.edit(uri, in_file.edit.changes[uri])
    assert list(await editor.diagnostics(uri, lambda d: not colour_findings(d))) == []
    # the edits are the project's own syntax: suppress.py reads them back
    final = 'A = "#ff0000"\nB = "#00ff00"\n'
    lines = ["# tinyarms: ignore-file[hardcoded-colors]", "# tinyarms: ignore[hardcoded-colors]", *final.splitlines()]
    assert [(d.file_wide, d.ids) for d in suppress.parse(lines)] == [
        (True, frozenset({"hardcoded-colors"})), (False, frozenset({"hardcoded-colors"}))]


async def test_a_reported_false_positive_shows_as_a_hint_and_a_confirmation_is_recorded(
    editor: Editor, workspace: Path,
) -> None:
    uri = editor.open(workspace / "app.py", BAD)
    [diagnostic] = await editor.diagnostics(uri, colour_findings)
    assert isinstance(diagnostic.data, dict)
    reply = await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        "tinyarms.feedback", [uri, diagnostic.data["fingerprint"], "false-positive"]))
    assert reply["verdict"] == "false-positive" and reply["rule"] == "hardcoded-colors"
    [hint] = await editor.diagnostics(
        uri, lambda d: [x for x in colour_findings(d) if x.severity == lsp.DiagnosticSeverity.Hint])
    assert "false positive" in hint.message
    reply = await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        "tinyarms.feedback", [uri, diagnostic.data["fingerprint"], "confirmed"]))
    assert reply["verdict"] == "confirmed"
    [confirmed] = await editor.diagnostics(
        uri, lambda d: [x for x in colour_findings(d) if x.severity == lsp.DiagnosticSeverity.Warning])
    assert "(confirmed)" in confirmed.message
    with pytest.raises(Exception, match="no finding"):  # a stale fingerprint is an error reply, nothing written
        await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(
            "tinyarms.feedback", [uri, "0" * 16, "false-positive"]))


async def test_lint_the_workspace_publishes_for_files_on_disk(editor: Editor, workspace: Path) -> None:
    (workspace / "a.py").write_text(BAD)
    (workspace / "b.py").write_text(FIXED)
    reply = await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams("tinyarms.lintWorkspace"))
    assert reply["findings"] == 1 and reply["files"] == 2, reply
    [diagnostic] = await editor.diagnostics((workspace / "a.py").as_uri(), colour_findings)
    assert diagnostic.range.start == lsp.Position(0, 9)


async def test_a_daemon_killed_mid_session_is_replaced_and_the_session_goes_on(
    editor: Editor, workspace: Path, isolated_env: Path,
) -> None:
    uri = editor.open(workspace / "app.py", BAD)
    await editor.diagnostics(uri, colour_findings)
    pid = (control.read_pid(isolated_env) or {})["pid"]
    os.kill(pid, signal.SIGKILL)  # this test's daemon, by the pid its state directory names
    wait_for(lambda: gone(pid), 10, "the daemon to die")
    editor.replace(uri, FIXED)
    assert list(await editor.diagnostics(uri, lambda d: not d)) == []
    editor.replace(uri, BAD)
    await editor.diagnostics(uri, colour_findings)
    assert (control.read_pid(isolated_env) or {}).get("pid") not in (None, pid)


async def test_awkward_buffers_get_an_answer_and_never_end_the_session(
    editor: Editor, workspace: Path, tmp_path: Path,
) -> None:
    outside = tmp_path / "loose"  # no repository anywhere above (tmp_path is not in one)
    outside.mkdir()
    uri = editor.open(outside / "script.py", BAD)
    await editor.diagnostics(uri, colour_findings)

    binary = editor.open(workspace / "blob.py", "x = 1\n\x00\x01\x02")
    [skip] = await editor.diagnostics(binary, lambda d: d)
    assert skip.code == "binary" and skip.severity == lsp.DiagnosticSeverity.Information

    huge = editor.open(workspace / "huge.py", "x = 1\n" * 400_000)  # 2.4 MB, over the 1 MiB cap
    [skip] = await editor.diagnostics(huge, lambda d: d)
    assert skip.code == "too-large" and "not linted" in skip.message

    untitled = "untitled:Untitled-1"  # no path: nothing to lint, and no error
    editor.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(untitled, "python", 1, BAD)))

    fine = editor.open(workspace / "app.py", BAD)  # still serving
    await editor.diagnostics(fine, colour_findings)


async def test_a_skill_error_is_a_diagnostic_on_the_skill_file_at_its_line(editor: Editor, workspace: Path) -> None:
    skill = workspace / ".tinyarms" / "skills" / "team.yaml"
    skill.parent.mkdir(parents=True)
    skill.write_text("name: team\ndescription: ours\nrules:\n  - id: no-print\n    engine: nonsense\n")
    uri = editor.open(workspace / "app.py", BAD)
    problems = await editor.diagnostics(skill.as_uri(), lambda d: d)
    engine = [p for p in problems if "rules[0].engine" in p.message]
    assert [(p.range.start.line, p.severity) for p in engine] == [(4, lsp.DiagnosticSeverity.Error)], problems
    [here] = await editor.diagnostics(uri, lambda d: d)
    assert here.code == "config-error" and "could not lint" in here.message
    skill.unlink()  # fixed: the skill file's diagnostics go, the buffer is linted again
    editor.replace(uri, BAD)
    await editor.diagnostics(skill.as_uri(), lambda d: not d)
    await editor.diagnostics(uri, colour_findings)


async def test_shutdown_ends_the_server_cleanly(editor: Editor, workspace: Path) -> None:
    uri = editor.open(workspace / "app.py", BAD)
    await editor.diagnostics(uri, colour_findings)
    await editor.client.shutdown_session()
    server = editor.client._server
    assert server is not None and server.returncode == 0


async def test_a_skill_broken_mid_session_is_shown_on_its_file_and_linting_goes_on(
    editor: Editor, workspace: Path,
) -> None:
    uri = editor.open(workspace / "app.py", BAD)
    await editor.diagnostics(uri, colour_findings)
    skill = workspace / ".tinyarms" / "skills" / "team.yaml"
    skill.parent.mkdir(parents=True)
    skill.write_text("name: team\ndescription: ours\nrules:\n  - id: no-print\n    engine: nonsense\n")
    editor.replace(uri, BAD + "\n")
    problems = await editor.diagnostics(skill.as_uri(), lambda d: d)
    assert any(p.range.start.line == 4 and "engine" in p.message for p in problems), problems
    await editor.diagnostics(uri, colour_findings)  # the previous config keeps linting the buffer
