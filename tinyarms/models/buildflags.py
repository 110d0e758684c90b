"""How to build llama-cpp-python for the CPU it runs on, without ``-march=native``.

A native build (llama.cpp's default) compiles in everything the compiler sees advertised, AMX
included; on VMs whose CPU advertises AMX without the kernel granting it, the first model question
dies with SIGILL. This module reads the CPU's features and names each instruction set llama.cpp
can use explicitly, AMX never, with ``GGML_NATIVE=OFF``. Where it cannot read them (not x86-64,
not Linux) it leaves llama.cpp's defaults alone.

Standard library only, and runnable on its own before tinyarms is installed::

    CMAKE_ARGS="$(python3 tinyarms/models/buildflags.py)" pip install '.[embedded]'
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

LLAMA_CPP = "llama-cpp-python==0.3.36"  # the pinned version (pyproject.toml's embedded extra)

# llama.cpp's CMake option -> the /proc/cpuinfo flag that must be present for it
X86_OPTIONS = (
    ("GGML_SSE42", "sse4_2"),
    ("GGML_AVX", "avx"),
    ("GGML_AVX2", "avx2"),
    ("GGML_BMI2", "bmi2"),
    ("GGML_FMA", "fma"),
    ("GGML_F16C", "f16c"),
    ("GGML_AVX_VNNI", "avx_vnni"),
    ("GGML_AVX512", "avx512f"),
    ("GGML_AVX512_VBMI", "avx512vbmi"),
    ("GGML_AVX512_VNNI", "avx512_vnni"),
    ("GGML_AVX512_BF16", "avx512_bf16"),
)
NEVER = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")  # the instructions that killed native builds


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """The x86 feature flags of this CPU, or None where they cannot be read."""
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64") or not sys.platform.startswith("linux"):
            return None
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def cmake_args(flags: set[str] | None = None, *, detect: bool = True) -> str:
    """CMAKE_ARGS for llama-cpp-python on this CPU ('' where the defaults are the best guess)."""
    if flags is None and detect:
        flags = cpu_flags()
    if flags is None:
        return ""
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{option}={'ON' if flag in flags else 'OFF'}" for option, flag in X86_OPTIONS]
    args += [f"-D{option}=OFF" for option in NEVER]
    return " ".join(args)


def reinstall_command(flags: set[str] | None = None) -> str:
    """The command that rebuilds llama-cpp-python for this CPU (past pip's wheel cache, whose key
    ignores CMAKE_ARGS and would hand back the broken build)."""
    args = cmake_args(flags)
    prefix = f'CMAKE_ARGS="{args}" ' if args else ""
    return f"{prefix}pip install --no-cache-dir --force-reinstall --no-deps {LLAMA_CPP}"


if __name__ == "__main__":
    print(cmake_args())
