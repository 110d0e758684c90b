"""The synthetic repository ``benchmarks/scan.py`` scans: Python and TypeScript files from varied
templates, seeded, with ``PLANTED`` duplicate pairs across files (the second copy renamed) that a
deep scan's cross-file rule should find."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

PLANTED = 10

NOUNS = ["order", "invoice", "user", "account", "payment", "report", "session", "ticket", "product", "cart",
         "shipment", "refund", "coupon", "review", "message", "device", "address", "profile", "team", "project"]
VERBS = ["load", "parse", "build", "sync", "check", "render", "export", "merge", "collect", "update"]


def _name(rng: random.Random, *parts: str) -> str:
    return "_".join(parts) if parts else f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)


def _py_function(rng: random.Random) -> str:
    noun, other = rng.sample(NOUNS, 2)
    kind = rng.randrange(6)
    body: list[str] = []
    if kind == 0:
        head = f"def load_{noun}s(path, limit={rng.randint(10, 500)}):"
        body += [f"    {noun}s = []", "    with open(path, encoding='utf-8') as fh:", "        for row in fh:"]
        body += rng.sample(["            if not row.strip():\n                continue",
                            "            if row.startswith('#'):\n                continue",
                            "            row = row.rstrip('\\n')"], rng.randint(1, 3))
        body += [f"            {noun}s.append(row.split(','))"]
        if rng.random() < 0.6:
            body += [f"            if len({noun}s) >= limit:", "                break"]
        body += [f"    return {noun}s"]
    elif kind == 1:
        head = f"def validate_{noun}(data):"
        for field in rng.sample(["id", "name", "email", "amount", "created", "status", "owner"], rng.randint(2, 5)):
            check = rng.choice([f"if '{field}' not in data:", f"if not data.get('{field}'):",
                                f"if data.get('{field}') is None:"])
            body += [f"    {check}", f"        raise ValueError('{noun}: {field} is missing')"]
        body += [rng.choice(["    return True", "    return data", "    return {**data, 'valid': True}"])]
    elif kind == 2:
        head = f"def total_{noun}(items, rate={rng.choice([0.1, 0.19, 0.2, 0.07])}):"
        body += ["    total = 0", "    for item in items:"]
        body += rng.sample(["        if item.qty <= 0:\n            continue",
                            "        if item.void:\n            continue",
                            f"        item.{other} = item.{other} or None"], rng.randint(0, 2))
        body += [rng.choice(["        total += item.price * item.qty", "        total = total + item.cost"])]
        body += [rng.choice(["    return round(total * (1 + rate), 2)", "    return total + total * rate"])]
    elif kind == 3:
        head = f"def fetch_{noun}(client, url, retries={rng.randint(2, 6)}):"
        body += ["    for attempt in range(retries):", "        try:", "            response = client.get(url)"]
        body += rng.sample(["            response.raise_for_status()", "            log.debug('got %s', url)"],
                           rng.randint(0, 2))
        body += ["            return response.json()", "        except IOError:",
                 rng.choice(["            time.sleep(2 ** attempt)", "            continue"]),
                 f"    raise RuntimeError('could not fetch {noun}')"]
    elif kind == 4:
        head = f"def group_{noun}s_by_{other}(rows):"
        body += ["    groups = {}", "    for row in rows:", f"        key = row.get('{other}')"]
        body += rng.sample(["        if key is None:\n            continue", "        key = str(key).lower()"],
                           rng.randint(0, 2))
        body += [rng.choice(["        groups.setdefault(key, []).append(row)",
                             "        if key not in groups:\n            groups[key] = []\n"
                             "        groups[key].append(row)"]),
                 "    return groups"]
    else:
        head = f"def format_{noun}({noun}, short=False):"
        body += ["    if short:", f"        return f\"{{{noun}.id}}\""]
        body += rng.sample([f"    name = {noun}.name.strip()", f"    when = {noun}.created.strftime('%Y-%m-%d')",
                            f"    status = {noun}.status or 'new'"], rng.randint(1, 3))
        body += [f"    return ' / '.join(str(part) for part in ({noun}.id, {noun}.name))"]
    return "\n".join([head, *[line for line in body if line]])


def _ts_function(rng: random.Random) -> str:
    noun = rng.choice(NOUNS)
    Noun = noun.title()
    kind = rng.randrange(3)
    if kind == 0:
        extra = rng.sample(["  const count = items.length;", f"  if (!items.length) return <p>No {noun}s</p>;",
                            "  const sorted = [...items].sort((a, b) => a.id - b.id);"], rng.randint(0, 3))
        return "\n".join([f"export function {Noun}List({{ items }}) {{", *extra, "  return (", "    <ul>",
                          "      {items.map((item) => <li key={item.id}>{item.name}</li>)}", "    </ul>", "  );", "}"])
    if kind == 1:
        extra = rng.sample(["  const started = Date.now();", f"  console.debug('fetch {noun}', id);"],
                           rng.randint(0, 2))
        return "\n".join([f"export async function fetch{Noun}(id) {{", *extra, "  try {",
                          f"    const response = await fetch(`/api/{noun}s/${{id}}`);",
                          "    if (!response.ok) throw new Error(response.statusText);",
                          "    return await response.json();", "  } catch (error) {",
                          rng.choice(["    return null;", "    throw error;"]), "  }", "}"])
    cases = rng.sample(["add", "remove", "clear", "update", "select"], rng.randint(2, 4))
    lines = [f"export function {noun}Reducer(state, action) {{", "  switch (action.type) {"]
    for case in cases:
        lines += [f"    case '{case}':", f"      return {{ ...state, last: '{case}', n: state.n + 1 }};"]
    return "\n".join([*lines, "    default:", "      return state;", "  }", "}"])


_PLANTED_STATEMENTS = [
    ["    acc = {}"], ["    seen = set()"], ["    ordered = []"], ["    budget = limit"],
    ["    for key, value in pairs:", "        if key in seen:", "            acc[key] = merge(acc[key], value)",
     "        else:", "            seen.add(key)", "            acc[key] = value"],
    ["    while len(acc) > limit:", "        acc.pop(next(iter(acc)))"],
    ["    ordered = sorted(acc.items(), key=lambda kv: kv[1])"],
    ["    try:", "        budget -= len(seen)", "    except TypeError:", "        budget = 0"],
    ["    if budget <= 0:", "        return []"],
    ["    for key in list(acc):", "        if not acc[key]:", "            del acc[key]"],
    ["    with lock:", "        ordered.extend(acc)"],
    ["    seen |= {key for key, _ in pairs if key}"],
    ["    assert all(isinstance(key, str) for key in acc), acc"],
    ["    ordered = [(key, merge(value, None)) for key, value in ordered if value is not None]"],
]


def _planted(rng: random.Random, k: int) -> str:
    """A function with a structure of its own (a random draw of statements); placed twice."""
    chosen = rng.sample(_PLANTED_STATEMENTS[3:], 7)
    lines = [line for block in _PLANTED_STATEMENTS[:3] + chosen for line in block]
    return "\n".join([f"def reconcile_{k}(pairs, merge, limit, lock):", *lines,
                      "    return [key for key, _ in ordered]"])


def _rename(code: str, rng: random.Random) -> str:
    for old in ("acc", "seen", "pairs", "merge", "ordered", "value", "budget", "lock", "limit"):
        code = code.replace(old, f"{old}_{rng.choice(['x', 'y', 'z'])}{rng.randint(1, 9)}")
    return code.replace("def reconcile_", "def combine_")


def make_repo(where: Path, files: int, seed: int = 7) -> tuple[Path, list[tuple[str, str]]]:
    """``files`` Python/TypeScript files from varied templates, and ``PLANTED`` duplicate pairs across
    files; returns the repository and the planted pairs (file, file)."""
    rng = random.Random(seed)
    repo = where / "synthetic"
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    names: list[str] = []
    bodies: list[list[str]] = []
    for i in range(files):
        package = f"{rng.choice(['api', 'core', 'jobs', 'web', 'billing', 'auth'])}/{rng.choice(NOUNS)}"
        if rng.random() < 0.3:
            name = f"{package}/{_camel(_name(rng))}_{i}.tsx"
            parts = ["import { api } from '../lib/api';", *(_ts_function(rng) for _ in range(rng.randint(1, 3)))]
        else:
            name = f"{package}/{_name(rng)}_{i}.py"
            parts = ["import time", "import logging\n\nlog = logging.getLogger(__name__)",
                     *(_py_function(rng) for _ in range(rng.randint(1, 4)))]
        names.append(name)
        bodies.append(parts)
    planted = []
    py = [i for i, n in enumerate(names) if n.endswith(".py")]
    for k in range(PLANTED):
        a, b = rng.sample(py, 2)
        code = _planted(rng, k)
        bodies[a].insert(rng.randint(2, len(bodies[a])), code)
        bodies[b].insert(rng.randint(2, len(bodies[b])), _rename(code, rng))
        planted.append((names[a], names[b]))
    for name, parts in zip(names, bodies, strict=True):
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n\n".join(parts) + "\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo, planted
