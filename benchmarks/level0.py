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
        settings = load_settings(None, {"exclude": ["site-packages/"]})
        settings.root = corpus
        settings.ruleset.root = str(corpus)
        namer = files.Namer(corpus, corpus)

        def one_run() -> tuple[float, object]:
            started = time.perf_counter()
            collected = files.collect_paths([str(corpus)], settings.ruleset, namer, settings.config.max_file_bytes)
            result = router.run(settings, collected.jobs, router.LintOptions(workers=args.workers))
            return time.perf_counter() - started, result

        cold, warm = [], []
        for i in range(args.runs):
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
        print(f"cold        median {cold_s:.2f} s  ({lines / cold_s:,.0f} lines/s)  runs: {', '.join(f'{s:.2f}' for s in cold)}")
        print(f"warm        median {warm_s:.2f} s  ({lines / warm_s:,.0f} lines/s)  runs: {', '.join(f'{s:.2f}' for s in warm)}")
        print(f"warm/cold   {cold_s / warm_s:.1f}x faster")
        print(f"per file    cold {cold_s / stats['files'] * 1000:.2f} ms, warm {warm_s / stats['files'] * 1000:.3f} ms")


if __name__ == "__main__":
    main()
