"""An evaluation corpus whose files come from package registries, by pinned coordinates.

A corpus entry in ``labels.yaml`` may say where its text comes from instead of holding it::

    py/flaskr/blog.py:
      pypi: flask==3.1.0          # or npm: simpledotcss@2.3.3; pypi takes the sdist unless dist: wheel
      path: examples/tutorial/flaskr/blog.py   # inside the archive, below its top folder
      sha256: 8f1c...             # of that file as the archive holds it
      patch: patches/blog-line-reference.diff  # optional: this project's own edit, applied after

``prepare`` turns such a corpus into a plain folder once: it downloads each archive with the
registry's own client (``pip download --no-deps``, ``npm pack``: whatever index, mirror or proxy
they are configured for) into a cache, extracts only the listed files, checks each sha256,
applies the patches (``git apply``) and copies the corpus's own files (labels, patches, synthetic
cases, config) beside them. Later runs use the cache and need no network. A registry that cannot
be reached, a file missing from its archive or a hash that does not match is a ``CorpusError``
naming the package and the file: never a smaller corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

LABELS = "labels.yaml"
COMPLETE = ".prepared"  # written last into a prepared corpus folder
Progress = Callable[[int, int, str], None]  # (done, total, what)


class CorpusError(Exception):
    """The corpus cannot be prepared; each problem names the file, the package and what to do."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def default_cache() -> Path:
    from tinyarms.paths import state_dir

    return state_dir() / "corpus"


def prepare(root: Path, cache: Path | None = None, progress: Progress | None = None) -> Path:
    """The folder to evaluate: ``root`` itself when no entry names a registry, else the
    prepared copy under ``cache`` (made now if it is not there yet)."""
    entries = _entries(root)
    archive_of = {rel: spec for rel, e in entries.items() if (spec := _archive_of(e))}
    wanted = {rel: entries[rel] for rel in archive_of}
    if not wanted:
        return root
    cache = (cache or default_cache()).expanduser().resolve()
    target = cache / "prepared" / _fingerprint(root, entries)
    if (target / COMPLETE).is_file():
        return target
    archives = sorted(set(archive_of.values()))
    files: dict[str, Path] = {}
    problems: list[str] = []
    for i, spec in enumerate(archives):
        if progress:
            progress(i, len(archives), spec)
        try:
            files[spec] = fetch(spec, cache / "archives")
        except CorpusError as exc:
            problems += exc.problems
    if progress:
        progress(len(archives), len(archives), "done")
    if problems:
        raise CorpusError(problems)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_mkdir(cache / "prepared")))
    try:
        _copy_own_files(root, staging, set(wanted))
        for rel, entry in sorted(wanted.items()):
            spec = archive_of[rel]
            try:
                data = member(files[spec], str(entry.get("path", "")), spec)
            except CorpusError as exc:
                problems.append(f"{rel}: {exc}")
                continue
            got = hashlib.sha256(data).hexdigest()
            if got != entry.get("sha256"):
                problems.append(f"{rel}: {spec} {entry.get('path')}: sha256 is {got}, labels.yaml says "
                                f"{entry.get('sha256')}: the package changed, or the entry names the wrong file")
                continue
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        if problems:
            raise CorpusError(problems)
        for rel, entry in sorted(wanted.items()):
            if entry.get("patch"):
                _apply(root / str(entry["patch"]), staging, rel)
        (staging / COMPLETE).write_text(json.dumps({"from": str(root)}) + "\n")
        if target.exists():  # an earlier, unfinished run
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


# -- archives ----------------------------------------------------------------------------------


def fetch(spec: str, folder: Path) -> Path:
    """The archive ``spec`` names ("pypi:NAME==VERSION:sdist", "npm:NAME@VERSION"), downloaded
    into ``folder`` unless it is there already."""
    index = folder / "index.json"
    known: dict[str, str] = json.loads(index.read_text()) if index.is_file() else {}
    if spec in known and (folder / known[spec]).is_file():
        return folder / known[spec]
    registry, _, rest = spec.partition(":")
    with tempfile.TemporaryDirectory(dir=_mkdir(folder)) as tmp:
        if registry == "pypi":
            requirement, _, dist = rest.partition(":")
            only = ["--no-binary", ":all:"] if dist == "sdist" else ["--only-binary", ":all:"]
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                       "-q", *only, "-d", tmp, requirement]
            what = f"pypi: {requirement} ({dist})"
        else:
            npm = shutil.which("npm")
            if npm is None:
                raise CorpusError([f"npm: {rest}: npm is needed to fetch npm packages (install Node.js), "
                                   "or pass --corpus-cache with a folder prepared elsewhere"])
            command = [npm, "pack", "--silent", "--pack-destination", tmp, rest]
            what = f"npm: {rest}"
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            raise CorpusError([f"{what}: the registry did not answer within 10 minutes"]) from None
        got = [p for p in Path(tmp).iterdir() if p.is_file()]
        if done.returncode != 0 or len(got) != 1:
            last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-1:] or ["no output"]
            raise CorpusError([f"{what}: could not be fetched ({last[0].strip()}); is the registry reachable?"])
        name = f"{registry}-{got[0].name}"
        os.replace(got[0], folder / name)
    known[spec] = name
    index.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    return folder / name


def member(archive: Path, path: str, spec: str) -> bytes:
    """The bytes of ``path`` in ``archive``, below the archive's top folder for an sdist or an
    npm package (``flask-3.1.0/``, ``package/``), as is for a wheel."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            try:
                return zf.read(path)
            except KeyError:
                raise CorpusError([f"{spec}: no {path} in {archive.name}"]) from None
    with tarfile.open(archive) as tf:
        for info in tf:
            _, _, rest = info.name.partition("/")
            if rest == path and info.isfile():
                extracted = tf.extractfile(info)
                assert extracted is not None
                return extracted.read()
    raise CorpusError([f"{spec}: no {path} in {archive.name}"])


# -- the corpus's own files --------------------------------------------------------------------


def _entries(root: Path) -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load((root / LABELS).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}  # labels.load reports it, with the line
    files = data.get("files") if isinstance(data, dict) else None
    return {str(k): v for k, v in files.items() if isinstance(v, dict)} if isinstance(files, dict) else {}


def _archive_of(entry: dict[str, Any]) -> str | None:
    if entry.get("pypi"):
        return f"pypi:{entry['pypi']}:{entry.get('dist') or 'sdist'}"
    if entry.get("npm"):
        return f"npm:{entry['npm']}"
    return None


def _fingerprint(root: Path, entries: dict[str, dict[str, Any]]) -> str:
    """What the prepared folder depends on: the labels and every patch (their text)."""
    digest = hashlib.sha256((root / LABELS).read_bytes())
    for entry in entries.values():
        if entry.get("patch"):
            patch = root / str(entry["patch"])
            digest.update(patch.read_bytes() if patch.is_file() else b"missing")
    return digest.hexdigest()[:16]


def _copy_own_files(root: Path, target: Path, fetched: set[str]) -> None:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in fetched:
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)


def _apply(patch: Path, folder: Path, rel: str) -> None:
    if not patch.is_file():
        raise CorpusError([f"{rel}: patch {patch} does not exist"])
    # Outside any repository (the cache may sit inside one): paths are the corpus's own.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    done = subprocess.run(["git", "apply", "--whitespace=nowarn", "--include", rel, str(patch.resolve())],
                          cwd=folder, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise CorpusError([f"{rel}: {patch.name} does not apply: {done.stderr.strip()}"])


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def print_progress(done: int, total: int, what: str) -> None:
    """A progress bar on stderr while archives are fetched."""
    width = 24
    filled = width * done // max(1, total)
    end = "\n" if done == total else ""
    bar = f"[{'#' * filled}{'.' * (width - filled)}]"
    sys.stderr.write(f"\rfetching the corpus {bar} {done}/{total} {what[:50]:<50}{end}")
    sys.stderr.flush()

