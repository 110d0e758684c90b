"""``tinyarms lsp`` with a model: a question the budget cut is answered in the daemon's background,
and the editor gets the finding without asking (the daemon pushes, the server re-lints)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.lsp.conftest import Editor
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_router_models import agreeing_model

pytestmark = pytest.mark.asyncio


@pytest.fixture
def server_env(ollama_server: FakeOllama) -> dict[str, str]:
    ollama_server.slow(1.5, agreeing_model)  # slower than the lint's budget: asked in the background
    return {"TINYARMS_MODELS__BACKEND": "ollama", "OLLAMA_HOST": ollama_server.host}


async def test_a_model_answer_arriving_later_updates_the_diagnostics_unasked(
    editor: Editor, workspace: Path, ollama_server: FakeOllama,
) -> None:
    uri = editor.open(workspace / "prices.py", TWINS)
    first = await editor.diagnostics(uri, lambda d: any(x.code == "magic-numbers" for x in d))
    assert not [d for d in first if d.code == "simple-dry"]  # not answered within the budget
    started = time.monotonic()
    found = await editor.diagnostics(uri, lambda d: [x for x in d if x.code == "simple-dry"])
    [model] = [d for d in found if d.code == "simple-dry"]
    assert model.range.start.line == 11 and "confidence" in model.message
    assert time.monotonic() - started < 30
    assert ollama_server.calls("/api/chat")
