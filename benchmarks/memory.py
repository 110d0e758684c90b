"""The daemon's memory: idle RSS with no model loaded, and its growth over 1,000 lint requests.

A real daemon in a temporary state directory with the default config (backend ``auto``; no Ollama
answers on the port given, and no embedded model is provisioned there, so no model is loaded).
Requests have the hook's shape: staged contents sent inline, the budget it has left (different
every time) and its deadline. Nine in ten are files the daemon has seen (cache hits); every tenth
sends a file with new content (a miss, Level 0 runs and the result is written).

Printed: RSS after start, after the first lint (the lint modules are imported lazily, so this is
the idle figure of a daemon in use), and after 100 and 1,000 requests; growth over the last 900
(the daemon's caches are warm by then) and over all 1,000. Targets: idle <= 80 MB, growth <= 10 %.

    python benchmarks/memory.py [--requests 1000]
"""

# tinyarms: ignore-file[hardcoded-colors]  the colours are data: planted in the files this benchmark
# generates, for the rule to find

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
FILES = {
    "src/features/cart/Badge.tsx": 'import { fmt } from "../../utils/format";\n'
                                   'export const Badge = () => <div className="bg-[#ff0000] p-4">{fmt(4299)}</div>;\n',
    "src/theme.css": ".badge { color: #3b82f6; margin: 13px; }\n",
    "src/retry.py": "def fetch(get, url):\n    # see line 2\n    for attempt in range(5):\n        get(url, attempt)\n",
}
MB = 1e6


def closed_port() -> int:
    """A loopback port nothing listens on: 'no Ollama here'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, str(CHECKOUT))
    from tinyarms import protocol

    workdir = Path(tempfile.mkdtemp(prefix="tinyarms-bench-memory-"))
    home, repo = workdir / "state", workdir / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    client_env = {"OLLAMA_HOST": f"http://127.0.0.1:{closed_port()}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYARMS_")}
    env.update(TINYARMS_HOME=str(home), TINYARMS_CONFIG=str(workdir / "no-user-config.yaml"), **client_env)
    tinyarms = [sys.executable, "-m", "tinyarms"]
    subprocess.run([*tinyarms, "daemon", "start"], env=env, check=True, capture_output=True)
    try:
        with protocol.Connection(protocol.socket_path(home), 5.0) as conn:
            pid = conn.request({"op": "ping"})["result"]["pid"]
        time.sleep(1.0)
        figures = {"after start": rss(pid)}

        def lint(i: int) -> None:
            files = dict(FILES)
            if i % 10 == 0:
                files["src/new.py"] = f"LIMIT = {i}\nprint(LIMIT * 37)\n"
            now = time.monotonic()
            message = {
                "op": "lint", "cwd": str(repo), "root": str(repo), "staged": True, "format": "text",
                "budget": round(4.4 - (i % 997) * 0.001, 3), "deadline": round(now + 4.4, 3), "env": client_env,
                "files": [{"path": p, "content_b64": base64.b64encode(t.encode()).decode(), "size": len(t),
                           "changed": None} for p, t in files.items()],
            }
            with protocol.Connection(protocol.socket_path(home), 30.0) as conn:
                reply = conn.request(message)
            if not reply.get("ok") or "hardcoded-colors" not in reply["result"]["output"]:
                raise SystemExit(f"request {i} failed: {reply}")

        started = time.perf_counter()
        lint(1)
        time.sleep(0.5)
        figures["after the first lint (idle)"] = rss(pid)
        for i in range(2, args.requests + 1):
            lint(i)
            if i == 100:
                figures["after 100 requests"] = rss(pid)
        seconds = time.perf_counter() - started
        figures[f"after {args.requests} requests"] = last = rss(pid)
    finally:
        subprocess.run([*tinyarms, "daemon", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)

    for what, value in figures.items():
        print(f"rss {what:<30} {value:6.1f} MB")
    idle = figures["after the first lint (idle)"]
    warm = figures["after 100 requests"]
    print(f"growth over requests 100-{args.requests}: {(last - warm) / warm * 100:+.1f} %   "
          f"over all {args.requests}: {(last - idle) / idle * 100:+.1f} %   "
          f"({args.requests / seconds:.0f} requests/s, one at a time)")
    print(f"targets: idle <= 80 MB: {'met' if idle <= 80 else 'NOT met'}; growth <= 10 %: "
          f"{'met' if (last - idle) / idle <= 0.10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
