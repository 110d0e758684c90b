"""The deep scan at scale: the tinyarms source and a synthetic 500-file repository, with the
embedded model on this machine; and what a 500-file weekly scan takes with a 7B model.

A model question costs seconds on a laptop CPU, so a full deep scan of 500 files (every function,
two per-file rules, plus the cross-file pairs) is hours of model time, not a benchmark. This
script therefore measures separately what scales with files and what scales with questions:

1. **Pipeline**, every file: the deep scan of each corpus with an instant stand-in model (the
   test suite's fake Ollama, answering "no violation" at once) — listing, reading, parsing,
   candidates, cross-file pairs, prompts, the cache, the journal, the three reports — and how
   many model questions a real scan asks (default bounds, and ``--max-questions``); then a rescan.
2. **Model**, a sample of files (``--sample``, planted duplicates included): the real deep scan
   with the embedded model, at most ``--max-questions`` questions per file and rule (default 1)
   and ``--max-pairs`` cross-file pairs per rule (default 2),
   then again unchanged for the cache hit rate on a rescan. Files/min, questions, s/question,
   peak RSS (psutil, sampled every 50 ms).
3. **Ratio**: the same real deep-scan prompts, read and answered by ``--model`` and by ``--compare``
   (1.5B) through llama.cpp directly: prompt and generation tokens/s of each. (Whole questions are
   not compared: the models answer at different lengths; a "yes" is many times an empty answer.)
   The per-token rates are extrapolated by model file size to a 7B model and applied to a typical
   question. The 7B figure is a *projection* for this CPU, not a measurement.

Default run: about 5 minutes on 2 cores with ``qwen2.5-coder:0.5b`` (``tinyarms models fetch``
it and ``qwen2.5-coder:1.5b`` first).

    python benchmarks/scan.py [--model qwen2.5-coder:0.5b] [--compare qwen2.5-coder:1.5b|none]
                              [--files 500] [--sample 12] [--source-sample 6] [--max-questions 1]
                              [--max-pairs 2]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from synthetic_repo import make_repo  # beside this script: run as `python benchmarks/scan.py`

ROOT = Path(__file__).resolve().parent.parent
# Q4_K_M GGUF sizes in MiB: what a token's compute and memory traffic scale with on a CPU.
SIZE_MIB = {"qwen2.5-coder:0.5b": 469, "qwen2.5-coder:1.5b": 1066, "qwen2.5-coder:3b": 1930, "qwen2.5-coder:7b": 4466}


# -- measuring ------------------------------------------------------------------------------------


class PeakRSS:
    """The process's resident memory, sampled with psutil; ``peak`` since the last ``reset``."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._me.memory_info().rss)

    def reset(self) -> None:
        self.peak = self._me.memory_info().rss

    def mib(self) -> float:
        return max(self.peak, self._me.memory_info().rss) / (1 << 20)


def timed_scan(root: Path, paths: list[str], rss: PeakRSS, **options):
    from tinyarms import scan

    rss.reset()
    started = time.perf_counter()
    outcome = scan.run(root, scan.ScanOptions(paths=paths, restart=True, **options))
    return outcome, time.perf_counter() - started, rss.mib()


def level3(outcome) -> dict:
    return (outcome.result.stats.get("models") or {}).get("3") or {}


def per_question(outcome, seconds: float) -> float:
    asked = level3(outcome).get("asked", 0)
    return seconds / asked if asked else float("nan")


def listed(root: Path) -> list[str]:
    from tinyarms import files, scan
    from tinyarms.files import Namer

    settings = scan.load(root, scan.ScanOptions())
    namer = Namer(root, root)
    return [namer.rel(p) for p in files.list_paths([str(root)], settings.ruleset, namer).paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder:0.5b")
    parser.add_argument("--compare", default="qwen2.5-coder:1.5b", help="larger model for the ratio, or none")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--sample", type=int, default=12, help="synthetic files scanned with the model")
    parser.add_argument("--source-sample", type=int, default=6, help="tinyarms files scanned with the model")
    parser.add_argument("--ratio-questions", type=int, default=4, help="prompts read by both models for the ratio")
    parser.add_argument("--max-questions", type=int, default=1, help="per file and rule in the model scans")
    parser.add_argument("--max-pairs", type=int, default=2, help="per cross-file rule in the model scans")
    args = parser.parse_args()

    from tinyarms.models import registry

    for model in (args.model, args.compare):
        if model != "none" and registry.local_path(model) is None:
            sys.exit(f"model {model} is not fetched: run `tinyarms models fetch {model}`")
    user_models = registry.models_dir()
    work = Path(tempfile.mkdtemp(prefix="tinyarms-bench-scan-"))
    home = work / "state"
    os.environ.update({"TINYARMS_HOME": str(home), "TINYARMS_CONFIG": str(work / "none.yaml")})
    (home / "models").mkdir(parents=True)
    for item in user_models.iterdir():  # the fetched models, linked into the benchmark's own state directory
        (home / "models" / item.name).symlink_to(item)

    rss = PeakRSS()
    print(f"tinyarms deep-scan benchmark: {os.cpu_count()} CPUs, model {args.model}; the model scans ask at most "
          f"{args.max_questions} question(s) per file and rule and {args.max_pairs} cross-file pair(s) per rule")
    repo, planted = make_repo(work, args.files)
    corpora = {"tinyarms source": (ROOT, listed(ROOT)), f"synthetic {args.files} files": (repo, listed(repo))}

    # 1. every file, with an instant stand-in model: the pipeline's own cost and the question counts
    sys.path.insert(0, str(ROOT))
    from tests.models.ollama_server import FakeOllama

    print("\n1. every file, the deep skill, an instant stand-in model (the test suite's fake Ollama):")
    full_questions, bounded_questions = {}, {}
    with FakeOllama() as fake:
        os.environ.update({"OLLAMA_HOST": fake.host, "TINYARMS_MODELS__BACKEND": "ollama"})
        for label, (root, names) in corpora.items():
            outcome, seconds, peak = timed_scan(root, [], rss)
            stats = level3(outcome)
            again, again_seconds, _ = timed_scan(root, [], rss)
            bounded, _, _ = timed_scan(root, [], rss, max_questions=args.max_questions)
            full_questions[label] = stats.get("questions", 0)
            bounded_questions[label] = level3(bounded).get("questions", 0)
            print(f"   {label:22} {len(names):4} files in {seconds:5.1f} s = "
                  f"{len(names) / seconds * 60:6.0f} files/min, "
                  f"peak RSS {peak:4.0f} MiB; {stats.get('questions', 0)} questions (cross-file pairs: "
                  f"{(stats.get('cross_file') or {}).get('pairs', 0)}), {bounded_questions[label]} at --max-questions "
                  f"{args.max_questions}")
            print(f"   {'':22} rescan unchanged: {again_seconds:.1f} s = "
                  f"{len(names) / again_seconds * 60:.0f} files/min, "
                  f"cache hit {level3(again).get('cached', 0)}/{level3(again).get('questions', 0)}")
        os.environ.pop("OLLAMA_HOST")
    found = _planted_found(repo, corpora[f"synthetic {args.files} files"][1], planted)
    print(f"   planted duplicate pairs among the semantic-duplication candidates: {found}/{len(planted)}")

    # 2. the model on a sample, then the rescan
    os.environ["TINYARMS_MODELS__BACKEND"] = "embedded"
    os.environ["TINYARMS_MODELS__DEEP__EMBEDDED"] = args.model
    for rule in ("SEMANTIC_DUPLICATION", "CROSS_FILE_PATTERNS"):
        os.environ[f"TINYARMS_RULES__{rule}__PARAMS__MAX_PAIRS"] = str(args.max_pairs)
    print(f"\n2. with the embedded model {args.model} on a sample (planted pairs included)")
    rates = {}
    for label, (root, names), size, plants in (
        ("tinyarms source", corpora["tinyarms source"], args.source_sample, []),
        (f"synthetic {args.files} files", corpora[f"synthetic {args.files} files"], args.sample, planted),
    ):
        sample = _sample(names, plants, size)
        paths = [str(root / n) for n in sample]
        outcome, seconds, peak = timed_scan(root, paths, rss, max_questions=args.max_questions)
        stats = level3(outcome)
        rates[label] = per_question(outcome, seconds)
        again, again_seconds, _ = timed_scan(root, paths, rss, max_questions=args.max_questions)
        hit = level3(again)
        print(f"   {label:22} {len(sample):3} files in {seconds:6.1f} s = {len(sample) / seconds * 60:6.1f} files/min; "
              f"{stats.get('questions', 0)} questions, {stats.get('asked', 0)} asked, "
              f"{seconds / max(1, stats.get('asked', 0)):.1f} s per question; peak RSS {peak:.0f} MiB")
        cross = stats.get("cross_file") or {}
        print(f"   {'':22} cross-file pairs: {cross.get('pairs', 0)} ({cross.get('finder')}); findings: "
              f"{len(outcome.result.findings)}")
        print(f"   {'':22} rescan unchanged: {again_seconds:.1f} s = {len(sample) / again_seconds * 60:.0f} files/min, "
              f"cache hit {hit.get('cached', 0)}/{hit.get('questions', 0)} model answers, {hit.get('asked', 0)} asked")
    os.environ.pop("TINYARMS_MODELS__DEEP__EMBEDDED")

    # 3. the ratio to a larger model, and the projection
    synthetic = corpora[f"synthetic {args.files} files"]
    label = f"synthetic {args.files} files"
    rates_by: dict[str, tuple[float, float]] = {}
    shape = None
    if args.compare != "none":
        print(f"\n3. {args.model} against {args.compare}: the same {args.ratio_questions} deep-scan prompts through "
              "llama.cpp directly, prompt cache reset before each")
        questions = _questions(synthetic[0], _sample(synthetic[1], planted, args.sample), args.ratio_questions)
        from tinyarms.models import llamacpp

        llamacpp.unload_all()  # step 2's model: each model is measured alone in memory
        prompt_tokens: list[int] = []
        answers: list[int] = []
        for model in (args.model, args.compare):
            rss.reset()
            prompt_rate, gen_rate, prompt_tokens, answer_tokens = _rates(model, questions)
            rates_by[model] = (prompt_rate, gen_rate)
            answers += answer_tokens
            print(f"   {model:22} prompt {prompt_rate:5.0f} tokens/s, generation {gen_rate:5.1f} tokens/s; prompts "
                  f"{statistics.mean(prompt_tokens):.0f} tokens, answers {statistics.mean(answer_tokens):.0f} tokens "
                  f"on average; peak RSS {rss.mib():.0f} MiB")
        shape = (statistics.mean(prompt_tokens), statistics.mean(answers))
    _projection(args, full_questions[label], bounded_questions[label], rates_by, shape, rates[label])
    shutil.rmtree(work, ignore_errors=True)


def _questions(root: Path, names: list[str], count: int) -> list[tuple[str, str, dict]]:
    """(system, prompt, schema) of real deep-scan questions: per-file ones and cross-file pairs."""
    from tinyarms import scan
    from tinyarms.candidates import cross_file
    from tinyarms.levels import questions as questions_level
    from tinyarms.models import answer, prompts
    from tinyarms.source import Source, language_of, make_source

    settings = scan.load(root, scan.ScanOptions())
    sources = [s for n in names if isinstance(s := make_source(n, n, (root / n).read_bytes()), Source)]
    out = []
    for rule in settings.ruleset.rules:
        if questions_level.finder_of(rule) == "cross-file":
            found = cross_file.find(sources, rule.id, rule.params, max(1, count // 4))
        else:
            found = [(src, c) for src in sources if rule in settings.ruleset.rules_for(src.rel, language_of(src.rel))
                     for c in questions_level.candidates(src, rule, 1, str(root))][: max(1, count // 4)]
        for src, candidate in found:
            prompt = prompts.user_prompt(rule.id, rule.description, list(rule.examples), src.path, src.lines, candidate)
            out.append((prompts.SYSTEM, prompt, answer.schema([rule.id])))
    return out[:count]


def _rates(model: str, questions: list[tuple[str, str, dict]]) -> tuple[float, float, list[int], list[int]]:
    """(prompt tokens/s, generated tokens/s, prompt tokens, answer tokens) of ``model`` on ``questions``,
    schema-constrained as the scan asks them."""
    import llama_cpp

    from tinyarms.models import registry

    threads = os.cpu_count() or 1
    llm = llama_cpp.Llama(model_path=str(registry.local_path(model)), n_ctx=4096, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    prompt_seconds = gen_seconds = 0.0
    prompt_tokens: list[int] = []
    answer_tokens: list[int] = []
    for system, prompt, schema in questions:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        llm.reset()  # no prompt cache: every prompt is read in full, as a new question's is
        started = time.perf_counter()
        first = None
        count = 0
        for chunk in llm.create_chat_completion(messages=messages, temperature=0, max_tokens=256, stream=True,
                                                response_format={"type": "json_object", "schema": schema}):
            if chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter() - started
                count += 1
        total = time.perf_counter() - started
        prompt_tokens.append(len(llm.tokenize((system + "\n" + prompt).encode())) + 10)  # + the chat template's
        prompt_seconds += first or total
        gen_seconds += total - (first or total)
        answer_tokens.append(count)
    del llm
    generated = max(1, sum(answer_tokens) - len(questions))  # the first token of each came with the prompt
    return sum(prompt_tokens) / prompt_seconds, generated / max(1e-9, gen_seconds), prompt_tokens, answer_tokens


def _sample(names: list[str], planted: list[tuple[str, str]], size: int) -> list[str]:
    chosen = [name for pair in planted[: max(1, size // 8)] for name in pair][:size]
    rng = random.Random(3)
    rest = [n for n in names if n not in chosen]
    return sorted(chosen + rng.sample(rest, max(0, min(len(rest), size - len(chosen)))))


def _planted_found(root: Path, names: list[str], planted: list[tuple[str, str]]) -> int:
    from tinyarms import scan
    from tinyarms.candidates import cross_file
    from tinyarms.source import Source, make_source

    settings = scan.load(root, scan.ScanOptions())
    rule = next(r for r in settings.ruleset.rules if r.id == "semantic-duplication")
    sources = [s for n in names if isinstance(s := make_source(n, n, (root / n).read_bytes()), Source)]
    pairs = {frozenset((own.rel, c.other.path)) for own, c in cross_file.find(
        sources, rule.id, rule.params, int(rule.params.get("max_pairs", 50)))}
    return sum(frozenset(p) in pairs for p in planted)


def _projection(args: argparse.Namespace, full: int, bounded: int, rates_by: dict[str, tuple[float, float]],
                shape: tuple[float, float] | None, measured: float) -> None:
    """Seconds per question with a 7B model: a typical question's prompt and answer lengths over
    per-token rates extrapolated from the two measured models by model size (rate ~ size^-k)."""
    print(f"\nProjection (not a measurement) for a {args.files}-file weekly deep scan on this machine:")
    scans = (("full scan, every function", full), (f"bounded, --max-questions {args.max_questions}", bounded))
    for label, count in scans:
        print(f"   {args.model:20} {label:30} ~{count:5} questions x {measured:4.1f} s = "
              f"~{count * measured / 3600:.1f} h "
              "(s/question as measured in step 2)")
    if shape is None:
        print("   (run with --compare qwen2.5-coder:1.5b to project to 7B)")
        return
    small, big = args.model, args.compare
    grow = SIZE_MIB["qwen2.5-coder:7b"] / SIZE_MIB[big]
    per_size = math.log(SIZE_MIB[big] / SIZE_MIB[small])
    projected = []
    for which in (0, 1):  # reading the prompt, generating the answer
        k = math.log(rates_by[small][which] / rates_by[big][which]) / per_size
        projected.append((rates_by[big][which] / grow ** k, k))
    (prompt7, kp), (gen7, kg) = projected
    prompt_tokens, answer_tokens = shape
    per_question = {m: prompt_tokens / r[0] + answer_tokens / r[1] for m, r in rates_by.items()}
    per7 = prompt_tokens / prompt7 + answer_tokens / gen7
    # Small models leave a CPU's memory bandwidth idle, so their rates fall slower than size grows; a
    # 7B model is closer to bandwidth-bound, where rates fall in proportion to size: the upper end.
    linear7 = (prompt_tokens / (rates_by[big][0] / grow)) + answer_tokens / (rates_by[big][1] / grow)
    print(f"   a typical question: {prompt_tokens:.0f} prompt tokens, {answer_tokens:.0f} answer tokens: "
          + ", ".join(f"{m} {t:.1f} s" for m, t in per_question.items()))
    print(f"   measured {small} -> {big}: token rates fall as size^-{kp:.2f} (prompt) and size^-{kg:.2f} (generation)")
    print(f"   qwen2.5-coder:7b (Q4_K_M, {SIZE_MIB['qwen2.5-coder:7b']} MiB), "
          f"projected: prompt ~{prompt7:.0f} tokens/s, "
          f"generation ~{gen7:.1f} tokens/s, ~{per7:.0f} s per question; ~{linear7:.0f} s if rates fall in "
          "proportion to size (memory-bound)")
    for label, count in scans:
        print(f"   {'qwen2.5-coder:7b':20} {label:30} ~{count:5} questions x {per7:.0f}-{linear7:.0f} s = "
              f"~{count * per7 / 3600:.1f}-{count * linear7 / 3600:.1f} h of model time (projected)")
    print("   A rescan of an unchanged repository asks no question; a week's changes ask only about changed files.")


if __name__ == "__main__":
    main()
