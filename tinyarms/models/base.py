"""The one interface every model backend implements, and how a backend says it cannot answer.

Backends are asked one narrow question at a time: a system prompt, a user prompt and a JSON
schema the answer must follow. They return the raw answer text; validating it is the caller's
job (``tinyarms.models.answer``), because model output is untrusted whatever the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# Why a model check could not run: the codes that land in ``skipped[].reason``.
SERVER_DOWN = "model-server-down"
MODEL_MISSING = "model-missing"
TIMEOUT = "model-timeout"
BAD_ANSWER = "model-bad-answer"
NO_MEMORY = "model-no-memory"
NOT_INSTALLED = "model-not-installed"
NO_BACKEND = "model-unavailable"
CRASHED = "model-crashed"  # the model's worker process died (a signal, an exit) or stopped speaking its wire
BUDGET = "budget"
# The reasons ``on_model_unavailable: fail`` fails on: the model could not give an answer. A
# question the budget cut (``budget``) is answered in the background, so it never fails a run.
UNAVAILABLE = frozenset({SERVER_DOWN, MODEL_MISSING, TIMEOUT, BAD_ANSWER, NO_MEMORY, NOT_INSTALLED, NO_BACKEND,
                         CRASHED})


MAX_ANSWER_BYTES = 1 << 20  # a model answer over this is refused, and not read past it
CONNECT_TIMEOUT = 5.0  # seconds to reach a model server; the request's own timeout is longer


class NoLogprobs(Exception):
    """The server answered without log probabilities (an older Ollama): ask for the word instead."""


class AnswerTooLarge(Exception):
    """The server sent more than ``MAX_ANSWER_BYTES``; the rest was not read."""


class ModelUnavailable(Exception):
    """A model check cannot run; ``reason`` is a code above, ``hint`` a fix the user can run."""

    def __init__(self, reason: str, message: str, hint: str | None = None):
        self.reason = reason
        self.message = message
        self.hint = hint
        super().__init__(message)


def timed_out(model: str, doing: str) -> ModelUnavailable:
    """The embedded model did not answer by the question's deadline (``doing``: what it was at)."""
    return ModelUnavailable(
        TIMEOUT, f"{model} did not answer in time while {doing}",
        "raise the budget (--budget), or use a smaller model; unfinished files are linted in the background",
    )


@dataclass(slots=True)
class Completion:
    text: str
    model: str
    seconds: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # What the backend itself measured, where it measures it (None: not exposed, never guessed):
    # time to the first answer token, and the prompt-reading and generating parts with their
    # token counts (the prompt count is what was evaluated: a prefix reused from the last
    # question is not read again).
    first_token_seconds: float | None = None
    prompt_eval_tokens: int | None = None
    prompt_eval_seconds: float | None = None
    eval_tokens: int | None = None
    eval_seconds: float | None = None
    load_seconds: float | None = None


@dataclass(slots=True)
class Scored:
    """A backend's log probabilities for the first token of each choice (``score``)."""

    logprobs: dict[str, float]
    model: str
    seconds: float
    prompt_eval_tokens: int | None = None

    def probability(self, choice: str) -> float:
        """P(choice), normalised over the choices alone (the rest of the vocabulary left out)."""
        import math

        top = max(self.logprobs.values())
        weights = {c: math.exp(lp - top) for c, lp in self.logprobs.items()}
        return weights[choice] / sum(weights.values())


TOP_LOGPROBS = 10  # alternatives asked for per generated token, where a server scores by generating


def choice_logprobs(entries: list[tuple[str, float, list[tuple[str, float]]]],
                    choices: list[str]) -> dict[str, float] | None:
    """From a server's per-token log probabilities, (token, logprob, alternatives): at the first
    token that is one of ``choices`` (or its start, `"yes`), each choice's log probability among
    the alternatives there. A choice not among them gets the least one listed, an upper bound.
    None when no generated token is a choice."""
    for token, logprob, alternatives in entries:
        if _choice_of(token, choices) is None:
            continue
        listed = [*alternatives, (token, logprob)]
        out: dict[str, float] = {}
        for text, value in listed:
            choice = _choice_of(text, choices)
            if choice is not None:
                out[choice] = max(out.get(choice, value), value)
        floor = min(value for _, value in listed)
        return {choice: out.get(choice, floor) for choice in choices}
    return None


def _choice_of(token: str, choices: list[str]) -> str | None:
    text = token.strip().strip('"').lower()
    if not text:
        return None
    return next((c for c in choices if text == c or (len(text) >= 2 and c.startswith(text))), None)


@dataclass(slots=True)
class ModelInfo:
    """What ``status`` shows about a backend."""

    backend: str
    reachable: bool
    detail: str
    present: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)


class Backend(Protocol):
    name: str

    async def complete(
        self, model: str, system: str, prompt: str, schema: dict[str, Any], *, timeout: float, max_tokens: int,
    ) -> Completion:
        """The model's answer text; raises ``ModelUnavailable`` when it cannot give one."""
        ...

    async def digest(self, model: str) -> str:
        """A stable identity of the model's weights (cache keys include it)."""
        ...

    async def info(self) -> ModelInfo: ...

    async def close(self) -> None: ...
