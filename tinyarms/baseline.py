"""Baselines: fingerprints of findings a codebase already has, which then do not fail a run.

So a large existing codebase can adopt tinyarms today and fix the old findings at its own pace;
only new findings fail. Fingerprints survive code moving up and down (see ``finding.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tinyarms.errors import ConfigError
from tinyarms.finding import Finding, LintResult

FORMAT = 1


def write(path: Path, result: LintResult) -> int:
    entries = sorted(
        ({"fingerprint": f.fingerprint, "path": f.path, "line": f.line, "rule": f.rule} for f in result.findings),
        key=lambda e: (e["path"], e["line"], e["rule"]),
    )
    path.write_text(json.dumps({"tinyarms_baseline": FORMAT, "findings": entries}, indent=2) + "\n", encoding="utf-8")
    return len(entries)


def read(path: Path) -> frozenset[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read baseline: {exc.strerror or exc}"]) from None
    except ValueError as exc:
        raise ConfigError([f"{path}: not a tinyarms baseline (invalid JSON: {exc})"]) from None
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("tinyarms_baseline") != FORMAT or not isinstance(findings, list):
        raise ConfigError([f"{path}: not a tinyarms baseline; write one with `tinyarms baseline write {path}`"])
    return frozenset(e["fingerprint"] for e in data["findings"] if isinstance(e, dict) and "fingerprint" in e)


def apply(result: LintResult, fingerprints: frozenset[str]) -> None:
    kept: list[Finding] = [f for f in result.findings if f.fingerprint not in fingerprints]
    result.stats["baselined"] = len(result.findings) - len(kept)
    result.findings = kept
    result.stats["findings"] = len(kept)
    result.stats["by_severity"] = {s: sum(1 for f in kept if f.severity == s) for s in ("error", "warning", "info")}
