"""The embedded model on this machine: load, latency, throughput, memory, and a real lint.

With llama.cpp in this process (`pip install 'tinyarms[embedded]'`) and the model fetched
(`tinyarms models fetch qwen2.5-coder:0.5b`): load time, time to the first token, prompt and
generation tokens/s, peak RSS, and the wall time of the fast skill's model level on a 100-line
file (per file and per candidate question). Several runs; medians.
Target here: <= 6 s per 100-line file on 2 cores for a typical staged change.

    python benchmarks/model.py [--model qwen2.5-coder:0.5b] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

CLONES = '''\
"""Order totals for the shop's three regions."""

from dataclasses import dataclass

VAT_EU = 0.2
SALES_TAX_US = 0.08
GST_AU = 0.1


@dataclass
class Item:
    name: str
    price: float
    qty: int


def total_eu(items):
    total = 0
    for item in items:
        if item.qty <= 0:
            continue
        total += item.price * item.qty
    return round(total * (1 + VAT_EU), 2)


def total_us(basket):
    amount = 0
    for entry in basket:
        if entry.qty <= 0:
            continue
        amount += entry.price * entry.qty
    return round(amount * (1 + SALES_TAX_US), 2)
'''


def sample_file() -> str:
    """100 lines: the clone pair above plus real, unrelated code (the standard library's shlex)."""
    import shlex

    real = Path(shlex.__file__).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(real) if line.startswith("def split("))
    lines = CLONES.splitlines() + [""] * 2 + real[start:]
    return "\n".join(lines[:100]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder:0.5b")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    import psutil

    from tinyarms.models import registry

    path = registry.local_path(args.model)
    if path is None:
        sys.exit(f"model {args.model} is not fetched: run `tinyarms models fetch {args.model}`")
    import llama_cpp

    me = psutil.Process()
    rss_before = me.memory_info().rss
    loads = []
    for _ in range(args.runs):
        started = time.perf_counter()
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=args.threads, verbose=False)
        loads.append(time.perf_counter() - started)
        del llm
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, n_threads=args.threads, verbose=False)

    from tinyarms.candidates import simple_dry
    from tinyarms.models import answer, prompts
    from tinyarms.ruleset import load_settings
    from tinyarms.source import make_source

    settings = load_settings(None)
    rule = next(r for r in settings.ruleset.rules if r.id == "simple-dry")
    code = sample_file()
    src = make_source("shop/totals.py", "shop/totals.py", code.encode())
    candidate = next(c for c in simple_dry.find(src, rule.id, 8) if c.lines[0][0] < 30)
    prompt = prompts.user_prompt(rule.id, rule.description, list(rule.examples), src.path, src.lines, candidate)
    schema = answer.schema([rule.id])
    messages = [{"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": prompt}]

    usage = llm.create_chat_completion(
        messages=messages, response_format={"type": "json_object", "schema": schema}, temperature=0, max_tokens=256,
    )["usage"]
    prompt_tokens = usage["prompt_tokens"]
    first_tokens, prompt_rates, gen_rates, valid = [], [], [], 0
    for _ in range(args.runs):
        llm.reset()  # no prompt cache between runs: measure the real prompt evaluation
        started = time.perf_counter()
        first = None
        text = ""
        count = 0
        for chunk in llm.create_chat_completion(
            messages=messages, response_format={"type": "json_object", "schema": schema},
            temperature=0, max_tokens=256, stream=True,
        ):
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                if first is None:
                    first = time.perf_counter() - started
                text += delta
                count += 1
        total = time.perf_counter() - started
        first_tokens.append(first or total)
        prompt_rates.append(prompt_tokens / (first or total))
        gen_rates.append((count - 1) / max(1e-9, total - (first or total)) if count > 1 else 0.0)
        try:
            answer.parse(text, {rule.id}, prompts.shown_lines(candidate))
            valid += 1
        except answer.BadAnswer:
            pass
    peak = max(me.memory_info().rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    del llm

    lint_times, questions = lint_runs(code, str(path), args.runs)

    med = statistics.median
    print(f"model        {args.model} ({path.name}, {path.stat().st_size / (1 << 20):.0f} MiB), "
          f"{args.threads} threads, runs {args.runs}")
    print(f"load         median {med(loads):.2f} s  (runs: {', '.join(f'{s:.2f}' for s in loads)})")
    print(f"first token  median {med(first_tokens):.2f} s for a {prompt_tokens}-token prompt "
          f"(prompt eval {med(prompt_rates):.0f} tok/s)")
    print(f"generation   median {med(gen_rates):.1f} tok/s (schema-constrained)")
    print(f"schema-valid {valid}/{args.runs} answers")
    print(f"peak RSS     {peak / (1 << 20):.0f} MiB (process before loading: {rss_before / (1 << 20):.0f} MiB)")
    print(f"lint         100-line file, fast skill through the embedded backend: "
          f"median {med(lint_times):.2f} s per file, "
          f"{questions} question(s), {med(lint_times) / max(1, questions):.2f} s per candidate (model loaded)")


def lint_runs(code: str, model: str, runs: int) -> tuple[list[float], int]:
    """The real path: router.run with the embedded backend; the model stays loaded between runs,
    as it does in the daemon. No result cache, so every run asks the model."""
    from tinyarms import router
    from tinyarms.levels.level0 import Job
    from tinyarms.ruleset import load_settings

    home = tempfile.mkdtemp(prefix="tinyarms-bench-model-")
    os.environ["TINYARMS_HOME"] = home
    settings = load_settings(None, {"models": {"backend": "embedded", "fast": {"embedded": model}}})
    times, questions = [], 0
    for run in range(runs + 1):  # the first run loads the model; not counted
        # Each run's code differs inside the shown lines, as two commits' code does: llama.cpp
        # reuses the evaluated prefix of a prompt it has seen, and an identical prompt would
        # measure only that. (The shared system prompt and rule text are reused for real.)
        varied = code.replace("basket", f"basket_{run}")
        started = time.perf_counter()
        result = router.run(settings, [Job("shop/totals.py", "shop/totals.py", varied.encode())],
                            router.LintOptions(use_cache=False, budget=None))
        times.append(time.perf_counter() - started)
        stats = (result.stats.get("models") or {}).get("2") or {}
        questions = stats.get("questions", 0)
        if stats.get("backend") != "embedded":
            sys.exit(f"the embedded backend did not run: {stats}")
    return times[1:], questions


if __name__ == "__main__":
    main()
