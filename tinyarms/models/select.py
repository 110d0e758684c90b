"""Which backend answers model questions, and why: ``models.backend`` (default ``auto``).

auto: Ollama when its server answers at the configured host (a quick probe, remembered for a
few seconds), else the embedded llama.cpp backend when it is installed and the level's model is
provisioned, else no backend — and then every model check is ``skipped`` with a hint for each
way to get a model.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass

from tinyarms.config import ModelsConfig
from tinyarms.models.base import Backend
from tinyarms.skills import FAST_LEVEL

HOOK_NO_MODELS = "TINYARMS_HOOK_NO_MODELS"  # set by the git hook's fallback: why no model is asked
PROBE_TTL = 5.0
PROBE_TIMEOUT = 1.5  # seconds for Ollama's answer once something listens on its port
OLLAMA_PORT = 11434  # Ollama's own default, for a host given without a port
_probes: dict[str, tuple[float, bool | None]] = {}


@dataclass(slots=True)
class Choice:
    backend: Backend | None
    name: str | None  # ollama | embedded | openai
    why: str  # a sentence for `status` and for skipped entries
    hint: str | None = None


def model_for(config: ModelsConfig, backend: str, level: int) -> str:
    fast = level == FAST_LEVEL
    models = config.fast if fast else config.deep
    name: str = getattr(models, backend) or getattr(ModelsConfig().fast if fast else ModelsConfig().deep, backend)
    return name


async def ollama_answers(config: ModelsConfig) -> bool | None:
    """True: Ollama answers at the host; False: nothing listens there, or not Ollama; None:
    something listens but gave no answer within ``PROBE_TIMEOUT`` (see ``OllamaBackend.probe``)."""
    host = config.ollama.host
    seen = _probes.get(host)
    if seen is not None and time.monotonic() - seen[0] < PROBE_TTL:
        return seen[1]
    up: bool | None = _port_open(host)
    if up:  # something listens: ask it whether it is Ollama
        from tinyarms.models.ollama import OllamaBackend

        backend = OllamaBackend(config.ollama)
        try:
            up = await backend.probe(PROBE_TIMEOUT)
        finally:
            await backend.close()
    _probes[host] = (time.monotonic(), up)
    return up


def _port_open(host: str, timeout: float = 0.3) -> bool:
    """A plain TCP connect: when nothing listens (the usual case without Ollama) this answers in
    microseconds, and the Ollama client (a third of a second to import) is never loaded."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(host if "://" in host else f"http://{host}")
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or OLLAMA_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def embedded_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


async def choose(config: ModelsConfig, level: int) -> Choice:
    wanted = config.backend
    held_back = os.environ.get(HOOK_NO_MODELS)
    if held_back:  # the hook's in-process fallback: Level 0 only, and it says why, not "turned off"
        return Choice(None, None, held_back,
                      "the model checks run again once the daemon answers: `tinyarms daemon status`")
    if wanted == "none":
        return Choice(None, None, "model checks are turned off (models.backend: none)")
    if wanted == "openai":
        if not config.openai.base_url:
            return Choice(None, None, "models.backend is openai but models.openai.base_url is not set",
                          "set models.openai.base_url, e.g. http://localhost:8000/v1")
        from tinyarms.models.openai import OpenAIBackend

        return Choice(OpenAIBackend(config.openai), "openai", f"OpenAI-compatible server at {config.openai.base_url}")
    if wanted in ("auto", "ollama"):
        answers = await ollama_answers(config)
        # A listener on Ollama's port that is slow to answer is a busy Ollama (a loaded machine,
        # a model loading), not a missing one: switching to another backend would answer with
        # another model, or skip every check as if none were installed. Its questions are asked
        # within the deadline like any other, and a timeout is reported as one.
        if answers is not False:
            from tinyarms.models.ollama import OllamaBackend

            why = (f"Ollama answers at {config.ollama.host}" if answers else
                   f"Ollama at {config.ollama.host} accepts connections but did not answer within "
                   f"{PROBE_TIMEOUT:g} s (busy?); asking it anyway")
            return Choice(OllamaBackend(config.ollama), "ollama", why)
        if wanted == "ollama":
            return Choice(None, None, f"Ollama does not answer at {config.ollama.host}",
                          "start Ollama: `ollama serve`")
    # auto without Ollama, or embedded
    if not embedded_installed():
        return Choice(
            None, None,
            f"no model backend: Ollama does not answer at {config.ollama.host} "
            "and the embedded backend is not installed",
            f"start Ollama (`ollama serve`, then `ollama pull {model_for(config, 'ollama', level)}`), "
            f"or `pip install 'tinyarms[embedded]'` and `tinyarms models fetch {model_for(config, 'embedded', level)}`",
        )
    from tinyarms.models import registry

    model = model_for(config, "embedded", level)
    if registry.local_path(model) is None:
        return Choice(
            None, None, ("" if wanted == "embedded" else f"Ollama does not answer at {config.ollama.host} and ")
            + f"the embedded backend is installed but model {model} is not fetched",
            f"`tinyarms models fetch {model}` (or start Ollama and `ollama pull {model_for(config, 'ollama', level)}`)",
        )
    from tinyarms.models.llamacpp import EmbeddedBackend
    from tinyarms.models.worker.client import pool

    broken = pool.broken()
    if broken is not None:  # its workers kept dying: every model check says so, with the fix
        down = "" if wanted == "embedded" else f"Ollama does not answer at {config.ollama.host} and "
        return Choice(None, None, down + broken.message, broken.hint)
    return Choice(EmbeddedBackend(config.embedded, config.keep_alive), "embedded", f"embedded llama.cpp with {model}")

