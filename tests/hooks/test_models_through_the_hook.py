"""Model levels through the real hook and daemon, with Ollama's API served by the test server."""

from __future__ import annotations

from pathlib import Path

from tests.candidates.test_simple_dry import TWINS
from tests.hooks.test_pre_commit import (  # noqa: F401
    MARGIN,
    commit,
    home_fixture,
    hooked_fixture,
    plain_git_fixture,
    status,
    wait_for,
    write,
)
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_router_models import agreeing_model
from tests.timing import scaled

BUDGET = 2.0


def test_a_hung_model_server_never_holds_a_commit_past_the_budget(hooked: Path, ollama_server: FakeOllama) -> None:
    ollama_server.hang()
    budget, margin = scaled(BUDGET, MARGIN)
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_BUDGET": str(budget)}
    write(hooked, "prices.py", TWINS)
    result = commit(hooked, "add prices", env=env)  # the hook starts the daemon within the same budget
    assert result.seconds < budget + margin, result.seconds
    assert "prices.py:9:20: magic-numbers" in result.output  # Level 0 complete
    assert "skipped simple-dry" in result.output and "budget" in result.output
    # asked within the budget or, when starting the daemon took it all, in the background
    wait_for(lambda: ollama_server.calls("/api/chat"), timeout=15)


def test_what_the_budget_cut_is_answered_in_the_background_for_the_next_commit(
    hooked: Path, ollama_server: FakeOllama,
) -> None:
    budget, margin = scaled(BUDGET, MARGIN)
    ollama_server.slow(budget + 1.0, agreeing_model)
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_BUDGET": str(budget)}
    write(hooked, "prices.py", TWINS)
    first = commit(hooked, "first try", env=env)  # blocked by Level 0; the model question is cut
    assert first.code == 1 and first.seconds < budget + margin and "skipped simple-dry" in first.output
    wait_for(lambda: status(hooked)[1]["background"]["answered"] >= 1, timeout=15)
    asked = len(ollama_server.calls("/api/chat"))
    second = commit(hooked, "second try", env=env)  # the same staged change
    assert "prices.py:12:" in second.output and "simple-dry" in second.output, second.output
    assert len(ollama_server.calls("/api/chat")) == asked  # answered from the cache


def test_the_hook_sends_which_lines_changed(hooked: Path, ollama_server: FakeOllama) -> None:
    ollama_server.answer(agreeing_model)
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_FAIL_ON": "never"}
    write(hooked, "prices.py", TWINS)
    assert commit(hooked, "twins", "--no-verify", env=env).code == 0
    write(hooked, "prices.py", TWINS.replace("D = 4", "D = 44"))  # far from the duplicated blocks
    result = commit(hooked, "constants", env=env)
    assert result.code == 0 and not ollama_server.calls("/api/chat"), result.output
    write(hooked, "prices.py", TWINS.replace("amount * 1.08", "amount * 1.09"))
    result = commit(hooked, "tax", env={**env, "TINYARMS_BUDGET": "20"})
    assert "prices.py:12:" in result.output and "simple-dry" in result.output, result.output
