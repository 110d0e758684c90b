"""Level 1: embeddings that propose cross-file pairs, when the backend can give them.

One vector per function (``candidates.cross_file.Index``), from Ollama's ``/api/embed`` with
``models.embed_model`` (``nomic-embed-text`` by default). Vectors are cached like answers (key:
the model, its digest and the function's text), so a rescan embeds only changed functions.
Whenever the vectors cannot be had — another backend, the model not pulled, numpy missing, a
server error — the caller falls back to token shingles, and ``why`` says so in the stats: the
pairs are still found, only by the cheaper measure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from typing import Any

from tinyarms.candidates.cross_file import MAX_EMBED_CHARS, Index
from tinyarms.config import ModelsConfig
from tinyarms.models.base import Backend, ModelUnavailable
from tinyarms.stores.cache import Cache

BATCH = 32
TIMEOUT = 120.0
MIN_BATCH_SECONDS = 0.3  # with less time left a batch is not started


async def vectors(index: Index, backend: Backend, config: ModelsConfig, store: Cache | None,
                  deadline: float | None) -> tuple[dict[int, list[float]] | None, dict[str, Any]]:
    """(function index -> vector, or None: use shingles; stats for the result)."""
    model = config.embed_model
    embed = getattr(backend, "embed", None)
    if not model:
        return None, {"used": False, "backend": None,
                      "why": "models.embed_model is null: token shingles find the pairs"}
    if embed is None:
        return None, {"used": False, "backend": None,
                      "why": f"the {backend.name} backend gives no embeddings: token shingles "
                      "find the pairs", "hint": f"with Ollama: `ollama pull {model}`"}
    if importlib.util.find_spec("numpy") is None:
        return None, {"used": False, "backend": None, "why": "numpy is not installed: token shingles find the pairs",
                      "hint": "pip install numpy"}
    started = time.monotonic()
    stats: dict[str, Any] = {"used": False, "backend": backend.name, "model": model, "functions": len(index.functions)}
    try:
        digest = await backend.digest(model)
    except ModelUnavailable as exc:
        return None, {**stats, "why": f"{exc.message}: token shingles find the pairs", "hint": exc.hint}
    texts = [fn.text()[:MAX_EMBED_CHARS] for fn in index.functions]
    keys = ["embed:" + hashlib.sha256(json.dumps([model, digest, text]).encode()).hexdigest() for text in texts]
    cached = store.get_many(keys) if store is not None else {}
    found = {i: cached[k]["vector"] for i, k in enumerate(keys) if k in cached}
    todo = [i for i in range(len(texts)) if i not in found]
    for first in range(0, len(todo), BATCH):
        batch = todo[first : first + BATCH]
        remaining = TIMEOUT if deadline is None else deadline - time.monotonic()
        if remaining <= MIN_BATCH_SECONDS:
            return None, {**stats, "why": "the time budget ran out while embedding: token shingles find the pairs"}
        try:
            got = await embed(model, [texts[i] for i in batch], timeout=min(TIMEOUT, remaining))
        except ModelUnavailable as exc:
            return None, {**stats, "why": f"{exc.message}: token shingles find the pairs", "hint": exc.hint}
        rows = []
        # not strict: a backend's short answer embeds what it answered, as it always has
        for i, vector in zip(batch, got, strict=False):
            found[i] = [round(float(x), ndigits=5) for x in vector]
            rows.append((keys[i], {"vector": found[i], "model": model}))
        if store is not None:
            store.put_many(rows)
    return found, {**stats, "used": True, "why": f"Ollama embeddings with {model}", "embedded": len(todo),
                   "cached": len(texts) - len(todo), "seconds": round(time.monotonic() - started, ndigits=3)}
