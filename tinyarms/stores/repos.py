"""The repositories the daemon watches (lint-on-save) and deep-scans: ``<state dir>/repos.json``.

The file is a JSON list of absolute paths, each the top level of a git work tree (the folder git
runs the pre-commit hook in, so the daemon names files exactly as the hook does). ``tinyarms repo
add`` and ``tinyarms hook install`` add to it, ``repo remove`` takes away; the daemon notices a
change by the file's stat, without a restart. Writes go to a temp file renamed over the old one,
under a lock file, so a reader never sees half a file and two writers never lose an update.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tinyarms.errors import ConfigError
from tinyarms.paths import state_dir

FILE_NAME = "repos.json"


def registry_path(home: Path | None = None) -> Path:
    return (home or state_dir()) / FILE_NAME


def read(home: Path | None = None) -> list[Path]:
    """The registered repositories, in the file's order; [] when there is no file yet."""
    path = registry_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError as exc:
        raise ConfigError([(f"{path}: line {getattr(exc, 'lineno', '?')}: not valid JSON ({exc}); "
                            "fix it, or delete it and `tinyarms repo add` your repositories again")]) from None
    if not isinstance(data, list) or not all(isinstance(item, str) and item for item in data):
        raise ConfigError([(f"{path}: expected a JSON list of absolute paths; "
                            "fix it, or delete it and `tinyarms repo add` your repositories again")])
    return [Path(item) for item in data]


def stamp(home: Path | None = None) -> tuple[int, int, int] | None:
    """What changes when the file does (inode, mtime, size); None without a file. A rename-over
    always changes the inode, so two writes within the clock's resolution are told apart."""
    try:
        st = registry_path(home).stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def top_level(path: Path) -> Path:
    """The top of the git work tree ``path`` is in; a usage error when it is in none."""
    if not path.exists():
        raise ConfigError([f"{path}: no such file or directory"])
    folder = path if path.is_dir() else path.parent
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ConfigError([f"cannot run git: {exc}"]) from None
    top = out.stdout.strip()
    if out.returncode != 0 or not top:
        raise ConfigError([(f"{path}: not inside a git work tree (tinyarms watches git repositories: "
                            "git says which files are ignored and which are staged)")])
    return Path(top)


def add(path: Path, home: Path | None = None) -> tuple[Path, bool]:
    """Register the repository ``path`` is in; (its top level, whether it was new)."""
    top = top_level(path)
    with _locked(home):
        repos = read(home)
        if top in repos:
            return top, False
        _write([*repos, top], home)
    return top, True


def remove(path: Path, home: Path | None = None) -> Path | None:
    """Unregister a repository, named by any path inside it or by its registered path (which may
    no longer exist); the path removed, or None when it was not registered."""
    given = Path(os.path.abspath(path))
    with _locked(home):
        repos = read(home)
        wanted = next((r for r in repos if r == given or r == _resolved(given)), None)
        if wanted is None and given.exists():
            try:
                top = top_level(given)
            except ConfigError:
                top = None
            wanted = top if top in repos else None
        if wanted is None:
            return None
        _write([r for r in repos if r != wanted], home)
    return wanted


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def _write(repos: list[Path], home: Path | None) -> None:
    path = registry_path(home)
    fd, tmp = tempfile.mkstemp(prefix=".repos.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps([str(r) for r in repos], indent=2) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(home: Path | None) -> Iterator[None]:
    lock = registry_path(home).with_name(FILE_NAME + ".lock")
    with open(lock, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
