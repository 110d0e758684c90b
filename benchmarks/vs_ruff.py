"""tinyarms next to ruff on the same tree, in one run: Level 0 through the CLI as a user runs it.

The tree is a copy of the running Python's standard library (site-packages and __pycache__
left out, so every machine lints the same files), outside any git checkout. Each round runs,
alternating so that the machine's noise falls on both tools alike:

- tinyarms cold: ``tinyarms lint --no-daemon --format json .`` with an empty state directory;
- tinyarms cached: the same again (every file in the result cache);
- ruff cold / cached: ``ruff check --no-cache`` / ``ruff check`` with three rules akin to
  tinyarms's Level 0 (magic values, relative imports, long lines), ``--output-format json``.

Targets on 2 cores: tinyarms cached <= 0.5 s, cold <= 3 s. Prints medians and the ratios.

    python benchmarks/vs_ruff.py [--rounds 5] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

RUFF_RULES = "PLR2004,TID252,E501"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tree", type=Path, help="lint this folder instead of a copy of the standard library")
    args = parser.parse_args()

    tinyarms = shutil.which("tinyarms", path=str(Path(sys.executable).parent)) or shutil.which("tinyarms")
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if tinyarms is None:
        sys.exit("tinyarms is not installed in this environment (pip install -e .)")
    with tempfile.TemporaryDirectory() as scratch:
        tree = args.tree.resolve() if args.tree else copy_stdlib(Path(scratch) / "stdlib")
        times: dict[str, list[float]] = {"tinyarms cold": [], "tinyarms cached": [], "ruff cold": [], "ruff cached": []}
        counts: dict[str, int] = {}
        files = sum(1 for _ in tree.rglob("*.py"))
        for i in range(args.rounds):
            home = Path(scratch) / f"home{i}"
            env = {**os.environ, "TINYARMS_HOME": str(home), "TINYARMS_CONFIG": str(home / "none.yaml")}
            lint = [tinyarms, "lint", "--no-daemon", "--format", "json", "."]
            times["tinyarms cold"].append(timed(lint, tree, env))
            seconds, out = timed_output(lint, tree, env)
            times["tinyarms cached"].append(seconds)
            counts["tinyarms"] = out.count(b'"rule":')
            if ruff:
                check = [ruff, "check", "--select", RUFF_RULES, "--output-format", "json", "--exit-zero", "--quiet",
                         "--cache-dir", str(Path(scratch) / f"ruff{i}"), "."]
                times["ruff cold"].append(timed([*check, "--no-cache"], tree, env))
                timed(check, tree, env)  # fills ruff's cache
                seconds, out = timed_output(check, tree, env)
                times["ruff cached"].append(seconds)
                counts["ruff"] = out.count(b'"code":')

    print(f"tree: {args.tree or 'the standard library (a copy)'}, {files} Python files, {args.rounds} rounds, "
          f"{os.cpu_count()} cores")
    print(f"findings: tinyarms {counts.get('tinyarms')} (Level 0, default rules)"
          + (f", ruff {counts.get('ruff')} ({RUFF_RULES})" if ruff else ", ruff not installed"))
    print(f"{'':<18}{'median':>9}{'min':>9}")
    for name, values in times.items():
        if values:
            print(f"{name:<18}{statistics.median(values):>8.2f}s{min(values):>8.2f}s")
    if ruff:
        for kind in ("cold", "cached"):
            ratio = statistics.median(times[f"tinyarms {kind}"]) / statistics.median(times[f"ruff {kind}"])
            print(f"tinyarms / ruff, {kind}: x{ratio:.1f}")
    cold, cached = statistics.median(times["tinyarms cold"]), statistics.median(times["tinyarms cached"])
    print(f"targets: cached <= 0.5 s: {'met' if cached <= 0.5 else 'NOT met'} ({cached:.2f} s); "
          f"cold <= 3 s: {'met' if cold <= 3 else 'NOT met'} ({cold:.2f} s)")


def copy_stdlib(target: Path) -> Path:
    source = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True)
    return target


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    return timed_output(command, cwd, env)[0]


def timed_output(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command[:3])} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")
    return seconds, done.stdout


if __name__ == "__main__":
    main()
