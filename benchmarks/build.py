"""Two llama.cpp builds side by side: prompt-eval and generation tokens/s on this machine.

Each build lives in its own Python environment (a venv with llama-cpp-python built one way);
the runs alternate between them so the machine's load falls on both alike, and the figures are
medians with each build's ratio to the first. What is measured is llama.cpp alone (the model
loaded in a fresh process, a fixed ~500-token prompt read, 64 tokens generated greedily), from
its own perf counters; a build that dies is reported with its signal.

    python benchmarks/build.py --build portable=.venv/bin/python --build native=/tmp/native/bin/python \\
        [--model PATH.gguf] [--runs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

MEASURE = r"""
import json, sys, time
import llama_cpp
path, threads = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
load = time.perf_counter() - started
code = "\n".join(f"    total_{i} = price_{i} * qty_{i} * (1 + rate_{i % 7})" for i in range(40))
prompt = "Review this Python function and list its problems:\ndef totals():\n" + code + "\n"
ctx = llm._ctx.ctx
llama_cpp.llama_perf_context_reset(ctx)
llm.create_completion(prompt, max_tokens=64, temperature=0.0)
perf = llama_cpp.llama_perf_context(ctx)
print(json.dumps({"load_s": load, "prompt_tokens": perf.n_p_eval,
                  "prompt_tps": perf.n_p_eval / (perf.t_p_eval_ms / 1000),
                  "gen_tokens": perf.n_eval, "gen_tps": perf.n_eval / (perf.t_eval_ms / 1000),
                  "system_info": llama_cpp.llama_print_system_info().decode()}))
"""


def measure(python: str, model: Path, threads: int) -> dict[str, object]:
    done = subprocess.run([python, "-c", MEASURE, str(model), str(threads)], capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        died = (f"died of {signal.Signals(-done.returncode).name}" if done.returncode < 0
                else f"exited with status {done.returncode}")
        last = done.stderr.strip().splitlines()[-1:]
        return {"error": died + (f": {last[0]}" if last else "")}
    return json.loads(done.stdout.strip().splitlines()[-1])


def default_model() -> Path:
    from tinyarms.models import registry

    path = registry.local_path("qwen2.5-coder:0.5b")
    if path is None:
        sys.exit("no model: pass --model PATH.gguf, or `tinyarms models fetch qwen2.5-coder:0.5b`")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="append", required=True, metavar="LABEL=PYTHON",
                        help="a label and the Python of the environment holding that build (repeat)")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    builds = [tuple(b.split("=", 1)) for b in args.build]
    model = args.model or default_model()
    results: dict[str, list[dict[str, object]]] = {label: [] for label, _ in builds}
    for run in range(args.runs):
        for label, python in builds if run % 2 == 0 else list(reversed(builds)):
            results[label].append(measure(python, model, args.threads))
    print(f"model {model.name}, {args.threads} threads, {args.runs} runs each, alternating; median (min-max)")
    base: dict[str, float] = {}
    for label, python in builds:
        ok = [r for r in results[label] if "error" not in r]
        if not ok:
            print(f"{label:<10} {results[label][0]['error']}  ({python})")
            continue
        line = f"{label:<10}"
        for key, unit in (("prompt_tps", "tok/s prompt"), ("gen_tps", "tok/s generation"), ("load_s", "s load")):
            values = [float(r[key]) for r in ok]  # type: ignore[arg-type]
            med = statistics.median(values)
            base.setdefault(key, med)
            line += f"  {med:7.1f} {unit} ({min(values):.1f}-{max(values):.1f}, x{med / base[key]:.2f})"
        print(line)
        print(f"{'':<10}  {ok[0]['system_info']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
