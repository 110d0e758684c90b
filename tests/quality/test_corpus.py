"""A corpus whose files come from registries by coordinates: fetched once, checked, patched, then offline.

The PyPI side runs the real ``pip download`` against a local package index made here (a folder
of wheels, through pip's own ``PIP_NO_INDEX``/``PIP_FIND_LINKS``): nothing leaves the machine.
One test fetches a small real package from the npm registry, as a user's corpus would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tinyarms.quality import corpus, evaluation, labels
from tinyarms.yamlio import ConfigError

# tinyarms: ignore[line-references]  the comment names a line of CODE, which does not move
CODE = "RETRIES = 3\n\n\ndef cost(nights):\n    return nights * 86.4\n"  # one magic number, line 5
PATCH = """\
--- a/py/tiny.py
+++ b/py/tiny.py
@@ -3,3 +3,4 @@
 
 def cost(nights):
+    # see line 1 for the retries
     return nights * 86.4
"""  # noqa: W293 - a diff's blank context line is a single space


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel(folder: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A minimal, valid pure-Python wheel, as a registry would serve it."""
    dist = f"{name}-{version}.dist-info"
    members = {**files, f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
               f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tinyarms-tests\nRoot-Is-Purelib: true\n"
                                "Tag: py3-none-any\n"}
    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},sha256={digest(text)},"
                     f"{len(text.encode())}\n" for path, text in members.items()) + f"{dist}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in {**members, f"{dist}/RECORD": record}.items():
            zf.writestr(member, text)
    return path


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local package index with one package, and pip pointed at it alone."""
    folder = tmp_path / "index"
    folder.mkdir()
    wheel(folder, "tinycorp", "1.0", {"tinycorp/tiny.py": CODE, "tinycorp/__init__.py": ""})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def write_corpus(root: Path, **entry: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    labels = {"version": 2, "files": {"py/tiny.py": {
        "pypi": "tinycorp==1.0", "dist": "wheel", "path": "tinycorp/tiny.py", "sha256": sha(CODE.encode()),
        "expect": [{"rule": "magic-numbers", "line": 5}], **entry}}}
    (root / "labels.yaml").write_text(yaml.safe_dump(labels, sort_keys=False))
    return root


def test_a_corpus_is_fetched_checked_and_then_used_offline(tmp_path: Path, index: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_corpus(tmp_path / "corpus")
    cache = tmp_path / "cache"
    seen: list[tuple[int, int, str]] = []
    prepared = corpus.prepare(root, cache, lambda *step: seen.append(step))
    assert (prepared / "py/tiny.py").read_text() == CODE and (prepared / "labels.yaml").is_file()
    assert seen[0] == (0, 1, "pypi:tinycorp==1.0:wheel") and seen[-1] == (1, 1, "done")
    assert not list(root.glob("py/*"))  # the corpus folder itself holds only what was written here

    shutil.rmtree(index)  # the registry is gone: the cache answers
    assert corpus.prepare(root, cache) == prepared
    shutil.rmtree(prepared)
    assert (corpus.prepare(root, cache) / "py/tiny.py").read_text() == CODE  # from the kept archive

    done = run_cli("eval", str(root / "labels.yaml"), "--level", "0", "--corpus-cache", str(cache), "--json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    magic = json.loads(done.stdout)["rules"]["magic-numbers"]
    assert (magic["tp"], magic["fp"], magic["fn"]) == (1, 0, 0)


def test_our_own_edit_is_a_patch_applied_after_the_fetch(tmp_path: Path, index: Path) -> None:
    root = write_corpus(tmp_path / "corpus", patch="patches/tiny.diff",
                        expect=[{"rule": "magic-numbers", "line": 6}, {"rule": "line-references", "line": 5}])
    (root / "patches").mkdir()
    (root / "patches/tiny.diff").write_text(PATCH)
    prepared = corpus.prepare(root, tmp_path / "cache")
    assert (prepared / "py/tiny.py").read_text().splitlines()[4] == "    # see line 1 for the retries"
    report = evaluation.run(root, evaluation.EvalOptions(levels=[0], corpus_cache=tmp_path / "cache"))
    assert report.scores["line-references"].tp == 1 and report.scores["magic-numbers"].tp == 1


def test_a_hash_that_does_not_match_is_an_error_naming_package_and_file(tmp_path: Path, index: Path) -> None:
    root = write_corpus(tmp_path / "corpus", sha256="0" * 64)
    with pytest.raises(corpus.CorpusError) as info:
        corpus.prepare(root, tmp_path / "cache")
    [problem] = info.value.problems
    assert problem.startswith("py/tiny.py: pypi:tinycorp==1.0:wheel tinycorp/tiny.py: sha256 is ")
    assert not (tmp_path / "cache/prepared").exists() or not any((tmp_path / "cache/prepared").iterdir())

    done = run_cli("eval", str(root), "--corpus-cache", str(tmp_path / "cache"), cwd=tmp_path)
    assert done.returncode == 2 and "sha256 is" in done.stderr and "labels.yaml" in done.stderr


def test_a_package_the_registry_does_not_have_is_an_error_not_a_smaller_corpus(tmp_path: Path, index: Path) -> None:
    root = write_corpus(tmp_path / "corpus", pypi="tinycorp==9.9")
    done = run_cli("eval", str(root), "--corpus-cache", str(tmp_path / "cache"), cwd=tmp_path)
    assert done.returncode == 2
    assert "pypi: tinycorp==9.9 (wheel): could not be fetched" in done.stderr, done.stderr


def test_a_file_missing_from_its_archive_is_named(tmp_path: Path, index: Path) -> None:
    root = write_corpus(tmp_path / "corpus", path="tinycorp/gone.py")
    with pytest.raises(corpus.CorpusError) as info:
        corpus.prepare(root, tmp_path / "cache")
    assert info.value.problems == ["py/tiny.py: pypi:tinycorp==1.0:wheel: no tinycorp/gone.py in "
                                   "pypi-tinycorp-1.0-py3-none-any.whl"]


def test_an_entry_from_a_registry_needs_its_path_and_hash(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "labels.yaml").write_text("version: 2\nfiles:\n  a.py:\n    pypi: x==1\n    expect: []\n")
    with pytest.raises(ConfigError) as info:
        labels.load(root)
    assert "a file from pypi needs its path in the archive and its sha256" in info.value.problems[0]


@pytest.mark.timeout(300)
def test_an_npm_package_is_fetched_with_npm(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    archive = corpus.fetch("npm:is-number@7.0.0", tmp_path / "archives")
    text = corpus.member(archive, "index.js", "npm:is-number@7.0.0")
    assert b"module.exports" in text
    assert corpus.fetch("npm:is-number@7.0.0", tmp_path / "archives") == archive  # kept, not fetched again
