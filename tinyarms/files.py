"""Which files a lint reads, and their bytes: paths walked honouring .gitignore, or the index.

Directories are walked with ``git ls-files`` inside a repository and with ``pathspec`` over
``.gitignore`` files outside one; only files some rule applies to are taken. Files named
explicitly are always taken. ``--staged`` reads the staged blobs, not the working files.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tinyarms.errors import ConfigError
from tinyarms.finding import Skipped
from tinyarms.levels.level0 import Job
from tinyarms.ruleset import RuleSet
from tinyarms.source import language_of, too_large

_ALWAYS_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".tox"})


@dataclass(slots=True)
class Collected:
    jobs: list[Job] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    out_of_scope: int = 0
    excluded: int = 0


def git_root(path: Path) -> Path | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True, text=True, check=False,
        )
    except OSError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 else None


class Namer:
    """Turns absolute paths into the two names a file has: shown (cwd) and rel (root); and
    knows the repository nothing may be read outside of (``boundary``, default: the root)."""

    def __init__(self, root: Path | None, cwd: Path, boundary: Path | None = None):
        self.root = root.resolve() if root else None
        self.cwd = cwd.resolve()
        self.boundary = boundary.resolve() if boundary else self.root
        self._real_dirs: dict[str, str] = {}

    def escapes(self, path: Path) -> str | None:
        """Where ``path`` really is when a symlink (the file or a folder above it) leads outside
        the boundary; None when it stays inside or there is no boundary. A repository may hold a
        link to ``~/.ssh``: what it points at must never reach a model, the cache or a reply."""
        if self.boundary is None:
            return None
        folder = str(path.parent)
        real_dir = self._real_dirs.get(folder)
        if real_dir is None:  # one realpath per folder: a scan reads thousands of files
            real_dir = self._real_dirs[folder] = os.path.realpath(folder)
        real = os.path.realpath(path) if path.is_symlink() else os.path.normpath(os.path.join(real_dir, path.name))
        return None if _inside(real, self.boundary) else real

    def rel(self, path: Path) -> str:
        return _relative(str(path), str(self.root or self.cwd))

    def shown(self, path: Path) -> str:
        return _relative(str(path), str(self.cwd))


def _relative(path: str, base: str) -> str:
    """``Path(path).relative_to(base).as_posix()``, or ``path`` outside ``base``, on the strings:
    a lint names thousands of paths, and pathlib's parsing was a tenth of a cached run. Both are
    normalised POSIX paths (from pathlib), so a prefix up to a separator is the same test."""
    if path == base:
        return "."
    prefix = base if base.endswith("/") else base + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def in_scope(ruleset: RuleSet, rel: str) -> bool:
    return bool(ruleset.rules_for(rel, language_of(rel)))


def collect_paths(paths: list[str], ruleset: RuleSet, namer: Namer, max_bytes: int) -> Collected:
    listed = list_paths(paths, ruleset, namer)
    collected = Collected(out_of_scope=listed.out_of_scope, excluded=listed.excluded)
    return read_paths(listed.paths, namer, max_bytes, collected)


@dataclass(slots=True)
class Listed:
    paths: list[Path] = field(default_factory=list)
    out_of_scope: int = 0
    excluded: int = 0


def list_paths(paths: list[str], ruleset: RuleSet, namer: Namer) -> Listed:
    """The files ``collect_paths`` would read, without reading them (a scan lists a whole
    repository first and reads it a batch at a time)."""
    out = Listed()
    seen: set[Path] = set()
    for arg in paths or ["."]:
        given = Path(arg)
        absolute = given if given.is_absolute() else namer.cwd / given
        if not absolute.exists() and not absolute.is_symlink():
            raise ConfigError([f"{arg}: no such file or directory"])
        if namer.escapes(absolute) is not None:
            if not _inside(os.path.abspath(absolute), namer.boundary):
                raise outside_repository(arg, namer.boundary)
            # Inside by name, outside through a symlink: reading it reports it as skipped.
            candidates, explicit = [Path(os.path.abspath(absolute))], True
        elif absolute.is_dir():
            candidates = _walk(absolute, namer)
            explicit = False
        else:
            candidates = [Path(os.path.abspath(absolute))]
            explicit = True
        for path in candidates:
            if path in seen:
                continue
            seen.add(path)
            rel = namer.rel(path)
            if ruleset.excluded(rel):
                out.excluded += 1
                continue
            if not explicit and not in_scope(ruleset, rel):
                out.out_of_scope += 1
                continue
            out.paths.append(path)
    return out


def read_paths(paths: list[Path], namer: Namer, max_bytes: int, out: Collected | None = None) -> Collected:
    """Jobs for ``paths`` (as ``list_paths`` gives them); what cannot be read goes to ``skipped``."""
    out = out if out is not None else Collected()
    for path in paths:
        _read(path, namer.rel(path), namer, out, max_bytes)
    return out


def _read(path: Path, rel: str, namer: Namer, out: Collected, max_bytes: int) -> None:
    shown = namer.shown(path)
    target = namer.escapes(path)
    if target is not None:
        out.skipped.append(Skipped(shown, "symlink-outside",
                                   f"a symlink leads to {target}, outside the repository: not read"))
        return
    try:
        # Non-blocking: opening a FIFO named on the command line (or behind a symlink) would
        # wait for a writer forever. fstat then judges the file actually opened.
        with open(path, "rb", opener=_open_nonblocking) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                out.skipped.append(Skipped(shown, "unreadable", "not a regular file (a FIFO, socket or device)"))
                return
            if st.st_size > max_bytes:
                out.skipped.append(too_large(shown, st.st_size, max_bytes))
                return
            raw = fh.read(max_bytes + 1)  # a file growing meanwhile: one byte over the cap is enough to know
    except OSError as exc:
        out.skipped.append(Skipped(shown, "unreadable", f"cannot read: {exc.strerror or exc}"))
        return
    out.jobs.append(Job(shown, rel, raw))


def outside_repository(arg: str, repo: Path | None) -> ConfigError:
    return ConfigError([f"{arg}: outside the repository {repo}: tinyarms reads only files inside the repository "
                        "it runs in (run it from the repository that holds this path)"])


def _inside(path: str, folder: Path | None) -> bool:
    return folder is None or Path(path).is_relative_to(folder)


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def _walk(folder: Path, namer: Namer) -> list[Path]:
    if namer.root is not None:  # the root may be a project (.tinyarms.yaml) inside a larger repository
        listed = _git_ls_files(folder)
        if listed is not None:
            return listed
    return _walk_with_gitignore(folder)


def _git_ls_files(folder: Path) -> list[Path] | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
             "--full-name", "."],
            capture_output=True, check=False,
        )
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=False)
    except OSError:
        return None
    if out.returncode != 0 or top.returncode != 0:
        return None
    root = Path(top.stdout.strip())
    paths = []
    for name in sorted(set(out.stdout.split(b"\0"))):
        if name:
            path = root / os.fsdecode(name)
            if path.is_file() or path.is_symlink():  # deleted-but-unstaged files are listed too
                paths.append(path)
    return paths


def _walk_with_gitignore(folder: Path) -> list[Path]:
    import pathspec

    found: list[Path] = []
    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def ignored(path: Path, is_dir: bool) -> bool:
        # git's precedence: the deepest .gitignore decides, and in it the last matching line,
        # so a nested "!keep.py" re-includes what a parent's "*.py" ignores.
        for base, spec in reversed(specs):
            if path.is_relative_to(base):
                rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                for pattern in reversed(spec.patterns):
                    if pattern.include is not None and pattern.match_file(rel) is not None:
                        return pattern.include
        return False

    pending = [folder]
    while pending:
        here = pending.pop()
        try:
            with os.scandir(here) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue  # unreadable, or gone meanwhile: as os.walk, nothing to list
        specs = [(b, s) for b, s in specs if here.is_relative_to(b)]
        if any(e.name == ".gitignore" and e.is_file() for e in entries):
            with contextlib.suppress(OSError, ValueError):
                lines = (here / ".gitignore").read_text("utf-8", "replace").splitlines()
                specs.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))
        subdirs = []
        for entry in entries:
            # DirEntry knows its type from the listing: no stat per file. A symlink to a folder
            # is neither walked nor listed (os.walk's default); other symlinks are judged when read.
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _ALWAYS_SKIPPED_DIRS and not (specs and ignored(here / entry.name, True)):
                    subdirs.append(here / entry.name)
            elif ((entry.is_file() or entry.is_symlink()) and not entry.is_dir()
                  and not (specs and ignored(here / entry.name, False))):
                found.append(here / entry.name)
        pending += reversed(subdirs)  # depth first, in name order, as os.walk(topdown=True)
    return found


def collect_staged(paths: list[str], ruleset: RuleSet, namer: Namer, max_bytes: int) -> Collected:
    """The staged content of the staged files (added, copied, modified, renamed)."""
    if namer.root is None:
        raise ConfigError(["--staged: not inside a git repository"])
    # git names staged files relative to the top of the work tree, which is above the project
    # root when the root is a .tinyarms.yaml project inside a larger repository.
    top = git_root(namer.root) or namer.root
    pathspecs = [f":(literal){os.path.relpath(os.path.abspath(namer.cwd / p), top)}" for p in paths]
    names = _git(top, ["diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--", *pathspecs])
    files = [os.fsdecode(n) for n in names.split(b"\0") if n]
    out = Collected()
    if not files:
        return out
    # literal: a staged "app/[id].tsx" must not match other, unstaged files as a glob would
    entries = _git(top, ["ls-files", "-s", "-z", "--", *(f":(literal){f}" for f in files)])
    wanted: list[tuple[str, str, str, str]] = []  # name, shown, rel, blob sha
    for entry in entries.split(b"\0"):
        if not entry:
            continue
        meta, name = entry.split(b"\t", 1)
        mode, sha, _stage = meta.split()
        path = top / os.fsdecode(name)
        rel = namer.rel(path)
        shown = namer.shown(path)
        if ruleset.excluded(rel):
            out.excluded += 1
        elif not in_scope(ruleset, rel):
            out.out_of_scope += 1
        elif mode == b"160000":
            out.out_of_scope += 1  # a submodule: its own repository lints itself
        elif mode == b"120000":
            out.skipped.append(Skipped(shown, "symlink", "staged symlink: its target is not linted through the link"))
        else:
            wanted.append((os.fsdecode(name), shown, rel, sha.decode()))
    blobs = _cat_blobs(top, [sha for *_, sha in wanted])
    changed = changed_lines(top, [name for name, *_ in wanted])
    for staged, shown, rel, blob in wanted:
        out.jobs.append(Job(shown, rel, blobs[blob], changed.get(staged)))
    return out


def changed_lines(top: Path, names: list[str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Line ranges of the staged change per file (paths relative to ``top``), from ``-U0`` hunks."""
    if not names:
        return {}
    diff = _git(top, ["-c", "core.quotePath=false", "diff", "--cached", "-U0", "--no-color", "--no-ext-diff",
                      "--no-renames", "--diff-filter=ACMR", "--", *(f":(literal){n}" for n in names)])
    return parse_hunks(diff)


def parse_hunks(diff: bytes) -> dict[str, tuple[tuple[int, int], ...]]:
    """``+++ b/path`` and ``@@ -a,b +c,d @@`` lines of a unified diff -> {path: ((c, c+d-1), ...)}.
    A file whose name git had to quote is left out: all its lines then count as changed."""
    out: dict[str, list[tuple[int, int]]] = {}
    current: list[tuple[int, int]] | None = None
    for line in diff.split(b"\n"):
        if line.startswith(b"+++ "):
            name = line[4:].removesuffix(b"\t")  # git ends a name that has spaces with a tab
            current = out.setdefault(os.fsdecode(name[2:]), []) if name.startswith(b"b/") else None
        elif line.startswith(b"@@ ") and current is not None:
            new = line.split(b" ")[2]  # +c,d
            start, _, count = new[1:].partition(b",")
            length = int(count) if count else 1
            if length:
                current.append((int(start), int(start) + length - 1))
    return {name: tuple(ranges) for name, ranges in out.items()}


def _git(root: Path, args: list[str]) -> bytes:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    if result.returncode != 0:
        raise ConfigError([f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()}"])
    return result.stdout


def _cat_blobs(root: Path, shas: list[str]) -> dict[str, bytes]:
    """Blob contents through one ``git cat-file --batch`` process."""
    if not shas:
        return {}
    result = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch"],
        input="".join(f"{s}\n" for s in shas).encode(), capture_output=True, check=False,
    )
    data = result.stdout
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in shas:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        size = int(header[2])
        blobs[sha] = data[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return blobs
