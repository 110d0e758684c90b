"""Many commits at once against one daemon: 20 and then 50 concurrent git hooks.

Every client is the real installed hook (``hooks/pre-commit``, what ``git commit`` runs) in a
repository of its own, started together behind a barrier, against one real daemon in a temporary
state directory. Each client stages files whose results are already cached (the same content in
every repository, linted once before the round) and one file of its own that is not (new content
every round, with a duplicated block that is a question for the fast model). Two model setups:

- ``none``: model checks turned off; the answer is Level 0 and the skipped model checks;
- ``slow``: the test suite's fake Ollama (``tests/models/ollama_server.py``) answering one
  question at a time, like a single Ollama runner on a laptop, ``--slow`` seconds each: "yes, a
  duplicate". What the budget cuts is skipped and answered in the background; what is answered
  must be what a serial run answers.

The reference is a serial run: the same hooks one at a time against a second daemon of their own,
with the same model answering at once. Printed per round: p50/p95/max of the hooks' wall time,
errors (a hook that fell back to an in-process lint, crashed, or exited other than 0/1 — must be 0),
and whether every client's findings are the serial run's (Level 0 exactly; a model finding only
if the serial run has it, and one the budget cut must be listed as skipped, never dropped).

    python benchmarks/load.py [--clients 20,50] [--slow 1.0] [--budget 5]
"""

# tinyarms: ignore-file[hardcoded-colors]  the colours are data: planted in the files this benchmark
# generates, for the rule to find

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
MODEL_RULES = ("simple-dry", "design-tokens")
FINDING = re.compile(r"^(\S[^:]*):(\d+):(\d+): (\S+) \[(\w+)\] ")
SKIPPED = re.compile(r"^skipped (\S+)")

# The same in every repository: linted once before a round, so every client finds it cached.
SHARED = {
    "src/features/cart/Badge.tsx": 'import { fmt } from "../../utils/format";\n'
                                   'export const Badge = () => <div className="bg-[#ff0000] p-4">{fmt(4299)}</div>;\n',
    "src/theme.css": ".badge { color: #3b82f6; margin: 13px; }\n",
    "src/retry.py": "def fetch(get, url):\n    # see line 2\n    for attempt in range(5):\n        get(url, attempt)\n",
}
# Each client's own file: two blocks doing the same thing (a simple-dry question) plus Level 0
# findings; ``{n}`` makes its content, and so its cache key, new in every round.
OWN = """\
def total_eu_{n}(items):
    total = 0
    for item in items:
        total += item.price * item.qty
    return total * 1.2


def total_us_{n}(basket):
    amount = 0
    for entry in basket:
        amount += entry.cost * entry.count
    return amount * 1.08


LIMIT = {n}
print(LIMIT * 37, "#00ff00")
"""


def agreeing(request) -> str:
    """The model says yes to the question it is asked, on the line the question names."""
    import json

    prompt = request.body["messages"][-1]["content"]
    rule = re.search(r"report one violation of rule ([\w-]+)", prompt).group(1)
    line = int(re.search(r"report one violation of rule [\w-]+ on line (\d+)", prompt).group(1))
    return json.dumps({"violations": [{"rule": rule, "line": line, "message": "repeats the block above",
                                       "suggestion": "extract a helper", "confidence": 0.9}]})


@dataclass(slots=True)
class Run:
    code: int
    seconds: float
    stdout: str
    stderr: str

    def findings(self) -> set[tuple[str, int, int, str]]:
        return {(m[1], int(m[2]), int(m[3]), m[4]) for m in map(FINDING.match, self.stdout.splitlines()) if m}

    def skipped_rules(self) -> set[str]:
        return {m[1] for m in map(SKIPPED.match, self.stdout.splitlines()) if m}


@dataclass(slots=True)
class Round:
    clients: int
    model: str
    runs: list[Run] = field(default_factory=list)
    serial: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    model_found: int = 0
    model_cut: int = 0
    same: bool = True


class Bench:
    def __init__(self, workdir: Path, budget: float):
        self.workdir = workdir
        self.budget = budget
        self.tinyarms = [sys.executable, "-m", "tinyarms"]
        self.repos: list[Path] = []
        self.hook = b""

    def env(self, home: Path, model: str, host: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TINYARMS_") and k != "OLLAMA_HOST"}
        env.update(TINYARMS_HOME=str(home), TINYARMS_CONFIG=str(self.workdir / "no-user-config.yaml"),
                   TINYARMS_BUDGET=str(self.budget), GIT_CONFIG_NOSYSTEM="1",
                   GIT_CONFIG_GLOBAL=str(self.workdir / "no-gitconfig"))
        if model == "none":
            env["TINYARMS_MODELS__BACKEND"] = "none"
        else:
            env.update(TINYARMS_MODELS__BACKEND="ollama", OLLAMA_HOST=host or "")
        return env

    def make_repos(self, count: int) -> None:
        git = ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench"]
        for i in range(len(self.repos), count):
            repo = self.workdir / f"repo{i:02d}"
            for rel, text in SHARED.items():
                (repo / rel).parent.mkdir(parents=True, exist_ok=True)
                (repo / rel).write_text(text)
            subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
            if not self.hook:
                subprocess.run([*self.tinyarms, "hook", "install"], cwd=repo, check=True, capture_output=True,
                               env=self.env(self.workdir / "install-home", "none", None))
                self.hook = (repo / ".git/hooks/pre-commit").read_bytes()
            hook = repo / ".git/hooks/pre-commit"
            hook.write_bytes(self.hook)
            hook.chmod(0o755)
            subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
            self.repos.append(repo)

    def stage_own(self, repos: list[Path], tag: int) -> None:
        for i, repo in enumerate(repos):
            (repo / "src/own.py").write_text(OWN.format(n=tag * 1000 + i))
            subprocess.run(["git", "add", "src/own.py"], cwd=repo, check=True)

    def hook_run(self, repo: Path, env: dict[str, str]) -> Run:
        started = time.perf_counter()
        done = subprocess.run([str(repo / ".git/hooks/pre-commit")], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        return Run(done.returncode, time.perf_counter() - started, done.stdout, done.stderr)

    def concurrent(self, repos: list[Path], env: dict[str, str]) -> list[Run]:
        barrier = threading.Barrier(len(repos))
        runs: list[Run | None] = [None] * len(repos)

        def client(i: int) -> None:
            barrier.wait()
            try:
                runs[i] = self.hook_run(repos[i], env)
            except Exception as exc:  # noqa: BLE001 - counted as an error below
                runs[i] = Run(-1, float("nan"), "", f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(repos))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [run for run in runs if run is not None]


def check(round_: Round) -> None:
    for i, (run, ref) in enumerate(zip(round_.runs, round_.serial, strict=False)):  # runs lost by a client are absent
        who = f"client {i}"
        if run.code not in (0, 1):
            round_.errors.append(f"{who}: exit {run.code}: {run.stderr.strip()[-300:]}")
            continue
        if "daemon unavailable" in run.stderr or "Traceback" in run.stderr:
            round_.errors.append(f"{who}: {run.stderr.strip()[-300:]}")
            continue
        got, want = run.findings(), ref.findings()
        level0 = {f for f in got if f[3] not in MODEL_RULES}
        if level0 != {f for f in want if f[3] not in MODEL_RULES} or not got <= want:
            round_.same = False
            round_.errors.append(f"{who}: findings differ from the serial run: got {sorted(got)}, want {sorted(want)}")
            continue
        cut = {f for f in want - got}
        round_.model_found += len(got - level0)
        round_.model_cut += len(cut)
        if not {f[3] for f in cut} <= run.skipped_rules():
            round_.same = False
            round_.errors.append(f"{who}: model findings {sorted(cut)} neither reported nor listed as skipped")
        if run.code != ref.code and not cut:
            round_.errors.append(f"{who}: exit {run.code}, the serial run's {ref.code}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(round_: Round) -> None:
    times = [run.seconds * 1000 for run in round_.runs]
    alone = statistics.median(run.seconds * 1000 for run in round_.serial)
    model = "off" if round_.model == "none" else f"slow ({round_.model})"
    line = (f"{round_.clients:3d} clients  model {model:<12} p50 {statistics.median(times):5.0f} ms  "
            f"p95 {percentile(times, 95):5.0f} ms  max {max(times):5.0f} ms  (serial reference p50 {alone:4.0f} ms)  "
            f"errors {len(round_.errors)}  same findings as serial: {'yes' if round_.same else 'NO'}")
    if round_.model != "none":
        line += f"  (model findings {round_.model_found} in budget, {round_.model_cut} cut and listed as skipped)"
    print(line, flush=True)
    for error in round_.errors[:5]:
        print(f"    {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="20,50", help="comma-separated client counts (default 20,50)")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds the fake model takes per question")
    parser.add_argument("--budget", type=float, default=5.0, help="the hook's budget (TINYARMS_BUDGET)")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]

    sys.path.insert(0, str(CHECKOUT))
    from tests.models.ollama_server import FakeOllama

    workdir = Path(tempfile.mkdtemp(prefix="tinyarms-bench-load-"))
    bench = Bench(workdir, args.budget)
    home, ref_home = workdir / "state", workdir / "serial-state"
    slow, quick = FakeOllama().start(), FakeOllama().start()
    one_at_a_time = threading.Lock()

    def queued(request) -> str:
        with one_at_a_time:
            time.sleep(args.slow)
            return agreeing(request)

    slow.answer(queued)
    quick.answer(agreeing)
    failed = False
    try:
        bench.make_repos(max(counts))
        for home_dir in (home, ref_home):
            subprocess.run([*bench.tinyarms, "daemon", "start"], check=True, capture_output=True,
                           env=bench.env(home_dir, "none", None))
        print(f"budget {args.budget:g} s, slow model {args.slow:g} s per question; "
              f"each client stages {len(SHARED)} cached files and 1 uncached", flush=True)
        tag = 0
        for clients in counts:
            for model in ("none", "slow"):
                tag += 1
                repos = bench.repos[:clients]
                env = bench.env(home, model, slow.host)
                ref_env = bench.env(ref_home, model, quick.host)
                bench.stage_own(repos[:1], 0)
                bench.hook_run(repos[0], env)  # the shared files: cached from here on
                bench.stage_own(repos, tag)
                round_ = Round(clients, "none" if model == "none" else f"{args.slow:g} s")
                round_.runs = bench.concurrent(repos, env)
                round_.serial = [bench.hook_run(repo, ref_env) for repo in repos]
                for i, ref in enumerate(round_.serial):
                    if ref.code not in (0, 1) or "daemon unavailable" in ref.stderr:
                        raise SystemExit(f"the serial run failed for client {i}: {ref.stderr}")
                check(round_)
                report(round_)
                failed |= bool(round_.errors) or not round_.same
        status = subprocess.run([*bench.tinyarms, "status", "--json"], capture_output=True, text=True,
                                env=bench.env(home, "none", None), check=False)
        import json

        info = json.loads(status.stdout)
        print(f"daemon: {info['requests']['served']} requests served, {len(info['recent_errors'])} errors "
              f"in status, background answered {info['background']['answered']}, "
              f"dropped {info['background']['dropped']}, rss {info['daemon']['rss_bytes'] / 2**20:.0f} MiB")
    finally:
        for home_dir in (home, ref_home):
            subprocess.run([*bench.tinyarms, "daemon", "stop"], capture_output=True,
                           env=bench.env(home_dir, "none", None),
                           check=False)
        slow.stop()
        quick.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
