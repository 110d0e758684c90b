"""Which fast and deep model suit this machine: a pure function of its RAM, its cores and what
``tinyarms bench`` measured here, so the advice can be tested tier by tier.

The rules, in the spirit of per-hardware-tier advice from small-model benchmarks:

- **Memory.** The OS and the user's own programs keep ``max(2 GiB, 25 % of RAM)``. The fast
  model stays loaded while the user works, so it may take at most half of what is left; the
  deep model must fit *next to* the fast one (the daemon can hold both), so a 7B deep model
  (~6.3 GiB) is refused on an 8 GiB machine.
- **Time.** A fast-model question must take at most ``FAST_QUESTION_S`` (half the default 5 s
  commit budget: a typical commit asks one or two). A deep question may take up to
  ``DEEP_QUESTION_S``: the weekly scan asks hundreds.
- **Figures.** A model's memory and seconds per question are what ``tinyarms bench`` measured
  when there is a figure; otherwise an estimate: memory by the rule the embedded backend loads
  by (``llamacpp.memory_needed``), seconds from this project's measurements of the 0.5B and 1.5B
  models on 2 cores, scaled by parameters and by cores (up to 8, where memory bandwidth
  stops the gains) — and, when any model was measured here, by how far this machine's measured
  figures differ from the estimates (a busy machine is slower than its core count says).
- The largest model that passes wins; when none passes the time rule, the smallest that fits
  memory is advised with a warning (its questions will often finish in the background).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from tinyarms.units import GIB, MIB

FAST_QUESTION_S = 2.5
DEEP_QUESTION_S = 30.0
RESERVE_MIN = 2 * GIB
RESERVE_SHARE = 0.25
MAX_SCALING_CORES = 8
BASE_CORES = 2
N_CTX = 4096


@dataclass(frozen=True, slots=True)
class Known:
    """A model tinyarms can advise: Qwen2.5-Coder Instruct, Q4_K_M."""

    name: str
    params_b: float
    file_bytes: int
    question_s: float  # seconds per question on BASE_CORES cores
    embedded: bool  # provisioned by `tinyarms models fetch` (else Ollama only)
    memory_bytes: int | None = None  # measured resident size; else the embedded backend's load rule

    @property
    def memory(self) -> int:
        from tinyarms.models.worker.client import memory_needed

        return self.memory_bytes or memory_needed(self.file_bytes, N_CTX)


# The 0.5B and 1.5B figures were measured here (docs/evaluation.md, benchmarks/model.py, 2 cores: 1.51 s and
# 3.40 s per question, peak RSS 737 and 1995 MiB with n_ctx 4096). Larger models are estimated
# from the 1.5B in proportion to parameters: prompt reading, most of a question's time, is
# compute-bound. File sizes are the Q4_K_M GGUF files'. The catalogue's figures are named by Known's
# fields; every other number in this module has a name.
# tinyarms: ignore-file[magic-numbers]
_PER_PARAM = 3.40 / 1.5
CATALOGUE: tuple[Known, ...] = (
    Known("qwen2.5-coder:0.5b", 0.5, 491_400_064, 1.51, True, 737 * MIB),
    Known("qwen2.5-coder:1.5b", 1.5, 1_117_320_768, 3.40, True, 1995 * MIB),
    Known("qwen2.5-coder:3b", 3.1, 1_929_912_432, round(_PER_PARAM * 3.1, 2), False),
    Known("qwen2.5-coder:7b", 7.6, 4_683_073_184, round(_PER_PARAM * 7.6, 2), False),
    Known("qwen2.5-coder:14b", 14.8, 8_988_110_976, round(_PER_PARAM * 14.8, 2), False),
)


@dataclass(frozen=True, slots=True)
class Figures:
    """What ``tinyarms bench`` measured for a model (None: not measured)."""

    question_s: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    name: str
    memory_bytes: int
    question_s: float
    measured_speed: bool
    measured_memory: bool


@dataclass(slots=True)
class Advice:
    backend: str
    ram_bytes: int
    cores: int
    reserve_bytes: int
    fast: Pick | None = None
    deep: Pick | None = None
    headroom_bytes: int = 0  # RAM left when both are loaded, beyond the reserve
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (model, level, why)
    notes: list[str] = field(default_factory=list)
    speed_factor: float = 1.0  # measured / estimated seconds on this machine


def reserve(ram_bytes: int) -> int:
    return max(RESERVE_MIN, int(ram_bytes * RESERVE_SHARE))


def estimate_s(known: Known, cores: int) -> float:
    return known.question_s * BASE_CORES / max(1, min(cores, MAX_SCALING_CORES))


def speed_factor(measured: dict[str, Figures], cores: int) -> float:
    """How much slower (>1) or faster this machine answers than the estimates say, from the models
    measured here; 1.0 when none was."""
    ratios = [m.question_s / estimate_s(k, cores) for k in CATALOGUE
              if (m := measured.get(k.name)) is not None and m.question_s]
    return statistics.median(ratios) if ratios else 1.0


def pick(known: Known, cores: int, measured: dict[str, Figures], factor: float) -> Pick:
    m = measured.get(known.name) or Figures()
    return Pick(
        known.name,
        m.memory_bytes if m.memory_bytes else known.memory,
        m.question_s if m.question_s else estimate_s(known, cores) * factor,
        m.question_s is not None, m.memory_bytes is not None,
    )


def recommend(ram_bytes: int, cores: int, measured: dict[str, Figures] | None = None,
              backend: str = "ollama") -> Advice:
    """The fast and deep model for a machine with ``ram_bytes`` of RAM and ``cores`` cores, on
    ``backend`` (``embedded`` offers only the models ``tinyarms models fetch`` provides)."""
    measured = measured or {}
    factor = speed_factor(measured, cores)
    keep = reserve(ram_bytes)
    usable = max(0, ram_bytes - keep)
    advice = Advice(backend, ram_bytes, cores, keep, speed_factor=factor)
    models = [pick(k, cores, measured, factor) for k in CATALOGUE if backend != "embedded" or k.embedded]

    fits_fast = [p for p in models if p.memory_bytes <= usable // 2]
    quick = [p for p in fits_fast if p.question_s <= FAST_QUESTION_S]
    for p in models:
        if p not in fits_fast:
            why = (f"needs ~{gib(p.memory_bytes)}, more than half of the {gib(usable)} left after the "
                   f"{gib(keep)} kept for the system")
            advice.refused.append((p.name, "fast", why))
        elif p not in quick:
            why = f"~{p.question_s:.1f} s per question, over the {FAST_QUESTION_S:g} s a commit's budget allows"
            advice.refused.append((p.name, "fast", why))
    if quick:
        advice.fast = quick[-1]
    elif fits_fast:
        advice.fast = fits_fast[0]
        advice.notes.append(
            f"no model answers within {FAST_QUESTION_S:g} s here; "
            f"{advice.fast.name} takes ~{advice.fast.question_s:.1f} s, "
            "so commits will often leave its questions to the background (raise the budget, or serve the models from a "
            "faster machine through Ollama or an OpenAI-compatible server)")
    else:
        advice.notes.append(f"not enough memory for any model ({gib(usable)} usable): Level 0 rules only")
        return advice

    fast = advice.fast
    for p in reversed(models):
        together = p.memory_bytes + (0 if p.name == fast.name else fast.memory_bytes)
        if together > usable:
            why = (f"needs ~{gib(p.memory_bytes)} next to the fast model's {gib(fast.memory_bytes)}; "
                   f"only {gib(usable)} can be used")
            advice.refused.append((p.name, "deep", why))
        elif p.question_s > DEEP_QUESTION_S:
            advice.refused.append((p.name, "deep", f"~{p.question_s:.0f} s per question, over {DEEP_QUESTION_S:g} s"))
        else:
            advice.deep = p
            break
    if advice.deep is None:
        advice.deep = fast
    deep = advice.deep
    if deep.name == fast.name and deep.name != models[-1].name:
        advice.notes.append("the deep level uses the fast model: no larger one fits this machine")
    used = fast.memory_bytes + (0 if deep.name == fast.name else deep.memory_bytes)
    advice.headroom_bytes = usable - used
    advice.refused = [r for r in advice.refused if not _larger_than_chosen(r, advice)]
    return advice


def _larger_than_chosen(refusal: tuple[str, str, str], advice: Advice) -> bool:
    """Keep only refusals of models larger than the one chosen for that level: the rest are not news."""
    chosen = advice.fast if refusal[1] == "fast" else advice.deep
    order = [k.name for k in CATALOGUE]
    return chosen is not None and order.index(refusal[0]) <= order.index(chosen.name)


def figures_from_bench(latest: dict[str, dict[str, Any]]) -> dict[str, Figures]:
    """``Figures`` from ``bench.latest_figures()``: median seconds per question, and the RSS the
    embedded model added to the process."""
    out = {}
    for name, entry in latest.items():
        question = (entry.get("question_s") or {}).get("median")
        peak, before = entry.get("peak_rss_bytes"), entry.get("rss_before_bytes")
        memory = peak - before if peak is not None and before is not None and peak > before else None
        out[name] = Figures(question, memory)
    return out


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"
