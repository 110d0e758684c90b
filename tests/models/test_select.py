"""Backend ``auto``: which backend answers model questions, decided by a quick probe of Ollama."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from tests import servers
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.models.test_ollama import closed_port_fixture  # noqa: F401
from tests.servers import LoopbackHTTPServer
from tinyarms.config import ModelsConfig, OllamaConfig
from tinyarms.models import select


@pytest.fixture(autouse=True)
def no_remembered_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "_probes", {})  # probes are remembered per process; start clean


def choose(host: str) -> select.Choice:
    async def run() -> select.Choice:
        choice = await select.choose(ModelsConfig(ollama=OllamaConfig(host=host)), 2)
        if choice.backend is not None:
            await choice.backend.close()
        return choice

    return asyncio.run(run())


@pytest.fixture
def not_ollama() -> Iterator[str]:
    """An HTTP server on the port that is not Ollama: every path is a 404 page."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = LoopbackHTTPServer(Handler)
    thread = servers.serve(httpd, "not-ollama")
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    servers.stop(httpd, thread)


def test_auto_picks_ollama_when_it_answers(ollama_server: FakeOllama) -> None:
    choice = choose(ollama_server.host)
    assert (choice.name, choice.why) == ("ollama", f"Ollama answers at {ollama_server.host}")


def test_auto_passes_over_a_port_nothing_listens_on(closed_port: str) -> None:
    choice = choose(closed_port)
    assert choice.name != "ollama" and closed_port in choice.why


def test_auto_passes_over_a_server_that_is_not_ollama(not_ollama: str) -> None:
    choice = choose(not_ollama)
    assert choice.name != "ollama" and not_ollama in choice.why


def test_an_ollama_too_busy_to_answer_the_probe_in_time_is_still_ollama(
    ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On a loaded machine (CI, a compile running) the probe's answer can come late; taking that
    # for "no Ollama" switched the lint to another backend and model, or skipped every model
    # check as if none were installed. It seeded a flaky test in full CI runs.
    monkeypatch.setattr(select, "PROBE_TIMEOUT", 0.2)
    ollama_server.busy(1.0)
    choice = choose(ollama_server.host)
    assert choice.name == "ollama", choice.why
    assert "did not answer" in choice.why and "0.2 s" in choice.why


def test_probes_are_remembered_per_host(ollama_server: FakeOllama, closed_port: str) -> None:
    assert choose(closed_port).name != "ollama"
    assert choose(ollama_server.host).name == "ollama"  # not the other host's remembered answer
    host = ollama_server.host
    ollama_server.stop()
    assert choose(host).name == "ollama"  # remembered for a few seconds
