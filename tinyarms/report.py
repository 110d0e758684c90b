"""Deep-scan reports: Markdown for people, JSON for scripts, SARIF 2.1.0 for code-scanning tools.

    <state dir>/reports/<repo>/<timestamp>.md | .json | .sarif
    <state dir>/reports/<repo>/latest.json      the newest report's paths and summary (for ``status``)

The JSON is ``lint --format json``'s ``{"findings", "skipped", "stats"}`` plus ``"scan"`` (what
was scanned, when, how many runs). The SARIF is the lint renderer's log, with the repository
root as ``%SRCROOT%`` (a scan knows it) and an ``automationDetails`` id per scan. Every file is
written to a temporary name and renamed into place, so a reader never sees half a report.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinyarms.finding import FALSE_POSITIVE, SEVERITIES, Finding, LintResult, RuleMeta
from tinyarms.render import escape_surrogates, file_skips, group_rule_skips
from tinyarms.units import HOUR, MINUTE

LATEST = "latest.json"
TOP_FILES = 10
CODE_LINES = 12  # lines of code shown per finding (and per other place)
MIN_FENCE = 3  # backticks: the shortest Markdown code fence
_OTHER_PLACE = re.compile(r"\(other place: (?P<path>.+):(?P<line>\d+)\)$")


def reports_dir(home: Path, root: Path) -> Path:
    """``reports/<repo name>``; a second repository with the same name gets the name plus a hash,
    so two checkouts called ``app`` never share a ``latest.json``."""
    base = home / "reports"
    root = root.resolve()
    name = _safe(root.name) or "repo"
    for candidate in (name, f"{name}-{hashlib.sha256(os.fsencode(root)).hexdigest()[:8]}"):
        folder = base / candidate
        owner = folder / ".root"
        if not owner.exists():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_atomic(owner, str(root) + "\n")
            return folder
        if owner.read_text(encoding="utf-8").strip() == str(root):
            return folder
    return folder


def write(result: LintResult, rules: Mapping[str, RuleMeta], meta: dict[str, Any], root: Path, home: Path,
          *, exit_code: int) -> dict[str, Any]:
    """Write the three reports and the ``latest`` pointer; returns the pointer's content."""
    folder = reports_dir(home, root)
    stamp = time.strftime("%Y-%m-%dT%H%M%S", time.localtime(meta.get("finished") or time.time()))
    stem = stamp
    n = 1
    while any((folder / f"{stem}.{ext}").exists() for ext in ("md", "json", "sarif")):
        n += 1
        stem = f"{stamp}-{n}"
    paths = {ext: folder / f"{stem}.{ext}" for ext in ("md", "json", "sarif")}
    text = json.dumps(json_report(result, meta), indent=2, ensure_ascii=False)
    _write_atomic(paths["json"], escape_surrogates(text) + "\n")
    _write_atomic(paths["sarif"], escape_surrogates(json.dumps(sarif_report(result, rules, meta, root), indent=2,
                                                               ensure_ascii=False)) + "\n")
    _write_atomic(paths["md"], markdown(result, rules, meta, root))
    latest = {
        "root": str(root), "repo": root.name, "scan_id": meta.get("id"), "finished": meta.get("finished"),
        "markdown": str(paths["md"]), "json": str(paths["json"]), "sarif": str(paths["sarif"]),
        "exit_code": exit_code, "summary": summary(result),
    }
    _write_atomic(folder / LATEST, json.dumps(latest, indent=2) + "\n")
    return latest


def latest(home: Path, root: Path) -> dict[str, Any] | None:
    """The newest report of the repository at ``root``, as ``write`` returned it, or None."""
    base = home / "reports"
    if not base.is_dir():
        return None
    for folder in sorted(base.iterdir()):
        owner = folder / ".root"
        if owner.is_file() and owner.read_text(encoding="utf-8").strip() == str(root.resolve()):
            try:
                latest: dict[str, Any] = json.loads((folder / LATEST).read_text(encoding="utf-8"))
                return latest
            except (OSError, ValueError):
                return None
    return None


def summary(result: LintResult) -> dict[str, Any]:
    by_rule = Counter(f.rule for f in result.findings)
    by_severity = Counter(f.severity for f in result.findings)
    return {
        "files": result.stats.get("files"), "findings": len(result.findings),
        "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES},
        "by_rule": dict(sorted(by_rule.items())), "skipped": len(result.skipped),
    }


def json_report(result: LintResult, meta: dict[str, Any]) -> dict[str, Any]:
    return {**result.to_dict(), "scan": meta}


def sarif_report(result: LintResult, rules: Mapping[str, RuleMeta], meta: dict[str, Any], root: Path) -> dict[str, Any]:
    from urllib.parse import quote

    from tinyarms.render.sarif import SRCROOT, sarif_log

    log = sarif_log(result, rules)
    run = log["runs"][0]
    run["originalUriBaseIds"] = {SRCROOT: {"uri": "file://" + quote(str(root.resolve()).rstrip("/") + "/",
                                                                      safe="/", errors="surrogateescape")}}
    run["automationDetails"] = {"id": f"tinyarms/deep-scan/{_safe(root.name) or 'repo'}/{meta.get('id', '')}"}
    run["properties"] = {"scan": {k: meta.get(k) for k in ("id", "skills", "paths", "started", "finished", "runs",
                                                          "files_total")}}
    return log


# -- Markdown ------------------------------------------------------------------------------------


def markdown(result: LintResult, rules: Mapping[str, RuleMeta], meta: dict[str, Any], root: Path) -> str:
    lines = _source_reader(root)
    out: list[str] = [f"# tinyarms deep scan: {_text(root.name)}", ""]
    finished = meta.get("finished")
    stats = result.stats
    out += [
        f"- Repository: `{_code_span(str(root))}`",
        f"- Finished: {time.strftime('%Y-%m-%d %H:%M', time.localtime(finished)) if finished else '-'}"
        f" after {_duration((finished or 0) - (meta.get('started') or finished or 0))}"
        + (f" in {meta['runs']} runs (resumed)" if (meta.get("runs") or 1) > 1 else ""),
        f"- Skills: {', '.join(meta.get('skills') or [])}; paths: {', '.join(meta.get('paths') or ['.'])}",
        (f"- Files: {stats.get('files', 0)} scanned, {stats.get('files_skipped', 0)} skipped, "
         f"{stats.get('out_of_scope', 0)} out of scope, {stats.get('excluded', 0)} excluded"),
    ]
    for level, level_stats in sorted((stats.get("models") or {}).items()):
        out.append(f"- {_model_line(level, level_stats)}")
    out.append("")

    counts = Counter(f.severity for f in result.findings)
    if result.findings:
        out += ["## Summary", "", "| rule | level | " + " | ".join(SEVERITIES) + " | total |",
                "|---|---|" + "---|" * len(SEVERITIES) + "---|"]
        by_rule: dict[str, Counter[str]] = {}
        for f in result.findings:
            by_rule.setdefault(f.rule, Counter())[f.severity] += 1
        for rule, sev in sorted(by_rule.items(), key=lambda item: (-sum(item[1].values()), item[0])):
            level = rules[rule].level if rule in rules else "-"
            out.append(f"| `{rule}` | {level} | " + " | ".join(str(sev.get(s, 0)) for s in SEVERITIES)
                       + f" | {sum(sev.values())} |")
        out.append("| **all** | | " + " | ".join(f"**{counts.get(s, 0)}**" for s in SEVERITIES)
                   + f" | **{len(result.findings)}** |")
        out += ["", "## Top files", "", "| file | findings | worst |", "|---|---|---|"]
        per_file = Counter(f.path for f in result.findings)
        worst: dict[str, str] = {}
        for f in result.findings:
            if f.path not in worst or SEVERITIES.index(f.severity) < SEVERITIES.index(worst[f.path]):
                worst[f.path] = f.severity
        for path, n in sorted(per_file.items(), key=lambda item: (-item[1], item[0]))[:TOP_FILES]:
            out.append(f"| `{_code_span(path)}` | {n} | {worst[path]} |")
        out += ["", "## Findings", ""]
        current = None
        for f in sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.rule)):
            if f.path != current:
                current = f.path
                out += [f"### `{_code_span(f.path)}`", ""]
            out += _finding(f, lines)
    else:
        out += ["No findings.", ""]

    skipped_files = file_skips(result.skipped)
    groups = group_rule_skips(result.skipped)
    if skipped_files or groups:
        out += ["## Not checked", ""]
        for s in skipped_files:
            out.append(f"- `{_code_span(s.path or '-')}`: {_text(s.reason)}: {_text(s.message)}"
                       + (f" (hint: {_text(s.hint)})" if s.hint else ""))
        for g in groups:
            where = f" on {len(g.paths)} file{'s' if len(g.paths) != 1 else ''}" if g.paths else ""
            out.append(f"- `{g.rule}`{where}: {_text(g.reason)}: {_text(g.message)}"
                       + (f" (hint: {_text(g.hint)})" if g.hint else ""))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _finding(f: Finding, lines: Any) -> list[str]:
    where = f"line {f.line}" if f.end_line <= f.line else f"lines {f.line}-{f.end_line}"
    model = f", {f.model}, confidence {f.confidence:.2f}" if f.engine == "model" else ""
    known = ", known false positive" if f.feedback == FALSE_POSITIVE else ""
    out = [f"#### {where}: `{f.rule}` ({f.severity}{model}{known})", "", _text(f.message)]
    if f.suggestion:
        out += ["", f"Suggestion: {_text(f.suggestion)}"]
    out += ["", *_code(f.path, f.line, min(f.end_line, f.line + CODE_LINES - 1), lines)]
    other = _OTHER_PLACE.search(f.message)
    if other:
        line = int(other.group("line"))
        out += [f"The other place, `{_code_span(other.group('path'))}`:", "",
                *_code(other.group("path"), line, line + CODE_LINES - 1, lines)]
    return out


def _code(path: str, first: int, last: int, lines: Any) -> list[str]:
    text = lines(path)
    if not text or first > len(text):
        return ["(the code is no longer there)", ""]
    last = max(first, min(last, len(text)))
    width = len(str(last))
    rows = [f"{n:>{width}}| {text[n - 1]}" for n in range(first, last + 1)]
    fence = "`" * max(MIN_FENCE, 1 + max((len(m) for row in rows for m in re.findall(r"`+", row)), default=0))
    return [f"{fence}{_fence_language(path)}", *rows, fence, ""]


def _source_reader(root: Path) -> Any:
    cache: dict[str, list[str] | None] = {}

    def read(path: str) -> list[str] | None:
        if path not in cache:
            target = (root / path).resolve()
            try:
                if not target.is_relative_to(root.resolve()):
                    raise OSError("outside the repository")
                cache[path] = target.read_text(encoding="utf-8", errors="replace").split("\n")
            except OSError:
                cache[path] = None
        return cache[path]

    return read


_LANGUAGES = {".py": "python", ".js": "javascript", ".jsx": "jsx", ".ts": "typescript", ".tsx": "tsx", ".css": "css"}


def _fence_language(path: str) -> str:
    return _LANGUAGES.get(os.path.splitext(path)[1].lower(), "")


def _model_line(level: str, s: dict[str, Any]) -> str:
    if level == "1":
        if not s.get("used"):
            return f"Level 1 (embeddings): not used — {_text(str(s.get('why')))}"
        return (f"Level 1 (embeddings): {_text(str(s.get('model')))} via {s.get('backend')}, "
                f"{s.get('functions', 0)} functions, {s.get('embedded', 0)} embedded, "
                f"{s.get('cached', 0)} from the cache")
    if not s.get("backend"):
        return f"Level {level}: no model — {_text(str(s.get('why')))}"
    line = (f"Level {level}: {_text(str(s.get('model')))} via {s.get('backend')}, {s.get('questions', 0)} questions, "
            f"{s.get('asked', 0)} asked, {s.get('cached', 0)} from the cache "
            f"({s.get('seconds', 0):.0f} s of model time)")
    cross = s.get("cross_file")
    if isinstance(cross, dict):
        line += (f"; cross-file pairs by {cross.get('finder')}: {cross.get('pairs', 0)} pairs among "
                 f"{cross.get('functions', 0)} functions in {cross.get('files', 0)} files")
    return line


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < HOUR:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // HOUR} h {seconds % HOUR // MINUTE} min"


def _text(text: str) -> str:
    """Model output and file names are untrusted: no HTML, no Markdown structure of their own."""
    flat = " ".join(text.split())
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", html.escape(flat, quote=False))


def _code_span(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
