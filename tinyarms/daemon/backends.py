"""The daemon and the model backends: the embedded fast model loaded at start-up, so the first
commit does not spend its budget on the load, and what ``status`` says about the backends.

Both read the daemon's own config (a repository's settings may choose otherwise per lint), and
neither may fail the daemon: a failed preload is the first question's to report, and a backend
that misbehaves is described in ``status``, not raised.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tinyarms.log import get_logger
from tinyarms.models.worker import client as workers
from tinyarms.skills import DEEP_LEVEL, FAST_LEVEL

PRELOAD_TIMEOUT = 300.0  # seconds for the embedded fast model to load at start-up


def preload() -> None:
    """Load the embedded fast model now (``models.preload``), so the first commit after start-up
    does not spend its budget on the load. Nothing when Ollama or no model answers."""
    from tinyarms.config import load_config
    from tinyarms.models import select

    async def load() -> str | None:
        config = load_config(None).config.models
        if not config.preload:
            return None
        choice = await select.choose(config, 2)
        if choice.name != "embedded" or choice.backend is None:
            return None
        model = select.model_for(config, "embedded", 2)
        await choice.backend.load(model, timeout=PRELOAD_TIMEOUT)  # type: ignore[attr-defined]
        return model

    log = get_logger(component="daemon")
    try:
        model = asyncio.run(load())
    except Exception as exc:  # noqa: BLE001 - a failed preload is the first question's to report
        log.warning("preload_failed", error=str(exc))
    else:
        if model:
            log.info("preloaded", model=model)


def status() -> dict[str, Any]:
    """Which backend model checks use now and why, and what it has (the daemon's own config)."""
    from tinyarms.config import load_config
    from tinyarms.models import select

    async def probe() -> dict[str, Any]:
        config = load_config(None).config.models
        choice = await select.choose(config, 2)
        out: dict[str, Any] = {"backend": choice.name, "why": choice.why, "hint": choice.hint,
                               "fast": None, "deep": None, "present": [], "loaded": []}
        if choice.backend is not None:
            try:
                info = await choice.backend.info()
                out.update(reachable=info.reachable, detail=info.detail, present=info.present, loaded=info.loaded)
            finally:
                await choice.backend.close()
            out["fast"] = select.model_for(config, choice.name or "", FAST_LEVEL)
            out["deep"] = select.model_for(config, choice.name or "", DEEP_LEVEL)
        return out

    try:
        out = asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - status must answer even when a backend misbehaves
        out = {"backend": None, "why": f"could not check the model backends: {exc}"}
    out["embedded_workers"] = workers.pool.status()
    return out
