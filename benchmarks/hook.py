"""The git hook with a warm daemon against a cold in-process lint, on the same 10 staged files.

In one run: the real installed hook (what `git commit` executes) with the daemon running and
the files already cached, and `tinyarms lint --staged --no-daemon` in a fresh process with no
result cache. Targets: hook <= 50 ms median, >= 10x faster than cold.

    python benchmarks/hook.py [--runs 15]
"""

# tinyarms: ignore-file[hardcoded-colors]  the colours are data: planted in the files this benchmark
# generates, for the rule to find

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TSX = ('import {{ fmt }} from "../../utils/format";\n'
       'export const C{i} = () => <div className="bg-[#ff0000] p-{i}">{{fmt({i}99)}}</div>;\n')
PY = "MAX = {i}\n\n\ndef f{i}(x, base=2):\n    # see line 3\n    return x * base + {i}7\n"
CSS = ".c{i} {{ color: #3b82f6; margin: {i}px; }}\n"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tinyarms-bench-hook-"))
    env = {**os.environ, "TINYARMS_HOME": str(workdir / "state"), "TINYARMS_CONFIG": str(workdir / "none.yaml")}
    repo = workdir / "repo"
    (repo / "src/features/a").mkdir(parents=True)
    try:
        git = ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench"]
        subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
        for i in range(4):
            (repo / f"src/features/a/C{i}.tsx").write_text(TSX.format(i=i))
            (repo / f"src/m{i}.py").write_text(PY.format(i=i))
        for i in range(2):
            (repo / f"src/s{i}.css").write_text(CSS.format(i=i))
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        tinyarms = [sys.executable, "-m", "tinyarms"]
        subprocess.run([*tinyarms, "hook", "install"], cwd=repo, env=env, check=True, capture_output=True)
        hook = repo / ".git/hooks/pre-commit"
        subprocess.run([*tinyarms, "daemon", "start"], cwd=repo, env=env, check=True, capture_output=True)
        try:
            seconds, first = timed([str(hook)], repo, env)  # fills the cache
            assert first.returncode == 1 and "hardcoded-colors" in first.stdout, first.stdout + first.stderr
            hook_times, cold_times, warm_inproc = [], [], []
            for _ in range(args.runs):
                seconds, done = timed([str(hook)], repo, env)
                assert done.stdout == first.stdout, "the hook's answer changed between runs"
                hook_times.append(seconds)
                seconds, done = timed([*tinyarms, "lint", "--staged", "--no-daemon", "--no-cache"], repo, env)
                assert done.returncode == 1
                cold_times.append(seconds)
                seconds, done = timed([*tinyarms, "lint", "--staged", "--no-daemon"], repo, env)
                warm_inproc.append(seconds)
        finally:
            subprocess.run([*tinyarms, "daemon", "stop"], cwd=repo, env=env, capture_output=True, check=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    hook_ms = statistics.median(hook_times) * 1000
    cold_ms = statistics.median(cold_times) * 1000
    warm_ms = statistics.median(warm_inproc) * 1000
    print(f"files       10 staged (4 tsx, 4 py, 2 css), runs {args.runs}")
    print(f"hook        median {hook_ms:6.1f} ms  (min {min(hook_times) * 1000:.1f}, "
          f"max {max(hook_times) * 1000:.1f})  warm daemon, cached")
    print(f"cold lint   median {cold_ms:6.1f} ms  (min {min(cold_times) * 1000:.1f}, "
          f"max {max(cold_times) * 1000:.1f})  --no-daemon --no-cache")
    print(f"in-process  median {warm_ms:6.1f} ms  --no-daemon, result cache warm")
    print(f"ratio       hook is {cold_ms / hook_ms:.1f}x faster than cold, "
          f"{warm_ms / hook_ms:.1f}x faster than in-process cached")


if __name__ == "__main__":
    main()
