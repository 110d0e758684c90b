"""``tinyarms bench``: how fast, how big and how reliable each model is on this machine.

The workload is fixed and real: three files of 50, 100 and 300 lines (prefixes of
``benchdata/shop.py.txt``, shipped with the package), the fast skill's ``simple-dry`` candidate
finder over each, and for every candidate the exact prompt, system prompt, answer schema and
token limit the router sends (``levels.model``). Every model answers the same questions, which
is what makes ``--compare`` meaningful.

Each figure comes from where it is really measured, or is None ("n/a"), never estimated:

- load: llama.cpp's load in this process (embedded, unloaded first); for Ollama, the model is
  unloaded (``keep_alive: 0``) and the load request timed by the client (Ollama's load answer
  carries no timings); OpenAI-compatible servers cannot be told to load: n/a.
- first token: the first streamed piece of content (Ollama, streamed for the bench), llama.cpp's
  first sampled token (embedded); OpenAI-compatible servers answer whole: n/a.
- prompt-eval and generation tokens/s: Ollama's ``prompt_eval_*``/``eval_*`` fields, llama.cpp's
  perf counters (tokens it evaluated: a prefix kept from the previous question is not re-read,
  as in the daemon). Summed over a run, then median and spread over runs.
- peak RSS: this process and its model workers (the embedded model lives in a worker process
  of its own), sampled while the model loads and answers; for a server backend the model lives
  in a process that is not ours: n/a.
- worker round trip (embedded): each question's wall time here minus the time the worker
  measured for it: what running llama.cpp in another process costs per question.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Self

from tinyarms.models import answer, prompts
from tinyarms.models.base import Backend, ModelUnavailable

SIZES = (50, 100, 300)
RULE = "simple-dry"
SOURCE_PATH = "shop/orders.py"
FORMAT_VERSION = 1
# Reasons that end a model's bench at once: nothing later can succeed either.
_FATAL = frozenset({"model-server-down", "model-missing", "model-not-installed", "model-no-memory"})


@dataclass(frozen=True, slots=True)
class Question:
    size: int  # lines of the file it comes from
    prompt: str
    schema: dict[str, Any]
    shown: frozenset[int]
    max_tokens: int
    yes_no: str = ""  # the same candidate as a yes/no claim (what the embedded backend asks by default)


@dataclass(slots=True)
class Answer:
    size: int
    seconds: float
    first_token: float | None = None
    prompt_eval_tokens: int | None = None
    prompt_eval_seconds: float | None = None
    eval_tokens: int | None = None
    eval_seconds: float | None = None
    json_valid: bool = False
    schema_valid: bool = False
    lines: list[int] | None = None  # the lines it flagged (after validation); None: no usable answer
    error: str | None = None
    wire_seconds: float | None = None  # wall time here minus the worker's own (embedded)


@dataclass(slots=True)
class Run:
    load_seconds: float | None
    file_seconds: dict[int, float] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    # the yes/no claims, answered by a generated word and by P(yes) (backends that score)
    generated_yes_no: list[float] = field(default_factory=list)
    scored_yes_no: list[float] = field(default_factory=list)


def source(lines: int) -> str:
    """The first ``lines`` lines of the shipped sample module."""
    text = resources.files("tinyarms.quality").joinpath("benchdata/shop.py.txt").read_text(encoding="utf-8")
    rows = text.splitlines()
    if lines > len(rows):
        raise ValueError(f"the bench source has {len(rows)} lines; asked for {lines}")
    return "\n".join(rows[:lines]) + "\n"


def workload(sizes: tuple[int, ...] = SIZES) -> list[Question]:
    """The router's own questions about each file: its candidate finder, prompt and schema."""
    from tinyarms.levels import model as model_level
    from tinyarms.levels import questions as questions_level
    from tinyarms.ruleset import load_settings
    from tinyarms.source import Source, make_source

    settings = load_settings(None, {"models": {"backend": "none"}})
    rule = next(r for r in settings.ruleset.rules if r.id == RULE)
    limit = settings.config.models.max_candidates
    out: list[Question] = []
    for size in sizes:
        src = make_source(SOURCE_PATH, SOURCE_PATH, source(size).encode())
        assert isinstance(src, Source), src  # the shipped source is plain UTF-8 text
        asked = [questions_level.Question(src, rule, c) for c in questions_level.candidates(src, rule, limit, None)]
        questions_level.prepare(asked, "", "", 2)
        claims = [prompts.yes_no_prompt(rule.id, rule.description, src.rel, src.lines, q.candidate, ()) for q in asked]
        out += [Question(size, q.prompt, answer.schema([rule.id]), frozenset(prompts.shown_lines(q.candidate)),
                         model_level.MAX_TOKENS, claim) for q, claim in zip(asked, claims, strict=True)]
    return out


def judge(text: str, question: Question) -> tuple[bool, bool, list[int] | None]:
    """(valid JSON, valid against the schema, the lines flagged as ``parse`` keeps them)."""
    try:
        data = json.loads(text, strict=False)
    except ValueError:
        return False, False, None
    conforms = answer.schema_error(data, question.schema) is None
    try:
        kept, _ = answer.parse(text, {RULE}, set(question.shown))
    except answer.BadAnswer:
        return True, conforms, None
    return True, conforms, sorted(v.line for v in kept)


# -- measuring ---------------------------------------------------------------------------------


class PeakRss:
    """The resident memory of this process and its children (the model workers), sampled in a
    thread: the peak of their sum while the block ran."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.before = self.now()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)

    def now(self) -> int:
        import psutil

        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a worker that just exited
                total += child.memory_info().rss
        return total

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


async def load(backend: Backend, model: str, timeout: float) -> float | None:
    """A cold load's seconds, where the backend can be made to load cold and says how long it took."""
    if backend.name == "embedded":
        _unload(backend)
        # load() is the embedded and Ollama backends' own, not the Backend protocol's
        seconds: float | None = await backend.load(model, timeout)  # type: ignore[attr-defined]
        return seconds
    if backend.name == "ollama":
        seconds = await backend.load(model, timeout, unload_first=True)  # type: ignore[attr-defined]
        return seconds
    return None


def _unload(backend: Backend) -> None:
    """Free every model this process holds (the embedded backend's are shared by the process)."""
    if backend.name == "embedded":
        from tinyarms.models import llamacpp

        llamacpp.unload_all()


async def ask(backend: Backend, model: str, question: Question, timeout: float) -> Answer:
    started = time.monotonic()
    try:
        done = await backend.complete(model, prompts.SYSTEM, question.prompt, question.schema,
                                      timeout=timeout, max_tokens=question.max_tokens)
    except ModelUnavailable as exc:
        if exc.reason in _FATAL:
            raise
        return Answer(question.size, time.monotonic() - started, error=exc.reason)
    seconds = time.monotonic() - started
    json_valid, schema_valid, lines = judge(done.text, question)
    wire = seconds - done.seconds if backend.name == "embedded" and done.load_seconds is None else None
    return Answer(question.size, seconds, done.first_token_seconds, done.prompt_eval_tokens, done.prompt_eval_seconds,
                  done.eval_tokens, done.eval_seconds, json_valid, schema_valid, lines, wire_seconds=wire)


async def measure(backend: Backend, model: str, questions: list[Question], runs: int, timeout: float) -> list[Run]:
    """``runs`` times: a cold load, then every file's questions one after the other, as the
    daemon asks them (concurrency 1, the model kept loaded between questions)."""
    out: list[Run] = []
    for _ in range(runs):
        run = Run(await load(backend, model, timeout))
        for size in sorted({q.size for q in questions}):
            started = time.monotonic()
            for question in (q for q in questions if q.size == size):
                run.answers.append(await ask(backend, model, question, timeout))
            run.file_seconds[size] = time.monotonic() - started
        if backend.name == "embedded":  # the backend that scores without generating: what it saves
            await _yes_no(backend, model, questions, timeout, run)
        out.append(run)
    return out


async def _yes_no(backend: Backend, model: str, questions: list[Question], timeout: float, run: Run) -> None:
    """Each claim as a yes/no question, in two passes: the answer generated (``models.verdict:
    answer``), then scored by P(yes) (the default where the backend can). A pass goes from
    question to question as a lint does, so each reuses only what a lint would (the shared start
    of the prompt): what scoring saves per question."""
    from tinyarms.levels.model import CONFIRM_MAX_TOKENS, YES_PREFIX

    for question in questions:
        started = time.monotonic()
        with contextlib.suppress(ModelUnavailable):
            await backend.complete(model, prompts.YES_NO_SYSTEM, question.yes_no, prompts.CONFIRM_SCHEMA,
                                   timeout=timeout, max_tokens=CONFIRM_MAX_TOKENS)
            run.generated_yes_no.append(time.monotonic() - started)
    for question in questions:
        started = time.monotonic()
        with contextlib.suppress(ModelUnavailable):
            await backend.score(model, prompts.YES_NO_SYSTEM, question.yes_no, YES_PREFIX,  # type: ignore[attr-defined]
                                ["yes", "no"], timeout=timeout)
            run.scored_yes_no.append(time.monotonic() - started)


# -- figures -----------------------------------------------------------------------------------


def stat(values: list[float]) -> dict[str, float] | None:
    """Median and spread (min, max) of what was measured; None when nothing was."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _rate(tokens: list[int | None], seconds: list[float | None]) -> float | None:
    """Tokens per second over a run's answers that report both (a reused prompt reads ~0 tokens)."""
    pairs = [(t, s) for t, s in zip(tokens, seconds, strict=True) if t is not None and s is not None]
    total_s = sum(s for _, s in pairs)
    return sum(t for t, _ in pairs) / total_s if pairs and total_s > 0 else None


def summarize(model: str, backend: str, runs: list[Run], questions: list[Question],
              rss: PeakRss | None) -> dict[str, Any]:
    answers = [a for r in runs for a in r.answers]
    prompt_rates = [x for r in runs if (x := _rate([a.prompt_eval_tokens for a in r.answers],
                                                  [a.prompt_eval_seconds for a in r.answers])) is not None]
    gen_rates = [x for r in runs if (x := _rate([a.eval_tokens for a in r.answers],
                                               [a.eval_seconds for a in r.answers])) is not None]
    errors: dict[str, int] = {}
    for a in answers:
        if a.error:
            errors[a.error] = errors.get(a.error, 0) + 1
    return {
        "model": model, "backend": backend, "runs": len(runs),
        "questions": {str(s): sum(1 for q in questions if q.size == s) for s in sorted({q.size for q in questions})},
        "load_s": stat([r.load_seconds for r in runs if r.load_seconds is not None]),
        "first_token_s": stat([a.first_token for a in answers if a.first_token is not None]),
        "prompt_tps": stat(prompt_rates),
        "gen_tps": stat(gen_rates),
        "question_s": stat([a.seconds for a in answers if a.error is None]),
        "wire_ms": stat([a.wire_seconds * 1000 for a in answers if a.wire_seconds is not None]),
        "yes_no_generated_s": stat([x for r in runs for x in r.generated_yes_no]),
        "yes_no_scored_s": stat([x for r in runs for x in r.scored_yes_no]),
        "file_s": {str(size): stat([r.file_seconds[size] for r in runs if size in r.file_seconds])
                   for size in sorted({q.size for q in questions})},
        "answers": len(answers),
        "json_valid": sum(a.json_valid for a in answers),
        "schema_valid": sum(a.schema_valid for a in answers),
        "errors": errors,
        "peak_rss_bytes": rss.peak if rss else None,
        "rss_before_bytes": rss.before if rss else None,
        # What it flagged on each question of the first run: the basis of --compare's agreement.
        "verdicts": [a.lines for a in runs[0].answers] if runs else [],
    }


def agreement(a: list[list[int] | None], b: list[list[int] | None]) -> dict[str, Any]:
    """How far two models' answers to the same questions agree: same yes/no verdict, identical
    flagged lines, and the overlap of everything flagged (|A∩B| / |A∪B|). Questions either
    model could not answer are left out and counted."""
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    flagged_a = {(i, line) for i, (x, _) in enumerate(both) for line in x}
    flagged_b = {(i, line) for i, (_, y) in enumerate(both) for line in y}
    union = flagged_a | flagged_b
    return {
        "questions": len(both), "unanswered": len(a) - len(both),
        "same_verdict": sum(bool(x) == bool(y) for x, y in both),
        "identical": sum(x == y for x, y in both),
        "flagged": [len(flagged_a), len(flagged_b)], "overlap": len(flagged_a & flagged_b),
        "overlap_share": len(flagged_a & flagged_b) / len(union) if union else None,
    }


def machine() -> dict[str, Any]:
    import psutil

    return {"ram_bytes": psutil.virtual_memory().total, "cores": psutil.cpu_count(logical=False) or os.cpu_count() or 1,
            "logical_cores": os.cpu_count() or 1, "platform": platform.platform(), "processor": platform.machine(),
            # Figures from a busy machine are slower than the machine: say how busy it was.
            "load_avg_1m": round(psutil.getloadavg()[0], 2)}


# -- the whole bench ---------------------------------------------------------------------------


async def bench(backend: Backend, models: list[str], runs: int, *, sizes: tuple[int, ...] = SIZES,
                timeout: float = 120.0) -> dict[str, Any]:
    """Every model over the same questions; a model that cannot run gets an ``error`` entry."""
    at, before = datetime.now(UTC).isoformat(timespec="seconds"), machine()  # the load before we add ours
    questions = workload(sizes)
    results: list[dict[str, Any]] = []
    for model in models:
        _unload(backend)  # the memory figure starts from a process that holds no model
        rss = PeakRss() if backend.name == "embedded" else None
        try:
            with rss or contextlib.nullcontext():
                measured = await measure(backend, model, questions, runs, timeout)
        except ModelUnavailable as exc:
            results.append({"model": model, "backend": backend.name, "error": exc.message, "hint": exc.hint,
                            "reason": exc.reason})
            continue
        finally:
            _unload(backend)
        results.append(summarize(model, backend.name, measured, questions, rss))
    doc: dict[str, Any] = {
        "version": FORMAT_VERSION, "at": at, "machine": before,
        "backend": backend.name,
        "threads": backend.threads if backend.name == "embedded" else None,  # type: ignore[attr-defined]
        "runs": runs, "sizes": list(sizes), "models": results, "compare": None,
    }
    ok = [r for r in results if "error" not in r]
    if len(models) == 2 and len(ok) == 2:
        doc["compare"] = {"models": models, **agreement(ok[0]["verdicts"], ok[1]["verdicts"])}
    return doc


# -- kept results ------------------------------------------------------------------------------


def results_dir() -> Path:
    from tinyarms.paths import state_dir

    return state_dir() / "bench"


def save(doc: dict[str, Any], folder: Path | None = None) -> Path:
    """Write the results as ``<state>/bench/<time>.json`` and ``last.json`` (atomically)."""
    folder = folder or results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = doc["at"].replace(":", "").replace("+0000", "Z")
    path = folder / f"{stamp}.json"
    text = json.dumps(doc, indent=2) + "\n"
    for target in (path, folder / "last.json"):
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return path


def history(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every kept result, oldest first; unreadable files are skipped (they are only figures)."""
    folder = folder or results_dir()
    docs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name == "last.json":
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("version") == FORMAT_VERSION:
            docs.append(doc)
    return sorted(docs, key=lambda d: str(d.get("at")))


def last(folder: Path | None = None) -> dict[str, Any] | None:
    path = (folder or results_dir()) / "last.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("version") == FORMAT_VERSION else None


def latest_figures(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The newest successful figures of each model, whatever run measured it."""
    out: dict[str, dict[str, Any]] = {}
    for doc in history(folder):
        for entry in doc.get("models", []):
            if "error" not in entry:
                out[entry["model"]] = {**entry, "at": doc["at"], "machine": doc.get("machine")}
    return out
