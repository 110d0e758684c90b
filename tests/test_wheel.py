"""The built wheel, installed into a fresh venv, works on its own: no checkout, no editable install.

Slow (a wheel build, a venv and a pip install, once per session); dependencies come from the
package index or pip's cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
BIN = "Scripts" if os.name == "nt" else "bin"


class Installed(NamedTuple):
    wheel: Path
    venv: Path
    outside: Path  # a working directory outside the checkout
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=cwd or self.outside, env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )

    def tool(self, name: str) -> str:
        return str(self.venv / BIN / name)


def _check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    home = base / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TINYARMS_", "PYTHON")) and k not in ("VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")}
    env |= {"TINYARMS_HOME": str(home), "TINYARMS_CONFIG": str(home / "no-user-config.yaml"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "NO_COLOR": "1"}

    dist = base / "dist"
    build = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist)]
    if importlib.util.find_spec("hatchling") is not None:
        build.append("--no-isolation")  # the backend is here already: no download, no build venv
    _check(subprocess.run([*build, str(CHECKOUT)], capture_output=True, text=True, timeout=600, env=env, check=False))
    (wheel,) = dist.glob("tinyarms-*.whl")

    venv = base / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300,
                          check=False))
    _check(subprocess.run(
        [str(venv / BIN / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=900, env=env, check=False,
    ))
    outside = base / "work"
    outside.mkdir()
    return Installed(wheel, venv, outside, env)


def test_wheel_carries_the_built_in_config_and_skills(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert "tinyarms/_data/config/default.yaml" in names
    assert "tinyarms/_data/skills/code-linting-fast.yaml" in names
    assert "tinyarms/_data/skills/code-linting-deep.yaml" in names
    assert not [n for n in names if n.endswith(".pyc") or n.startswith("tests/")]


def test_installed_package_imports_from_the_venv_not_the_checkout(installed: Installed) -> None:
    code = "import tinyarms, tinyarms.resources as r; print(tinyarms.__file__); print(r.data_dir('skills'))"
    out = _check(installed.run(installed.tool("python"), "-c", code)).stdout.splitlines()
    package, skills = (Path(line).resolve() for line in out)
    assert package.is_relative_to(installed.venv.resolve())
    assert skills.is_relative_to(package.parent)
    assert not package.is_relative_to(CHECKOUT)


def test_installed_command_finds_a_hardcoded_colour(installed: Installed) -> None:
    src = installed.outside / "src"
    src.mkdir(exist_ok=True)
    (src / "alert.tsx").write_text('export const A = () => <div className="bg-[#ff0000]" />;\n')

    result = installed.run(installed.tool("tinyarms"), "lint", "--format", "json", "src/alert.tsx")

    assert result.returncode == 1 and result.stdout.startswith("{"), result.stderr
    report = json.loads(result.stdout)
    colours = [f for f in report["findings"] if f["rule"] == "hardcoded-colors"]
    assert [(f["path"], f["line"], f["column"], f["end_column"]) for f in colours] == [("src/alert.tsx", 1, 44, 51)]
    assert colours[0]["skill"] == "code-linting-fast"


def test_installed_command_lints_a_mixed_folder_outside_git_and_refuses_a_broken_skill(installed: Installed) -> None:
    """The issue's "done when", against the wheel: TSX, Python, CSS, binary, latin-1 and empty
    files in a plain folder (no git); then a broken skill is exit 2 naming file, line and field."""
    from tests.commands.test_lint import MIXED_FINDINGS, write_mixed

    project = installed.outside / "mixed"
    write_mixed(project)

    result = installed.run(installed.tool("tinyarms"), "lint", "--format", "json", cwd=project)

    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [(f["path"], f["line"], f["column"], f["rule"]) for f in report["findings"]] == MIXED_FINDINGS
    assert report["stats"]["suppressed"] == 1  # the colour under `tinyarms: ignore[hardcoded-colors]`
    assert {(s["path"], s["reason"]) for s in report["skipped"] if s["rule"] is None} == {
        ("src/logo.py", "binary"), ("src/legacy.py", "encoding")}
    assert {s["rule"] for s in report["skipped"] if s["rule"]} == {"simple-dry", "design-tokens"}

    skills = project / ".tinyarms" / "skills"
    skills.mkdir(parents=True)
    (skills / "team.yaml").write_text(
        "name: team\ndescription: ours\nlevels: [0]\nrules:\n  - id: no-print\n    engine: telepathy\n"
        "    level: 0\n    languages: [python]\n    description: no print\n    message: print\n"
    )
    result = installed.run(installed.tool("tinyarms"), "lint", "--format", "json", cwd=project / "src")
    assert result.returncode == 2 and result.stdout == ""
    assert ("tinyarms: error: .tinyarms/skills/team.yaml:6: rules[0].engine: 'telepathy' is not one of "
            "pattern, ast, model") in result.stderr


def test_installed_eval_finds_its_built_in_corpus(installed: Installed) -> None:
    # Outside any git checkout: the corpus, its config and its token file come from the wheel.
    from tests.quality.corpora import CORPUS_CACHE

    result = installed.run(installed.tool("tinyarms"), "eval", "--level", "0", "--json", "--no-cache",
                           "--corpus-cache", str(CORPUS_CACHE))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["corpus"]).resolve().is_relative_to(installed.venv.resolve())
    assert report["files"] >= 150 and report["levels"]["0"]["fp"] == 1 and report["levels"]["0"]["fn"] == 0


def test_installed_module_entry_point_and_version(installed: Installed) -> None:
    out = _check(installed.run(installed.tool("python"), "-m", "tinyarms", "--version")).stdout
    from tinyarms import __version__

    assert out.strip() == f"tinyarms {__version__}"


def test_installed_bench_reads_its_shipped_source(installed: Installed) -> None:
    assert "tinyarms/quality/benchdata/shop.py.txt" in zipfile.ZipFile(installed.wheel).namelist()
    code = "from tinyarms.quality import bench; w = bench.workload(); print(sorted({q.size for q in w}), len(w))"
    out = _check(installed.run(installed.tool("python"), "-c", code)).stdout
    assert out.strip() == "[50, 100, 300] 7"
