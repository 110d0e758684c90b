"""Cross-file candidate pairs: planted duplicates are found, unrelated code is not, counts are bounded."""

from __future__ import annotations

from tinyarms.candidates.cross_file import PER_FUNCTION, Index, find
from tinyarms.models import prompts
from tinyarms.source import make_source

INVOICE = """\
import math


def invoice_total(lines, rate):
    subtotal = 0
    for line in lines:
        if line.quantity > 0 and not line.cancelled:
            subtotal += line.price * line.quantity
    tax = subtotal * rate
    return round(subtotal + tax, 2)
"""

# The same function renamed, two files away, lower in its file.
BASKET = """\
from dataclasses import dataclass


@dataclass
class Entry:
    cost: float
    count: int
    void: bool


def basket_sum(entries, vat):
    acc = 0
    for entry in entries:
        if entry.count > 0 and not entry.void:
            acc += entry.cost * entry.count
    extra = acc * vat
    return round(acc + extra, 2)
"""

PARSER = """\
def parse_args(argv):
    options = {}
    while argv:
        head = argv.pop(0)
        if head.startswith("--"):
            options[head[2:]] = argv.pop(0) if argv else True
        else:
            options.setdefault("rest", []).append(head)
    return options
"""

RENDER = """\
export function renderRows(rows) {
  const out = [];
  for (const row of rows) {
    out.push(`<tr><td>${row.name}</td><td>${row.value}</td></tr>`);
  }
  return `<table>${out.join("")}</table>`;
}
"""

SEMANTIC = {"finder": "cross-file", "min_jaccard": 0.5}


def src(path: str, code: str):
    return make_source(path, path, code.encode())


def test_a_renamed_copy_in_another_file_is_one_pair_naming_both_places() -> None:
    sources = [src("billing/invoice.py", INVOICE), src("cart/basket.py", BASKET), src("cli.py", PARSER),
               src("ui/rows.js", RENDER)]
    [(own, candidate)] = find(sources, "semantic-duplication", SEMANTIC, 10)
    # The finding lands on the later file (by path); the question shows the other one first.
    assert own.rel == "cart/basket.py"
    assert candidate.lines == ((11, 17),) and candidate.report == (11, 17)
    assert candidate.other is not None
    assert (candidate.other.path, candidate.other.start, candidate.other.end) == ("billing/invoice.py", 4, 10)
    assert candidate.other.lines[0] == "def invoice_total(lines, rate):"
    assert "report one violation of rule semantic-duplication on line 11" in candidate.question
    assert "billing/invoice.py lines 4-10" in candidate.question and "invoice_total" in candidate.question

    prompt = prompts.user_prompt("semantic-duplication", "Duplicated functions.", [], own.path, own.lines, candidate)
    # Both functions, each with its real line numbers: the other file first.
    assert "Code from billing/invoice.py" in prompt and "Code from cart/basket.py" in prompt
    assert prompt.index("   4| def invoice_total(lines, rate):") < prompt.index("  11| def basket_sum(entries, vat):")
    assert "  10|     return round(subtotal + tax, 2)" in prompt and "  17|     return round(acc + extra, 2)" in prompt


def test_unrelated_files_and_same_file_twins_give_no_pairs() -> None:
    twins_in_one_file = INVOICE + "\n\n" + INVOICE.split("\n\n\n", 1)[1].replace("invoice_total", "other_total")
    sources = [src("cli.py", PARSER), src("ui/rows.js", RENDER), src("billing/invoice.py", twins_in_one_file)]
    assert find(sources, "semantic-duplication", SEMANTIC, 10) == []  # same-file duplication is complex-dry's


def test_small_functions_are_not_compared() -> None:
    tiny = "def a(x):\n    y = x + 1\n    z = y * 2\n    return z\n"
    index = Index([src("a.py", tiny), src("b.py", tiny.replace("a(x)", "b(x)"))])
    assert index.functions == []  # four lines, but too few tokens to say anything


def test_bands_split_the_pairs_between_the_two_rules() -> None:
    edited = BASKET.replace("    extra = acc * vat\n    return round(acc + extra, 2)\n",
                            "    log.debug('sum %s', acc)\n    if vat:\n        acc *= 1 + vat\n    else:\n"
                            "        log.info('no vat')\n    return acc\n")
    sources = [src("billing/invoice.py", INVOICE), src("cart/basket.py", edited)]
    index = Index(sources)
    [(similarity, _, _)] = index.jaccard_pairs()
    assert 0.3 <= similarity < 0.5
    assert find(sources, "semantic-duplication", SEMANTIC, 10, index) == []
    loose = {"finder": "cross-file", "min_jaccard": 0.3, "max_jaccard": 0.5}
    assert len(find(sources, "cross-file-patterns", loose, 10, index)) == 1


def test_pairs_are_bounded_in_total_and_per_function() -> None:
    copies = [src(f"m{i}.py", INVOICE.replace("invoice_total", f"total_{i}")) for i in range(8)]
    found = find(copies, "semantic-duplication", SEMANTIC, 100)
    uses: dict[str, int] = {}
    for own, candidate in found:
        for place in (own.rel, candidate.other.path):
            uses[place] = uses.get(place, 0) + 1
    assert max(uses.values()) <= PER_FUNCTION
    assert len(find(copies, "semantic-duplication", SEMANTIC, 3)) == 3


def test_pairs_are_the_same_in_every_process(tmp_path) -> None:
    # crc32 shingles, not hash(): the pairs, so the prompts, so the cache keys, must not change
    # between scans, whatever PYTHONHASHSEED each process has.
    import os
    import subprocess
    import sys

    for name, code in (("invoice.py", INVOICE), ("basket.py", BASKET), ("cli.py", PARSER)):
        (tmp_path / name).write_text(code)
    script = (
        "import sys; from pathlib import Path; from tinyarms.candidates.cross_file import Index; "
        "from tinyarms.source import make_source; "
        "idx = Index(make_source(p.name, p.name, p.read_bytes()) for p in sorted(Path(sys.argv[1]).glob('*.py'))); "
        "print(sorted(sorted(f.shingles) for f in idx.functions), idx.jaccard_pairs())"
    )
    runs = {subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1 and "0, 1)" in runs.pop()


def test_embeddings_propose_pairs_shingles_cannot_see() -> None:
    sources = [src("billing/invoice.py", INVOICE), src("cli.py", PARSER), src("ui/rows.js", RENDER)]
    index = Index(sources)
    names = [f.name for f in index.functions]
    # Scripted vectors: the invoice and the parser point the same way, the renderer elsewhere.
    vectors = {i: ([1.0, 0.1] if names[i] != "renderRows" else [0.0, 1.0]) for i in range(len(names))}
    [(own, candidate)] = find(sources, "semantic-duplication", {"min_cosine": 0.9}, 10, index, vectors)
    assert {own.rel, candidate.other.path} == {"billing/invoice.py", "cli.py"}
    assert "similar embeddings" in candidate.question
    assert find(sources, "semantic-duplication", SEMANTIC, 10, index) == []  # shingles see nothing alike
