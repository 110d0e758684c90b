"""The hook's path imports only the standard library: with nothing staged, and when it talks to a
warm daemon (``python -X importtime`` on the installed hook file).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.hooks.commits import COLOURED, write
from tinyarms.daemon import control


def _installed_hook_command(repo: Path) -> list[str]:
    hook = repo / ".git" / "hooks" / "pre-commit"
    shebang = hook.read_text().splitlines()[0]
    python, flags = shebang[2:].split()
    assert Path(python).is_file() and flags == "-IS"
    return [python, "-X", "importtime", "-I", "-S", str(hook)]


def _imported(log: str) -> set[str]:
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ("tinyarms", "pydantic", "pydantic_core", "yaml")}


def test_the_hook_imports_only_the_stdlib_with_nothing_staged(hooked: Path) -> None:
    done = subprocess.run(_installed_hook_command(hooked), cwd=hooked, capture_output=True, text=True, timeout=30,
                          check=False)

    assert done.returncode == 0, done.stderr
    modules = _imported(done.stderr)
    assert {"_json", "_socket", "os"} <= modules  # the log is real
    assert _heavy(modules) == set()
    assert not {"json", "socket", "subprocess"} & modules  # the C modules under them are enough


def test_the_hook_imports_only_the_stdlib_when_it_talks_to_the_daemon(hooked: Path, home: Path) -> None:
    write(hooked, "Alert.tsx", COLOURED)
    command = _installed_hook_command(hooked)
    subprocess.run(command, cwd=hooked, capture_output=True, timeout=30, check=False)  # starts the daemon
    assert control.is_locked(home)

    done = subprocess.run(command, cwd=hooked, capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 1, done.stderr
    assert "hardcoded-colors" in done.stdout and "daemon unavailable" not in done.stderr
    modules = _imported(done.stderr)
    assert _heavy(modules) == set()
    assert not {"json", "socket", "subprocess"} & modules  # a warm daemon costs the hook no more
