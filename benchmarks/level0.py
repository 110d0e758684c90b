"""Level 0 over a large real corpus every machine has: the running Python's standard library.

Cold (empty result cache) and warm (every file cached), in one process, on all cores.
Targets on a 2-core machine: cold <= 10 s, warm <= 1 s.

    python benchmarks/level0.py [--runs 3] [--workers N] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--corpus", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["TINYARMS_HOME"] = home
        from tinyarms import files, router
        from tinyarms.ruleset import load_settings

        corpus = args.corpus.resolve()
        # site-packages is not the standard library: whatever happens to be installed would
        # make the figures incomparable between machines.
        settings = load_settings(None)
        settings.root = corpus
        settings.ruleset.root = str(corpus)
        namer = files.Namer(corpus, corpus)

        # Named explicitly: the stdlib may sit inside a git checkout that ignores it (pyenv does),
        # and a walk through git would then rightly find nothing.
        paths = sorted(
            str(Path(folder, name))
            for folder, dirs, names in os.walk(corpus)
            if Path(folder).relative_to(corpus).parts[:1] != ("site-packages",)
            for name in names
            if name.endswith(".py")
        )

        def one_run() -> tuple[float, object]:
            started = time.perf_counter()
            collected = files.collect_paths(paths, settings.ruleset, namer, settings.config.max_file_bytes)
            result = router.run(settings, collected.jobs, router.LintOptions(workers=args.workers))
            return time.perf_counter() - started, result

        cold, warm = [], []
        for _ in range(args.runs):
            cache = Path(home) / "cache.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{cache}{suffix}").unlink(missing_ok=True)
            seconds, result = one_run()
            cold.append(seconds)
            seconds, warm_result = one_run()
            warm.append(seconds)
            assert warm_result.stats["cache_misses"] == 0, "warm run missed the cache"
            assert len(warm_result.findings) == len(result.findings), "cached findings differ"

        stats = result.stats
        lines = stats["lines"]
        cold_s, warm_s = statistics.median(cold), statistics.median(warm)
        print(f"corpus      {corpus} (site-packages excluded)")
        print(f"files       {stats['files']} linted, {stats['files_skipped']} skipped")
        print(f"lines       {lines}")
        print(f"findings    {stats['findings']} {stats['by_severity']}")
        print(f"workers     {args.workers}, runs {args.runs}")
        print(f"cold        median {cold_s:.2f} s  ({lines / cold_s:,.0f} lines/s)  "
              f"runs: {', '.join(f'{s:.2f}' for s in cold)}")
        print(f"warm        median {warm_s:.2f} s  ({lines / warm_s:,.0f} lines/s)  "
              f"runs: {', '.join(f'{s:.2f}' for s in warm)}")
        print(f"warm/cold   {cold_s / warm_s:.1f}x faster")
        print(f"per file    cold {cold_s / stats['files'] * 1000:.2f} ms, warm {warm_s / stats['files'] * 1000:.3f} ms")
        per_rule(settings, paths[:: max(1, len(paths) // 300)], corpus)


def per_rule(settings, paths: list[str], corpus: Path) -> None:
    """Single-core cost per file of parsing and of each Level 0 rule, on a sample of files."""
    from tinyarms.rules import CHECKS, Context, load_check
    from tinyarms.source import Source, make_source

    sources = [make_source(p, str(Path(p).relative_to(corpus)), Path(p).read_bytes()) for p in paths]
    sources = [s for s in sources if isinstance(s, Source)]
    lines = sum(len(s.lines) for s in sources)
    started = time.perf_counter()
    for src in sources:
        src.captures("comment")  # parse + query, shared by every rule
    parse_ms = (time.perf_counter() - started) * 1000 / len(sources)
    print(f"sample      {len(sources)} files, {lines / len(sources):.0f} lines each on average, one core")
    print(f"  parse + query      {parse_ms:.3f} ms/file")
    context = Context(str(corpus))
    for rule in settings.ruleset.rules:
        if rule.level != 0:
            continue
        check = load_check(rule.check)
        params = CHECKS[rule.check].params.model_validate(rule.params)
        started = time.perf_counter()
        for src in sources:
            for _ in check(src, params, context):
                pass
        print(f"  {rule.id:<18} {(time.perf_counter() - started) * 1000 / len(sources):.3f} ms/file")


if __name__ == "__main__":
    main()
