"""``tinyarms hook install|uninstall|run``: the git pre-commit hook.

``install`` writes ``hooks/pre-commit`` (a stdlib-only client) into the repository's hooks
folder — honouring ``core.hooksPath`` and worktrees, through ``git rev-parse --git-path`` —
with this interpreter and this package's paths filled in. A hook that was already there keeps
working: it is moved aside and run first; ``uninstall`` puts it back.
``run`` is the same client for the pre-commit framework (``.pre-commit-hooks.yaml``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import tinyarms
from tinyarms import resources
from tinyarms.errors import ConfigError
from tinyarms.stores import repos

MARKER = "# tinyarms-hook"
CHAINED_SUFFIX = ".tinyarms-chained"
HOOK_MODE = 0o755  # executable: git runs hooks directly


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("install", "uninstall", "run"))


def template() -> Path:
    return resources.data_dir("hooks") / "pre-commit"


def _default_home() -> str:
    import platformdirs

    return platformdirs.user_state_dir("tinyarms", appauthor=False)


def hook_values() -> dict[str, str]:
    return {
        "PYTHON": sys.executable,
        "VERSION_FILE": str(Path(tinyarms.__file__).resolve()),
        "DEFAULT_HOME": _default_home(),
    }


def render_hook() -> str:
    text = template().read_text(encoding="utf-8")
    for key, value in hook_values().items():
        text = text.replace(f"@{key}@", value)
    return text


def hooks_dir(cwd: Path) -> Path:
    try:
        out = subprocess.run(["git", "rev-parse", "--git-path", "hooks"], cwd=cwd, capture_output=True, text=True,
                             check=True)
    except subprocess.CalledProcessError:
        raise ConfigError(["hook: not inside a git repository"]) from None
    path = Path(out.stdout.strip())
    return path if path.is_absolute() else (cwd / path).resolve()


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")[:300]
    except OSError:
        return False


def install(cwd: Path) -> str:
    folder = hooks_dir(cwd)
    folder.mkdir(parents=True, exist_ok=True)
    hook = folder / "pre-commit"
    chained = folder / ("pre-commit" + CHAINED_SUFFIX)
    note = ""
    if (hook.exists() or hook.is_symlink()) and not _is_ours(hook):
        if chained.exists():
            raise ConfigError([f"{hook}: exists, and so does {chained}; move one of them away first"])
        hook.rename(chained)
        note = f"; the existing hook was kept and runs first ({chained.name})"
    tmp = hook.with_name(".pre-commit.tinyarms-tmp")
    tmp.write_text(render_hook(), encoding="utf-8")
    tmp.chmod(HOOK_MODE)
    tmp.replace(hook)
    try:
        repos.add(cwd)  # a hooked repository is watched (lint-on-save) and deep-scanned weekly
    except ConfigError as exc:  # the hook works without it; say why it is not watched
        note += f"; not added to the watched repositories: {'; '.join(exc.problems)}"
    return f"installed {hook}{note}"


def uninstall(cwd: Path) -> str:
    folder = hooks_dir(cwd)
    hook = folder / "pre-commit"
    chained = folder / ("pre-commit" + CHAINED_SUFFIX)
    if not _is_ours(hook):
        return f"no tinyarms hook in {folder}"
    hook.unlink()
    if chained.exists() or chained.is_symlink():
        chained.rename(hook)
        return f"removed the tinyarms hook; restored the previous {hook}"
    return f"removed {hook}"


def run(args: argparse.Namespace) -> int:
    cwd = Path.cwd()
    if args.action == "run":
        env = {**os.environ, **{f"TINYARMS_HOOK_{k}": v for k, v in hook_values().items()}}
        return subprocess.run([sys.executable, "-IS", str(template())], env=env, check=False).returncode
    message = install(cwd) if args.action == "install" else uninstall(cwd)
    print(f"tinyarms: {message}", file=sys.stderr)
    return 0
