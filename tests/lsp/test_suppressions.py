"""The suppression edits the code actions offer, read back by the project's own parser."""

from __future__ import annotations

import subprocess
import sys

from tinyarms import suppress
from tinyarms.finding import Finding
from tinyarms.lsp import suppressions
from tinyarms.lsp.suppressions import Edit


def applied(lines: list[str], edit: Edit) -> list[str]:
    text = "\n".join(lines) + "\n"
    starts = [0]
    for line in text.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    a, b = starts[edit.line] + edit.column, starts[edit.end_line] + edit.end_column
    return (text[:a] + edit.text + text[b:]).rstrip("\n").split("\n")


def silenced(lines: list[str], line: int, rule: str) -> bool:
    finding = Finding("x", line, 1, line, 2, rule, "s", "warning", "m")
    kept, _ = suppress.apply([finding], suppress.parse(lines))
    return not kept


def test_on_line_puts_a_comment_of_its_own_above_with_the_same_indent() -> None:
    lines = ["def f():", "    return 4500"]
    edit = suppressions.on_line(lines, 1, "magic-numbers", "src/app.py")
    assert edit == Edit(1, 0, 1, 0, "    # tinyarms: ignore[magic-numbers]\n")
    after = applied(lines, edit)
    assert after == ["def f():", "    # tinyarms: ignore[magic-numbers]", "    return 4500"]
    assert silenced(after, 3, "magic-numbers") and not silenced(after, 3, "file-size")


def test_a_directive_above_takes_one_more_id_and_one_that_covers_already_gives_no_edit() -> None:
    lines = ["  // tinyarms: ignore[magic-numbers]", "  f(4500, '#fff');"]
    edit = suppressions.on_line(lines, 1, "hardcoded-colors", "a.ts")
    assert edit is not None
    after = applied(lines, edit)
    assert after[0] == "  // tinyarms: ignore[hardcoded-colors, magic-numbers]"
    assert silenced(after, 2, "hardcoded-colors") and silenced(after, 2, "magic-numbers")
    assert suppressions.on_line(after, 1, "magic-numbers", "a.ts") is None


def test_in_file_goes_after_a_shebang_and_uses_the_language_comment() -> None:
    lines = ["#!/usr/bin/env python3", "x = 1"]
    edit = suppressions.in_file(lines, "file-size", "tool.py")
    assert edit == Edit(1, 0, 1, 0, "# tinyarms: ignore-file[file-size]\n")
    coded = suppressions.in_file(["#!/usr/bin/env python3", "# -*- coding: latin-1 -*-", "x = 1"], "file-size", "t.py")
    assert coded is not None and coded.line == 2
    css = suppressions.in_file([".a { color: #fff; }"], "hardcoded-colors", "site.css")
    assert css is not None and css.text == "/* tinyarms: ignore-file[hardcoded-colors] */\n"
    after = applied([".a { color: #fff; }"], css)
    assert silenced(after, 2, "hardcoded-colors")
    extended = suppressions.in_file(after, "magic-numbers", "site.css")
    assert extended is not None
    assert applied(after, extended)[0] == "/* tinyarms: ignore-file[hardcoded-colors, magic-numbers] */"
    assert suppressions.in_file(after, "hardcoded-colors", "site.css") is None


def test_the_hook_path_never_imports_the_language_server_libraries() -> None:
    code = ("import sys; from tinyarms import cli, client; cli.build_parser(None); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol', 'cattrs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
