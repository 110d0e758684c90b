import json
from pathlib import Path

import pytest

from tests.conftest import at, git, run_cli

TSX = """\
import { price } from "../../utils/format";

export const Badge = () => (
  <span className="bg-[#ff0000] text-white" data-size={3}>
    {price(1999)}
  </span>
);
// tinyarms: ignore[hardcoded-colors]
export const muted = "#999999";
"""
PY = """\
MAX_RETRIES = 5


def backoff(attempt, base=0.5):
    # doubles each time, see line 12
    return base * 2 ** attempt + 37
"""
CSS = """\
:root { --brand: #3b82f6; }
.card { color: var(--brand); border: 1px solid #e5e7eb; }
"""


# What Level 0 finds in the folder ``write_mixed`` makes: (path, line, column, rule).
MIXED_FINDINGS = [
    ("src/card.css", *at(CSS, 2, "#e5e7eb"), "hardcoded-colors"),
    ("src/features/cart/Badge.tsx", *at(TSX, 1, '"../../'), "import-aliases"),
    ("src/features/cart/Badge.tsx", *at(TSX, 4, "#ff0000"), "hardcoded-colors"),
    ("src/features/cart/Badge.tsx", *at(TSX, 4, "3}"), "magic-numbers"),  # a JSX prop is no name
    ("src/features/cart/Badge.tsx", *at(TSX, 5, "1999"), "magic-numbers"),
    ("src/retry.py", *at(PY, 5, "line 12"), "line-references"),
    ("src/retry.py", *at(PY, 6, "37"), "magic-numbers"),
]


def write_mixed(root: Path) -> None:
    """TSX, Python and CSS with findings and a suppression, a binary, a latin-1 and an empty file."""
    (root / "src/features/cart").mkdir(parents=True)
    (root / "src/features/cart/Badge.tsx").write_text(TSX)
    (root / "src/retry.py").write_text(PY)
    (root / "src/card.css").write_text(CSS)
    (root / "src/logo.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "src/legacy.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (root / "src/empty.ts").write_text("")


@pytest.fixture
def project(repo: Path) -> Path:
    write_mixed(repo)
    (repo / "README.md").write_text("# not linted: no rule applies\n")
    return repo


def lint_json(*args: str, cwd: Path):
    result = run_cli("lint", "--format", "json", *args, cwd=cwd)
    assert result.stderr == "" or "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def test_mixed_files_give_right_findings_skips_and_exit_1(project: Path) -> None:
    code, out = lint_json(cwd=project)
    assert code == 1
    assert set(out) == {"findings", "skipped", "stats"}
    got = [(f["path"], f["line"], f["column"], f["rule"]) for f in out["findings"]]
    assert got == MIXED_FINDINGS
    first = out["findings"][1]
    assert first["suggestion"] == "import from '@/utils/format'"
    assert {k for k in first} == {
        "path", "line", "column", "end_line", "end_column", "rule", "skill", "severity", "message",
        "suggestion", "level", "engine", "model", "confidence", "fingerprint", "feedback",
    }
    assert first["feedback"] is None  # no verdict given (tinyarms feedback)
    file_skips = {(s["path"], s["reason"]) for s in out["skipped"] if s["rule"] is None}
    assert file_skips == {("src/logo.py", "binary"), ("src/legacy.py", "encoding")}
    model_skips = {(s["path"], s["rule"]) for s in out["skipped"] if s["rule"]}
    assert model_skips == {
        ("src/features/cart/Badge.tsx", "simple-dry"), ("src/features/cart/Badge.tsx", "design-tokens"),
        ("src/retry.py", "simple-dry"), ("src/card.css", "design-tokens"),
        ("src/empty.ts", "simple-dry"), ("src/empty.ts", "design-tokens"),
    }
    assert all(s["reason"] == "model-unavailable" and s["level"] == 2 and "ollama pull" in s["hint"]
               for s in out["skipped"] if s["rule"])
    stats = out["stats"]
    assert (stats["files"], stats["files_skipped"], stats["suppressed"], stats["out_of_scope"]) == (4, 2, 1, 1)


def test_second_run_is_served_from_the_cache_with_identical_output(project: Path) -> None:
    _, first = lint_json(cwd=project)
    _, second = lint_json(cwd=project)
    assert second["stats"]["cache_hits"] == 6 and second["stats"]["cache_misses"] == 0
    assert second["findings"] == first["findings"] and second["skipped"] == first["skipped"]
    # paths are shown relative to where the command runs, cached or not
    _, sub = lint_json("retry.py", cwd=project / "src")
    assert [f["path"] for f in sub["findings"]] == ["retry.py", "retry.py"]


def test_clean_files_exit_0_and_fail_on_select_ignore(project: Path) -> None:
    assert run_cli("lint", "src/card.css", "--ignore", "hardcoded-colors", cwd=project).returncode == 0
    assert run_cli("lint", "src/retry.py", "--select", "line-references", cwd=project).returncode == 0  # info only
    assert run_cli("lint", "src/retry.py", "--fail-on", "error", cwd=project).returncode == 0
    (project / ".tinyarms.yaml").write_text("rules:\n  magic-numbers: {severity: error}\n")
    assert run_cli("lint", "src/retry.py", "--fail-on", "error", cwd=project).returncode == 1
    _, out = lint_json("src/retry.py", "--select", "magic-numbers,line-references", cwd=project)
    assert {f["rule"] for f in out["findings"]} == {"magic-numbers", "line-references"}


def test_on_model_unavailable_fail_blocks(project: Path) -> None:
    (project / ".tinyarms.yaml").write_text("on_model_unavailable: fail\n")
    assert run_cli("lint", "src/card.css", "--ignore", "hardcoded-colors", cwd=project).returncode == 1


def test_baseline_lets_old_findings_pass_and_catches_new_ones(project: Path) -> None:
    assert run_cli("baseline", "write", "base.json", "src", cwd=project).returncode == 0
    assert json.loads((project / "base.json").read_text())["tinyarms_baseline"] == 1
    code, out = lint_json("src", "--baseline", "base.json", cwd=project)
    assert (code, out["findings"], out["stats"]["baselined"]) == (0, [], len(MIXED_FINDINGS))
    # old findings move down two lines: still baselined; a new one fails
    retry = project / "src/retry.py"
    retry.write_text("import os\n\n" + PY + "\n\ndef jitter():\n    return 13\n")
    code, out = lint_json("src", "--baseline", "base.json", cwd=project)
    assert code == 1 and [(f["line"], f["rule"]) for f in out["findings"]] == [(12, "magic-numbers")]
    bad = project / "bad.json"
    bad.write_text("{}")
    result = run_cli("lint", "--baseline", "bad.json", cwd=project)
    assert result.returncode == 2 and "not a tinyarms baseline" in result.stderr


def test_staged_content_not_working_copy(project: Path) -> None:
    git(project, "add", "src/retry.py")
    (project / "src/retry.py").write_text("MAX_RETRIES = 5\n")  # fixed in the working copy, not staged
    code, out = lint_json("--staged", cwd=project)
    assert code == 1
    assert {f["path"] for f in out["findings"]} == {"src/retry.py"}


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_every_format_renders(project: Path, fmt: str) -> None:
    result = run_cli("lint", "--format", fmt, "src/retry.py", cwd=project)
    assert result.returncode == 1
    if fmt == "text":
        assert result.stdout.startswith("src/retry.py:{}:{}: line-references [info] ".format(*at(PY, 5, "line 12")))
    elif fmt == "github":
        assert "::warning file=src/retry.py,line={},col={},".format(*at(PY, 6, "37")) in result.stdout
    else:
        json.loads(result.stdout)


def test_rules_reference_is_generated_from_the_skills(tmp_path: Path) -> None:
    result = run_cli("rules", cwd=tmp_path)
    assert result.returncode == 0
    assert "| `hardcoded-colors` | 0 | pattern | warning |" in result.stdout
    assert "| `semantic-duplication` | 3 | model |" in result.stdout
