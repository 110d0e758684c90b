"""Lint-on-save: how much of a commit's model work the watcher has done before the commit.

Two runs on the same 20 edited files (12 Python with a duplicated block for simple-dry, 8 TSX
with a raw value equal to a design token), each in a fresh state directory with its own daemon:

* watched: the repository is registered (by `tinyarms hook install`), the files are saved the
  way editors save them (temp file + rename, sometimes twice, or truncate + write in place), the
  background queue drains (polling `status`), then `git commit` runs the installed hook;
* not watched: the same, with the repository taken off the registry, so the commit's hook does
  the model work itself within its budget.

The share of model results served from the cache comes from the hook's own output (its
"Level 2: ... N questions: A asked, C from the cache" line); the commit's wall time is `git
commit`'s. Target: >= 90 % from the cache with the watcher.

Model backend: the embedded llama.cpp backend with qwen2.5-coder:0.5b when that model is fetched
(`tinyarms models fetch qwen2.5-coder:0.5b`), else the fake Ollama server of the tests answering
each question after 0.3 s. The first line of the output says which.

    python benchmarks/watch.py [--files 20] [--budget 5] [--fake]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
MODEL = "qwen2.5-coder:0.5b"
TOKENS = ":root {\n  --space-4: 16px;\n  --radius-md: 8px;\n}\n"

PY_BEFORE = '''\
"""Orders for region {i}."""


def subtotal_{i}(items):
    total = 0
    for item in items:
        total += item.price * item.qty
    return total
'''
PY_AFTER = PY_BEFORE + '''

def shipping_{i}(parcels):
    weight = 0
    for parcel in parcels:
        weight += parcel.mass * parcel.count
    return weight
'''
TSX_BEFORE = '''\
export const Card{i} = ({{ title }}: {{ title: string }}) => (
  <section className="card">
    <h2>{{title}}</h2>
  </section>
);
'''
TSX_AFTER = '''\
export const Card{i} = ({{ title }}: {{ title: string }}) => (
  <section className="card" style={{{{ padding: "16px" }}}}>
    <h2>{{title}}</h2>
  </section>
);
'''
LEVEL_LINE = re.compile(
    r"Level (\d): .* (\d+) questions?: (\d+) asked, (\d+) from the cache(?:, (\d+) left for the background)?")


def files(count: int) -> list[tuple[str, str, str]]:
    """(name, before, after) for ``count`` files: three Python to every two TSX."""
    out = []
    for i in range(count):
        if i % 5 < 3:
            out.append((f"src/orders_{i}.py", PY_BEFORE.format(i=i), PY_AFTER.format(i=i)))
        else:
            out.append((f"src/ui/Card{i}.tsx", TSX_BEFORE.format(i=i), TSX_AFTER.format(i=i)))
    return out


def save(path: Path, text: str, style: int) -> None:
    """Save as an editor does: 0 temp + rename; 1 the same twice (a formatter on save); 2 in place."""
    if style == 2:
        with open(path, "w") as fh:
            fh.flush()
            fh.write(text[: len(text) // 2])
            fh.flush()
            fh.write(text[len(text) // 2:])
        return
    for _ in range(2 if style == 1 else 1):
        tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}~")
        tmp.write_text(text)
        os.replace(tmp, path)
        time.sleep(0.05)


def tinyarms(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinyarms", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)


def status(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = tinyarms("status", "--json", cwd=cwd, env=env)
    return json.loads(done.stdout)


def link_model(home: Path, model_file: Path) -> None:
    """The fetched model, linked into this run's state directory as `tinyarms models fetch` leaves it."""
    from tinyarms.models import registry

    folder = home / "models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / model_file.name).symlink_to(model_file)
    marker = registry.marker_path(model_file)
    registry.marker_path(folder / model_file.name).symlink_to(marker)


def run(label: str, watched: bool, workdir: Path, backend_env: dict[str, str], model_file: Path | None,
        count: int, budget: float) -> dict[str, Any]:
    base = workdir / label
    home, repo = base / "state", base / "repo"
    repo.mkdir(parents=True)
    home.mkdir(mode=0o700)
    if model_file is not None:
        link_model(home, model_file)
    env = {**os.environ, **backend_env, "TINYARMS_HOME": str(home), "TINYARMS_CONFIG": str(base / "none.yaml"),
           "TINYARMS_BUDGET": str(budget), "TINYARMS_FAIL_ON": "never",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
    edits = files(count)
    (repo / "src/ui").mkdir(parents=True)
    (repo / "src/styles").mkdir()
    (repo / "src/styles/tokens.css").write_text(TOKENS)
    for name, before, _ in edits:
        (repo / name).write_text(before)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run([*git, "commit", "-q", "--no-verify", "-m", "start"], cwd=repo, check=True, env=env)

    assert tinyarms("hook", "install", cwd=repo, env=env).returncode == 0
    if not watched:
        unregister(repo, home, env)
    started = tinyarms("daemon", "start", cwd=repo, env=env)
    assert started.returncode == 0, started.stderr
    try:
        # Load the model before the edits, in both runs alike: the first question would pay for it.
        warm = base / "warm"
        warm.mkdir()
        (warm / "w.py").write_text(PY_AFTER.format(i="warm"))
        tinyarms("lint", "--budget", "300", "w.py", cwd=warm, env=env)

        began = time.monotonic()
        for i, (name, _, after) in enumerate(edits):
            save(repo / name, after, i % 3)
        drained_in = None
        if watched:
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                time.sleep(0.5)
                s = status(env, repo)
                w = s["watcher"]
                if (w["linted"] >= count and not w["queued"] and not w["pending"] and not w["linting"]
                        and not s["background"]["queued"]):
                    drained_in = time.monotonic() - began
                    break
            else:
                raise SystemExit("the watcher's queue did not drain within 30 minutes")
        before = status(env, repo)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True, env=env)
        t0 = time.perf_counter()
        done = subprocess.run([*git, "commit", "-m", "edits"], cwd=repo, env=env, capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - t0
        after = status(env, repo)
    finally:
        tinyarms("daemon", "stop", cwd=repo, env=env)
    output = done.stdout + done.stderr
    levels = [m.groups() for m in LEVEL_LINE.finditer(output)]
    if not levels:
        raise SystemExit(f"{label}: no Level line in the hook's output:\n{output}")
    questions = sum(int(g[1]) for g in levels)
    asked = sum(int(g[2]) for g in levels)
    cached = sum(int(g[3]) for g in levels)
    pending = sum(int(g[4] or 0) for g in levels)
    return {
        "label": label, "exit": done.returncode, "wall": wall, "questions": questions, "asked": asked,
        "cached": cached, "pending": pending, "drained_in": drained_in,
        "linted": before["watcher"]["linted"],
        "lookups": (after["cache"]["hits"] - before["cache"]["hits"],
                    after["cache"]["misses"] - before["cache"]["misses"]),
    }


def unregister(repo: Path, home: Path, env: dict[str, str]) -> None:
    """`tinyarms repo remove`; the registry's own function where the command line lacks it."""
    done = tinyarms("repo", "remove", cwd=repo, env=env)
    if done.returncode != 0:
        from tinyarms.stores import repos

        assert repos.remove(repo, home) == repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--budget", type=float, default=5.0, help="the hook's budget (TINYARMS_BUDGET)")
    parser.add_argument("--fake", action="store_true", help="the fake Ollama server even when the model is fetched")
    args = parser.parse_args()
    sys.path.insert(0, str(CHECKOUT))

    from tinyarms.models import registry

    model_file = registry.local_path(MODEL) if importlib.util.find_spec("llama_cpp") and not args.fake else None
    fake = None
    if model_file is not None:
        backend = f"embedded llama.cpp, {MODEL} (a real model, {os.cpu_count()} cores)"
        backend_env = {"TINYARMS_MODELS__BACKEND": "embedded"}
    else:
        from tests.models.ollama_server import FakeOllama

        fake = FakeOllama().start()
        # tinyarms probes the port with a bare TCP connect; the test server would print each reset.
        fake._httpd.handle_error = lambda request, address: None  # type: ignore[union-attr]
        fake.slow(0.3, '{"violations": []}')
        backend = ("fake Ollama server (tests/models/ollama_server.py) answering each question after 0.3 s"
                   + ("" if args.fake else f"; {MODEL} is not fetched"))
        backend_env = {"TINYARMS_MODELS__BACKEND": "ollama", "OLLAMA_HOST": fake.host}
    workdir = Path(tempfile.mkdtemp(prefix="tinyarms-bench-watch-"))
    try:
        results = [run(label, watched, workdir, backend_env, model_file, args.files, args.budget)
                   for label, watched in (("watched", True), ("not-watched", False))]
    finally:
        if fake is not None:
            fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"backend      {backend}")
    print(f"files        {args.files} edited ({sum(1 for i in range(args.files) if i % 5 < 3)} .py with a duplicated "
          f"block, {sum(1 for i in range(args.files) if i % 5 >= 3)} .tsx with a raw token value), saved as editors "
          f"save: temp + rename, twice, or in place; hook budget {args.budget:g} s")
    for r in results:
        share = r["cached"] / r["questions"] if r["questions"] else 0.0
        print(f"{r['label']:<12} commit {r['wall']:6.2f} s wall (exit {r['exit']}); model results from the cache "
              f"{r['cached']}/{r['questions']} = {share:.0%} ({r['asked']} asked at commit, "
              f"{r['pending']} left for the background); cache lookups at commit {r['lookups'][0]} hits, "
              f"{r['lookups'][1]} misses")
        if r["drained_in"] is not None:
            print(f"{'':<12} background: {r['linted']} files linted, queue drained {r['drained_in']:.1f} s after "
                  "the first save")


if __name__ == "__main__":
    main()
