"""didChange -> publishDiagnostics latency of ``tinyarms lsp``, side by side with ``ruff server``.

One run, the same 300-line Python file for both, in a throwaway git repository. Each server is
started over stdio by a bare JSON-RPC client (this file's), the file is opened and its first
diagnostics awaited (for tinyarms this starts the daemon and warms it), then ``--warmup`` edits
are made and thrown away, then ``--edits`` timed ones: each changes one line (a magic number
that alternates between two values) and the time until that server next publishes diagnostics
for the file is taken. tinyarms runs Level 0 (``models.backend: none``) through the warm daemon,
its 30 ms debounce included; ruff runs with its defaults. Servers alternate by round so the
machine's noise falls on both alike.

Target: tinyarms p95 within 100 ms.

    python benchmarks/lsp.py [--edits 100] [--warmup 10] [--rounds 2] [--debounce SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LINES = 300
EDITED_LINE = 150  # 0-based: the line each edit rewrites


def source(value: int) -> str:
    """A 300-line Python module with a few things for either linter to say."""
    out = ['"""A module for the benchmark."""', "", "import os", ""]
    n = 0
    while len(out) < LINES - 2:
        out += [f"def handler_{n}(request, limit=None):", f"    if request.size > {1000 + n}:",
                f"        return os.path.join(request.path, 'part_{n}')", "    return request.body", "", ""]
        n += 1
    # the planted finding each edit's diagnostics carry
    out = [*out[:LINES - 2], 'BRAND = "#3b82f6"', ""]  # tinyarms: ignore[hardcoded-colors]  planted data
    out[EDITED_LINE] = f"TIMEOUT_LIMIT = compute({value})"
    return "\n".join(out)


class Client:
    """A bare JSON-RPC client over the server's stdio: the typed clients' converters choke on
    some servers' capabilities (ruff's notebook selector), and a benchmark needs only framing."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    @classmethod
    async def start(cls, command: list[str], cwd: Path, env: dict[str, str]) -> Client:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=str(cwd), env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=1 << 26)
        return cls(proc)

    def send(self, method: str, params: Any, request: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return message.get("id")

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            if line in (b"\r\n", b"\n"):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        message: dict[str, Any] = json.loads(await self.proc.stdout.readexactly(length))
        return message

    async def call(self, method: str, params: Any) -> Any:
        ident = self.send(method, params, request=True)
        while True:
            message = await self.read()
            if message.get("id") == ident and "method" not in message:
                return message.get("result")
            self.answer(message)

    def answer(self, message: dict[str, Any]) -> None:
        """Requests from the server (configuration, progress) get an empty answer."""
        if "method" in message and "id" in message:
            body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": None}).encode()
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def diagnostics(self, uri: str) -> list[Any]:
        while True:
            message = await self.read()
            self.answer(message)
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                diagnostics: list[Any] = message["params"]["diagnostics"]
                return diagnostics

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("shutdown", None), 10)
            self.send("exit", None)
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()  # our own child, by its handle
            await self.proc.wait()


async def measure(name: str, command: list[str], workdir: Path, env: dict[str, str], edits: int, warmup: int,
                  options: dict[str, Any] | None = None) -> list[float]:
    client = await Client.start(command, workdir, env)
    await client.call("initialize", {
        "processId": os.getpid(), "rootUri": workdir.as_uri(), "capabilities": {},
        "workspaceFolders": [{"uri": workdir.as_uri(), "name": workdir.name}], "initializationOptions": options})
    client.send("initialized", {})
    path = workdir / "module.py"
    uri = path.as_uri()
    path.write_text(source(0))
    times: list[float] = []
    found: list[Any] = []
    try:
        client.send("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": source(0)}})
        await asyncio.wait_for(client.diagnostics(uri), 60)
        for version in range(2, 2 + warmup + edits):
            started = time.perf_counter()
            client.send("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": EDITED_LINE, "character": 0},
                                              "end": {"line": EDITED_LINE + 1, "character": 0}},
                                    "text": f"TIMEOUT_LIMIT = compute({version % 2 + 4500})\n"}]})
            found = await asyncio.wait_for(client.diagnostics(uri), 30)
            if version >= 2 + warmup:
                times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)  # a person does not make 20 edits a second
    finally:
        await client.stop()
    print(f"  {name}: {len(times)} edits timed, {len(found)} diagnostics on the file", file=sys.stderr)
    return times


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    results: dict[str, list[float]] = {"tinyarms lsp": [], "ruff server": []}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "repo"
        work.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        home = Path(scratch) / "home"
        env = {**os.environ, "TINYARMS_HOME": str(home), "TINYARMS_CONFIG": str(home / "none.yaml"),
               "TINYARMS_MODELS__BACKEND": "none"}
        try:
            for _ in range(args.rounds):
                results["tinyarms lsp"] += await measure(
                    "tinyarms lsp", [sys.executable, "-m", "tinyarms", "lsp"], work, env, args.edits, args.warmup,
                    {"debounce": args.debounce} if args.debounce is not None else None)
                if ruff:
                    results["ruff server"] += await measure(
                        "ruff server", [ruff, "server"], work, env, args.edits, args.warmup)
        finally:
            subprocess.run([sys.executable, "-m", "tinyarms", "daemon", "stop"], env=env, check=False,
                           capture_output=True)
    print(f"didChange -> publishDiagnostics, {LINES}-line Python file, {args.rounds} x {args.edits} edits")
    for name, times in results.items():
        if not times:
            print(f"  {name:13} not run (not installed)")
            continue
        print(f"  {name:13} p50 {statistics.median(times):6.1f} ms   p95 {percentile(times, 95):6.1f} ms   "
              f"max {max(times):6.1f} ms   n={len(times)}")
    p95 = percentile(results["tinyarms lsp"], 95)
    print(f"target: tinyarms p95 <= 100 ms: {'met' if p95 <= 100 else 'NOT met'} ({p95:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--debounce", type=float, help="tinyarms's debounce in seconds (default: the server's, 0.03)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
