"""``tinyarms bench [--model NAME ...] [--compare A B] [--runs N] [--json]``: each model's speed,
memory and answer validity on the router's own questions, kept under the state directory."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tinyarms.units import GIB, MIB

# tinyarms.quality.bench and asyncio are imported in run(): every command, lint too, builds this parser.

MAX_LINES = 300  # the longest file --sizes may ask for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", metavar="NAME",
                        help="a model to measure (repeatable); default: the configured fast and deep models")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="two models (or quantisations) side by side, with how far their findings agree")
    parser.add_argument("--backend", choices=("auto", "ollama", "embedded", "openai"),
                        help="default: models.backend from config")
    parser.add_argument("--runs", type=_positive, default=3, help="runs per model (default 3): medians and spread")
    parser.add_argument("--sizes", type=_sizes, default=None, metavar="N,N,...",
                        help="file sizes in lines, at most 300 (default 50,100,300)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per question (default 120)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected line counts such as 50,100,300") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > MAX_LINES:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be between 1 and {MAX_LINES} lines")
    return sizes


def run(args: argparse.Namespace) -> int:
    import asyncio

    from tinyarms.config import load_config
    from tinyarms.quality import bench

    config = load_config(None).config.models
    if args.backend:
        config = config.model_copy(update={"backend": args.backend})
    backend, problem = asyncio.run(_backend(config))
    if backend is None:
        print(f"tinyarms: error: {problem}", file=sys.stderr)
        return 1
    from tinyarms.models.select import model_for
    from tinyarms.skills import DEEP_LEVEL, FAST_LEVEL

    models = list(args.compare or args.model or dict.fromkeys(
        [model_for(config, backend.name, FAST_LEVEL), model_for(config, backend.name, DEEP_LEVEL)]))
    if not args.json:
        print(f"measuring {', '.join(models)} on the {backend.name} backend, {args.runs} run(s)...", file=sys.stderr)

    async def measure() -> dict[str, Any]:
        try:
            return await bench.bench(backend, models, args.runs, sizes=args.sizes or bench.SIZES, timeout=args.timeout)
        finally:
            await backend.close()

    doc = asyncio.run(measure())
    path = bench.save(doc)
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if args.json else table(doc) + f"\nkept in {path}\n")
    return 0 if any("error" not in m for m in doc["models"]) else 1


async def _backend(config: Any) -> tuple[Any, str | None]:
    """The backend to measure: the one lint would use, streamed where it can stream."""
    from tinyarms.models import select

    if config.backend == "embedded" and select.embedded_installed():
        from tinyarms.models.llamacpp import EmbeddedBackend

        return EmbeddedBackend(config.embedded), None  # a model not fetched is reported per model
    choice = await select.choose(config, 2)
    if choice.backend is None:
        return None, choice.why + (f"; {choice.hint}" if choice.hint else "")
    if choice.name == "ollama":
        from tinyarms.models.ollama import OllamaBackend

        await choice.backend.close()
        return OllamaBackend(config.ollama, stream=True), None
    return choice.backend, None


# -- text ------------------------------------------------------------------------------------------


def table(doc: dict[str, Any]) -> str:
    models = doc["models"]
    m = doc["machine"]
    threads = f", {doc['threads']} threads" if doc.get("threads") else ""
    load = f", load average {m['load_avg_1m']:.1f}" if m.get("load_avg_1m") is not None else ""
    head = (f"tinyarms bench: {doc['backend']} backend{threads}; {m['cores']} cores, {_gib(m['ram_bytes'])} RAM{load}; "
            f"{doc['runs']} run(s); median (min-max)")
    rows: list[tuple[str, list[str]]] = [("model", [e["model"] for e in models])]
    ok = [e for e in models if "error" not in e]
    if ok:
        rows += [
            ("load", [_cell(e, "load_s", "s") for e in models]),
            ("first token", [_cell(e, "first_token_s", "s") for e in models]),
            ("prompt eval", [_cell(e, "prompt_tps", "tok/s") for e in models]),
            ("generation", [_cell(e, "gen_tps", "tok/s") for e in models]),
            ("per question", [_cell(e, "question_s", "s") for e in models]),
        ]
        if any(e.get("wire_ms") for e in ok):
            rows.append(("worker round trip", [_cell(e, "wire_ms", "ms") for e in models]))
        if any(e.get("yes_no_scored_s") for e in ok):
            rows += [("yes/no, generated", [_cell(e, "yes_no_generated_s", "s") for e in models]),
                     ("yes/no, scored", [_cell(e, "yes_no_scored_s", "s") for e in models])]
        for size in doc["sizes"]:
            rows.append((f"{size}-line file", [_file(e, str(size)) for e in models]))
        rows += [
            ("valid JSON", [_share(e, "json_valid") for e in models]),
            ("schema-valid", [_share(e, "schema_valid") for e in models]),
            ("peak RSS", [_rss(e) for e in models]),
            ("errors", [_errors(e) for e in models]),
        ]
    width = max(len(label) for label, _ in rows)
    cols = [max(len(row[1][i]) for row in rows) for i in range(len(models))]
    lines = [head, ""]
    for label, cells in rows:
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:<{cols[i]}}" for i, c in enumerate(cells)).rstrip())
    for e in models:
        if "error" in e:
            lines.append(f"{e['model']}: not measured: {e['error']}" + (f" ({e['hint']})" if e.get("hint") else ""))
    if doc.get("compare"):
        lines.append("")
        lines += compare_lines(doc)
    return "\n".join(lines) + "\n"


def compare_lines(doc: dict[str, Any]) -> list[str]:
    c = doc["compare"]
    a, b = (next(e for e in doc["models"] if e["model"] == name) for name in c["models"])
    out = [f"{c['models'][0]} vs {c['models'][1]}, same {c['questions']} questions"
           + (f" ({c['unanswered']} not answered by both, left out)" if c["unanswered"] else "") + ":"]
    for label, key in (("per question", "question_s"), ("100-line file", None)):
        x, y = _median(a, key, "100"), _median(b, key, "100")
        if x and y:
            out.append(f"  {label:<14}{y / x:.2f}x the time of {a['model']}")
    if a.get("peak_rss_bytes") and b.get("peak_rss_bytes"):
        grow = [e["peak_rss_bytes"] - e["rss_before_bytes"] for e in (a, b)]
        if grow[0] > 0:
            out.append(f"  {'memory':<14}{grow[1] / grow[0]:.2f}x the RSS growth of {a['model']}")
    n = max(1, c["questions"])
    out.append(f"  {'same verdict':<14}{c['same_verdict']}/{c['questions']} ({c['same_verdict'] / n:.0%}) "
               "(both flag something, or both flag nothing)")
    out.append(f"  {'identical':<14}{c['identical']}/{c['questions']} ({c['identical'] / n:.0%}) "
               "(the same lines flagged)")
    share = "-" if c["overlap_share"] is None else f"{c['overlap_share']:.0%}"
    out.append(f"  {'overlap':<14}{c['overlap']} of {c['flagged'][0]} / {c['flagged'][1]} flagged lines in common "
               f"({share} of all flagged)")
    return out


def _median(e: dict[str, Any], key: str | None, size: str) -> float | None:
    s = e.get(key) if key else (e.get("file_s") or {}).get(size)
    return s["median"] if s else None


def _cell(e: dict[str, Any], key: str, unit: str) -> str:
    if "error" in e:
        return "-"
    s = e.get(key)
    if not s:
        return "n/a"
    digits = 0 if unit == "tok/s" and s["median"] >= 100 else (1 if unit in ("tok/s", "ms") else 2)
    return f"{s['median']:.{digits}f} {unit} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _file(e: dict[str, Any], size: str) -> str:
    if "error" in e:
        return "-"
    s = (e.get("file_s") or {}).get(size)
    questions = e["questions"].get(size, 0)
    if not s:
        return "n/a"
    return f"{s['median']:.2f} s ({s['min']:.2f}-{s['max']:.2f}), {questions} q"


def _share(e: dict[str, Any], key: str) -> str:
    if "error" in e:
        return "-"
    n = e["answers"]
    return f"{e[key]}/{n} ({e[key] / n:.0%})" if n else "n/a"


def _rss(e: dict[str, Any]) -> str:
    if "error" in e or e.get("peak_rss_bytes") is None:
        return "-" if "error" in e else "n/a (server process)"
    return f"{_mib(e['peak_rss_bytes'])} (before load {_mib(e['rss_before_bytes'])})"


def _errors(e: dict[str, Any]) -> str:
    if "error" in e:
        return "-"
    return ", ".join(f"{k} x{v}" for k, v in e["errors"].items()) or "none"


def _mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def status_line(doc: dict[str, Any] | None) -> str:
    """The last bench's figures in one line, for ``tinyarms status``."""
    if not doc:
        return "never run (`tinyarms bench`)"
    parts = []
    for e in doc["models"]:
        if "error" in e:
            parts.append(f"{e['model']} not measured")
            continue
        per_file = _median(e, None, "100")
        first = e.get("first_token_s")
        parts.append(
            f"{e['model']} " + (f"{per_file:.1f} s/100-line file, " if per_file else "")
            + (f"first token {first['median']:.1f} s, " if first else "")
            + f"{e['schema_valid']}/{e['answers']} schema-valid")
    return f"{doc['at']} ({doc['backend']}): " + "; ".join(parts)
