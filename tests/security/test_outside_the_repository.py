"""Security: nothing outside the repository is read, whichever way a request reaches for it.

A secret written outside the repository, reached by ``../``, an absolute path, a symlinked file
or folder, a symlinked token file or ``tsconfig.json``, a deep scan or a hook request, never
appears in a reply, a model prompt, the cache, the logs or a scan report. Each protection here was
checked by removing it and watching its test fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import git, run_cli
from tests.models.ollama_server import FakeOllama, Request
from tinyarms import lintjob, protocol, scan
from tinyarms.daemon import control
from tinyarms.yamlio import ConfigError

# Written outside the repository. If any of it were read, these words would show up: the colour
# in a Level 0 finding, the code in a model prompt, the token name in a design-tokens question,
# the alias in an import-aliases suggestion.
SECRET = "zq7secret"
SECRET_CODE = TWINS.replace("total_", f"{SECRET}_") + f'COLOUR = "#5ec2e7"  # {SECRET}\n'
SECRET_MARKS = (SECRET, "5ec2e7")


def agreeing(request: Request) -> str:
    """A model that says yes to whatever it is asked, on the line the question names."""
    prompt = request.body["messages"][-1]["content"]
    rule, line = re.search(r"report one violation of rule ([\w-]+) on line (\d+)", prompt).groups()
    return json.dumps({"violations": [{"rule": rule, "line": int(line), "message": "yes", "suggestion": "",
                                       "confidence": 0.9}]})


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        server.answer(agreeing)
        monkeypatch.setenv("OLLAMA_HOST", server.host)
        monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "ollama")
        yield server


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.py").write_text(SECRET_CODE)
    (folder / "tokens.css").write_text(f":root {{ --{SECRET}-space: 13px; }}\n")
    tsconfig = {"compilerOptions": {"paths": {f"@{SECRET}/*": ["./src/utils/*"]}}}
    (folder / "tsconfig.json").write_text(json.dumps(tsconfig))
    return folder


@pytest.fixture
def linked(repo: Path, outside: Path) -> Path:
    """A repository whose symlinks lead out of it: a file, a folder, a token file, a tsconfig."""
    (repo / "src" / "features" / "cart").mkdir(parents=True)
    (repo / "src" / "app.py").write_text(TWINS)
    (repo / "src" / "card.css").write_text(".card { padding: 13px; }\n")
    (repo / "src" / "features" / "cart" / "Badge.tsx").write_text('import { price } from "../../utils/format";\n')
    (repo / "leak.py").symlink_to(outside / "secret.py")
    (repo / "linkdir").symlink_to(outside)
    (repo / "tokens.css").symlink_to(outside / "tokens.css")
    (repo / "tsconfig.json").symlink_to(outside / "tsconfig.json")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "links")
    return repo


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [mark for mark in SECRET_MARKS if mark in text]


def daemon_lint(home: Path, repo: Path, **fields: Any) -> dict[str, Any]:
    message = {"op": "lint", "cwd": str(repo), "no_cache": False, "env": {
        "OLLAMA_HOST": os.environ["OLLAMA_HOST"], "TINYARMS_MODELS__BACKEND": "ollama", "TINYARMS_BUDGET": "20"},
        **fields}
    with protocol.Connection(protocol.socket_path(home), 60) as conn:
        return conn.request(message)


ESCAPES = ["../outside/secret.py", "{outside}/secret.py", "src/../../outside/secret.py", "{outside}"]
THROUGH_LINKS = {"leak.py": "leak.py", "linkdir": "linkdir", "linkdir/secret.py": "linkdir/secret.py",
                 "tokens.css": "tokens.css"}


def test_no_request_reads_outside_the_repository(linked: Path, outside: Path, model: FakeOllama,
                                                  isolated_env: Path) -> None:
    home = isolated_env
    before = snapshot(outside)
    control.start(home)
    try:
        replies = []
        for path in ESCAPES:  # by name: refused, naming the path and the repository
            reply = daemon_lint(home, linked, paths=[path.format(outside=outside)])
            replies.append(reply)
            assert not reply["ok"] and reply["error"]["code"] == protocol.CONFIG_ERROR, (path, reply)
            assert "outside the repository" in reply["error"]["message"] and str(linked) in reply["error"]["message"]
        for path, shown in THROUGH_LINKS.items():  # through a symlink: skipped, saying where it leads
            reply = daemon_lint(home, linked, paths=[path])
            replies.append(reply)
            assert reply["ok"], (path, reply)
            skips = {s["path"]: s for s in reply["result"]["skipped"] if s["rule"] is None}
            assert skips[shown]["reason"] == "symlink-outside", (path, skips)
            assert "outside the repository" in skips[shown]["message"]
        # The whole repository: its own files are linted (and asked about), the links are not followed.
        whole = daemon_lint(home, linked, paths=["."], format="sarif")
        replies.append(whole)
        assert whole["ok"], whole
        skipped = {s["path"]: s["reason"] for s in whole["result"]["skipped"] if s["rule"] is None}
        assert skipped == {"leak.py": "symlink-outside", "tokens.css": "symlink-outside"}  # linkdir: no rule applies
        assert any(f["path"] == "src/app.py" and f["rule"] == "simple-dry" for f in whole["result"]["findings"])
        # The hook's way: contents sent under a name that climbs out of the repository.
        sent = daemon_lint(home, linked, root=str(linked), files=[
            {"path": "../outside/secret.py", "content_b64": base64.b64encode(b"x = 1\n").decode()}])
        replies.append(sent)
        assert not sent["ok"] and "escapes the repository" in sent["error"]["message"], sent
        # A deep scan of the repository, and one of a path out of it.
        scanned = scan.run(linked, scan.ScanOptions())
        with pytest.raises(ConfigError, match="outside the repository"):
            scan.run(linked, scan.ScanOptions(paths=["../outside"]))
    finally:
        control.stop(home)

    prompts = [r.raw for r in model.requests]
    assert any(b"total_eu" in p for p in prompts), "the model was never asked: the test proves nothing"
    assert [leaks(json.dumps(r)) for r in replies if leaks(json.dumps(r))] == []
    assert [leaks(p) for p in prompts if leaks(p)] == [], "a secret reached the model"
    assert {str(p): leaks(p.read_bytes()) for p in home.rglob("*") if p.is_file() and leaks(p.read_bytes())} == {}
    assert scanned.report and not leaks(json.dumps(scanned.result.to_dict(), default=str))
    assert snapshot(outside) == before, "something outside the repository was written"
    # The same bytes inside the repository do show up everywhere: the checks above can fail.
    (linked / "src" / "copy.py").write_text(SECRET_CODE)
    job = lintjob.LintJob(paths=["src/copy.py"], no_cache=True)
    out = lintjob.execute(job, linked, lintjob.load(job, linked)).to_dict()
    assert leaks(json.dumps(out)) and leaks(model.requests[-1].raw)


def test_the_command_line_refuses_paths_out_of_the_repository(linked: Path, outside: Path) -> None:
    result = run_cli("lint", "--no-daemon", "../outside/secret.py", cwd=linked)
    assert result.returncode == 2
    assert "../outside/secret.py: outside the repository" in result.stderr and not leaks(result.stdout + result.stderr)
