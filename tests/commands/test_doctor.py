"""``tinyarms doctor``: a real model answers here (exit 0); a broken build is named, with its fix (exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.models.test_llamacpp import MODEL, cached_model_fixture, fetched_fixture  # noqa: F401 - fixtures
from tests.models.test_worker import FAKE
from tinyarms.models import buildflags
from tinyarms.models.worker import crashes, process


def test_doctor_passes_with_the_real_model_and_says_what_it_measured(fetched: Path, tmp_path: Path,
                                                                     isolated_env: Path) -> None:
    done = run_cli("doctor", cwd=tmp_path, env={"TINYARMS_MODELS__BACKEND": "embedded"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "llama.cpp     CPU : " in out  # the build's own system info, from the worker
    for label in ("load ", "question ", "memory ", "backend "):
        assert f"\n{label}" in out, out
    assert " s cold, " in out and "worker RSS" in out and "embedded (embedded picks it" in out
    assert out.rstrip().endswith("a model answers on this machine")
    assert (isolated_env / crashes.DOCTOR_MARK).exists()


@pytest.fixture
def scripted_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF" + bytes(1024))
    monkeypatch.setenv(process.COMMAND_ENV, str(FAKE))
    monkeypatch.setenv("FAKE_WORKER_PLAN", str(tmp_path / "plan"))
    monkeypatch.setenv("TINYARMS_MODELS__FAST__EMBEDDED", str(model))
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "embedded")
    return tmp_path


def test_doctor_names_an_illegal_instruction_and_the_reinstall_command(scripted_worker: Path,
                                                                       isolated_env: Path) -> None:
    (scripted_worker / "plan").write_text("sigill\n")
    done = run_cli("doctor", cwd=scripted_worker)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout and "died of SIGILL (illegal instruction)" in done.stdout
    assert buildflags.reinstall_command() in done.stdout and "--no-cache-dir" in done.stdout
    assert "no model can answer on this machine" in done.stdout
    assert not (isolated_env / crashes.DOCTOR_MARK).exists()


def test_doctor_names_a_model_that_is_not_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "embedded")
    done = run_cli("doctor", cwd=tmp_path)
    assert done.returncode == 1
    assert f"{MODEL} is not fetched" in done.stdout and f"tinyarms models fetch {MODEL}" in done.stdout


def test_doctor_usage_error_is_exit_2(tmp_path: Path) -> None:
    assert run_cli("doctor", "--no-such-flag", cwd=tmp_path).returncode == 2


def test_the_portable_flags_follow_the_cpu_and_never_enable_amx() -> None:
    haswell = {"sse4_2", "avx", "avx2", "bmi2", "fma", "f16c"}
    args = buildflags.cmake_args(haswell).split()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args and "-DGGML_AVX512=OFF" in args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    sapphire = haswell | {"avx512f", "avx512_vnni", "amx_tile", "amx_int8"}
    args = buildflags.cmake_args(sapphire).split()
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_VNNI=ON" in args and "-DGGML_AMX_INT8=OFF" in args
    assert buildflags.cpu_flags("processor : 0\nflags\t\t: fpu avx2 fma\n") == {"fpu", "avx2", "fma"}
    assert buildflags.cmake_args(None, detect=False) == ""  # unknown CPU: llama.cpp's own defaults
