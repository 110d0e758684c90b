"""Deep-scan reports: Markdown, JSON and SARIF under the state directory, and the latest pointer."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.render.test_sarif import assert_valid_sarif
from tinyarms import report
from tinyarms.finding import Finding, LintResult, RuleMeta, Skipped

RULES = {
    "semantic-duplication": RuleMeta("semantic-duplication", "code-linting-deep", "Duplicated functions.", "warning",
                                     3, "model"),
    "complex-dry": RuleMeta("complex-dry", "code-linting-deep", "Logic written twice.", "warning", 3, "model"),
}
BASKET = "import math\n\n\ndef basket_sum(entries, vat):\n    acc = 0\n    for e in entries:\n        acc += e.cost\n" \
         "    return round(acc * (1 + vat), 2)\n"
INVOICE = "def invoice_total(lines, rate):\n    subtotal = sum(l.price for l in lines)\n" \
          "    return round(subtotal * (1 + rate), 2)\n"


def finding(**overrides) -> Finding:
    fields = dict(path="cart/basket.py", line=4, column=1, end_line=8, end_column=38, rule="semantic-duplication",
                  skill="code-linting-deep", severity="warning",
                  message="same as invoice_total (other place: billing/invoice.py:1)", suggestion="keep one",
                  level=3, engine="model", model="qwen2.5-coder:7b", confidence=0.8, fingerprint="0123456789abcdef0123")
    fields.update(overrides)
    return Finding(**fields)


def result() -> LintResult:
    return LintResult(
        findings=[finding(), finding(rule="complex-dry", line=5, end_line=7, severity="info", message="loops twice",
                                     suggestion=None, fingerprint="abcdefabcdefabcdef01")],
        skipped=[Skipped("big.py", "too-large", "file is 2.0 MiB, over the 1.0 MiB cap", hint="raise max_file_bytes"),
                 Skipped("cart/basket.py", "model-timeout", "no answer within 600 s", rule="complex-dry", level=3)],
        stats={"files": 2, "files_skipped": 1, "findings": 2, "out_of_scope": 3, "excluded": 0,
               "models": {"3": {"backend": "ollama", "model": "qwen2.5-coder:7b", "questions": 5, "asked": 4,
                                "cached": 1, "seconds": 12.5,
                                "cross_file": {"finder": "shingles", "files": 2, "functions": 2, "pairs": 1}}}},
    )


def meta(**overrides) -> dict:
    now = time.time()
    return {"id": "abc123", "skills": ["code-linting-deep"], "paths": ["."], "started": now - 75, "finished": now,
            "runs": 2, "files_total": 3, **overrides}


def make_repo(tmp_path: Path, name: str = "shop") -> Path:
    root = tmp_path / name
    (root / "cart").mkdir(parents=True)
    (root / "billing").mkdir()
    (root / "cart" / "basket.py").write_text(BASKET)
    (root / "billing" / "invoice.py").write_text(INVOICE)
    return root


def test_three_reports_and_a_latest_pointer(tmp_path: Path) -> None:
    root, home = make_repo(tmp_path), tmp_path / "home"
    written = report.write(result(), RULES, meta(), root, home, exit_code=1)

    folder = home / "reports" / "shop"
    assert {Path(written[k]).parent for k in ("markdown", "json", "sarif")} == {folder}
    stem = Path(written["markdown"]).stem
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        [f"{stem}.md", f"{stem}.json", f"{stem}.sarif", "latest.json"])  # and no temporary files left
    assert json.loads((folder / "latest.json").read_text()) == written
    assert report.latest(home, root) == written
    assert written["summary"] == {"files": 2, "findings": 2, "by_severity": {"error": 0, "warning": 1, "info": 1},
                                  "by_rule": {"complex-dry": 1, "semantic-duplication": 1}, "skipped": 2}
    assert written["exit_code"] == 1

    data = json.loads(Path(written["json"]).read_text())
    assert data["findings"] == [f.to_dict() for f in result().findings]
    assert data["skipped"][0]["reason"] == "too-large" and data["stats"]["files"] == 2
    assert data["scan"]["id"] == "abc123" and data["scan"]["runs"] == 2

    sarif = json.loads(Path(written["sarif"]).read_text())
    assert_valid_sarif(sarif)
    run = sarif["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": f"file://{root}/"}}
    assert run["automationDetails"]["id"] == "tinyarms/deep-scan/shop/abc123"
    assert [r["ruleId"] for r in run["results"]] == ["semantic-duplication", "complex-dry"]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "cart/basket.py", "uriBaseId": "%SRCROOT%"}


def test_markdown_summary_top_files_and_each_finding_with_its_code(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = report.markdown(result(), RULES, meta(), root)
    assert text.startswith("# tinyarms deep scan: shop\n")
    assert "in 2 runs (resumed)" in text and "after 1 min 15 s" in text
    assert "- Files: 2 scanned, 1 skipped, 3 out of scope, 0 excluded" in text
    assert "Level 3: qwen2.5-coder:7b via ollama, 5 questions, 4 asked, 1 from the cache" in text
    assert "cross-file pairs by shingles: 1 pairs among 2 functions in 2 files" in text
    assert "| `semantic-duplication` | 3 | 0 | 1 | 0 | 1 |" in text and "| `complex-dry` | 3 | 0 | 0 | 1 | 1 |" in text
    assert "| `cart/basket.py` | 2 | warning |" in text  # top files, with the worst severity
    assert "#### lines 4-8: `semantic-duplication` (warning, qwen2.5-coder:7b, confidence 0.80)" in text
    assert "```python\n4| def basket_sum(entries, vat):\n5|     acc = 0\n" in text  # real line numbers
    # the other place of a cross-file finding, with its code
    assert "The other place, `billing/invoice.py`:\n\n```python\n1| def invoice_total(lines, rate):" in text
    assert "## Not checked" in text and "`big.py`: too-large" in text
    assert "`complex-dry` on 1 file: model-timeout" in text


def test_untrusted_text_cannot_inject_markup_or_break_a_code_block(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / "cart" / "basket.py").write_text("x = 1\ns = '```'\n")
    hostile = finding(line=2, end_line=2, message="<img src=x onerror=alert(1)> | **boom** # [link](http://x)")
    text = report.markdown(LintResult([hostile]), RULES, meta(), root)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt; \\| \\*\\*boom\\*\\* \\# \\[link\\]" in text
    assert "````python\n2| s = '```'\n````" in text  # a fence longer than any backtick run inside


def test_code_that_is_gone_is_said_to_be_gone(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    text = report.markdown(LintResult([finding(line=400, end_line=400, message="x")]), RULES, meta(), root)
    assert "(the code is no longer there)" in text


def test_reports_are_never_overwritten(tmp_path: Path) -> None:
    root, home = make_repo(tmp_path), tmp_path / "home"
    stamp = meta()
    first = report.write(result(), RULES, stamp, root, home, exit_code=1)
    second = report.write(LintResult(), RULES, stamp, root, home, exit_code=0)  # the same second
    assert first["markdown"] != second["markdown"] and Path(first["markdown"]).is_file()
    assert report.latest(home, root)["markdown"] == second["markdown"]
    assert "No findings." in Path(second["markdown"]).read_text()


def test_two_repositories_with_one_name_keep_their_own_reports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    one, two = make_repo(tmp_path / "a", "app"), make_repo(tmp_path / "b", "app")
    first = report.write(result(), RULES, meta(), one, home, exit_code=1)
    second = report.write(LintResult(), RULES, meta(), two, home, exit_code=0)
    assert Path(first["markdown"]).parent.name == "app"
    assert Path(second["markdown"]).parent.name.startswith("app-")
    assert report.latest(home, one) == first and report.latest(home, two) == second
    assert report.latest(home, tmp_path) is None


def test_a_known_false_positive_is_marked_in_the_markdown(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    result = LintResult([finding(), finding(line=5, end_line=5, feedback="false-positive")])
    text = report.markdown(result, RULES, meta(), root)
    assert "#### lines 4-8: `semantic-duplication` (warning, qwen2.5-coder:7b, confidence 0.80)\n" in text
    assert ("#### line 5: `semantic-duplication` (warning, qwen2.5-coder:7b, confidence 0.80, "
            "known false positive)") in text
