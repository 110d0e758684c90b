"""simple-dry candidates: pairs of similar blocks of at least four lines within one file.

Clone detection over normalised tokens (identifiers, strings and numbers abstracted away, as
CPD and Simian do): each code line becomes its token shape, windows of four lines are hashed,
equal windows at non-overlapping places are extended into the longest matching blocks.

Near-miss copies (Type-3 clones: a line that gained a term, a line added or removed) are found
between whole functions, as NiCad does: two functions of at least four code lines whose
sequences of line shapes are at least ``NEAR_MISS`` alike (``difflib``'s ratio, 2·matching
lines / all lines: one changed line in five is 0.8) are a pair, unless an exact pair covers
them already. Pairs are compared only where their lengths could reach the threshold at all.
"""

from __future__ import annotations

from collections import defaultdict

from tinyarms.candidates import Candidate
from tinyarms.candidates.functions import spans
from tinyarms.source import Source

WINDOW = 4
MIN_TOKENS = 16
NEAR_MISS = 0.8  # similarity of two functions' line shapes that makes them a near-miss pair
MAX_FUNCTIONS = 200  # functions per file compared pairwise for near misses (a bound on the work)
_IDENTIFIER_HINT = "identifier"
_NUMBERS = frozenset({"integer", "float", "number"})
_STRINGS = frozenset({"string", "template_string", "concatenated_string"})
_SKIP_LINES = frozenset({"import", "from", "export", "#"})  # import blocks look alike by nature


def token_lines(src: Source) -> list[tuple[int, tuple[str, ...]]]:
    """(1-based line, token shape) for every line with code, comments left out."""
    tree = src.tree
    if tree is None:
        return []
    rows: dict[int, list[str]] = defaultdict(list)
    cursor = tree.walk()
    while True:
        node = cursor.node
        assert node is not None  # a cursor from tree.walk() always stands on a node
        kind = node.type
        descend = True
        if kind == "comment":
            descend = False
        elif kind in _STRINGS:
            rows[node.start_point[0]].append("S")
            descend = False
        elif node.child_count == 0:
            if kind in _NUMBERS:
                token = "N"
            elif _IDENTIFIER_HINT in kind:
                token = "I"
            else:
                token = kind
            rows[node.start_point[0]].append(token)
        if descend and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return [(row + 1, tuple(tokens)) for row, tokens in sorted(rows.items())]


def find(src: Source, rule: str, limit: int) -> list[Candidate]:
    rows = token_lines(src)
    lines = [(n, shape) for n, shape in rows if shape and shape[0] not in _SKIP_LINES]
    shapes = [shape for _, shape in lines]
    functions = spans(src)
    # A block lies within one function (or outside all): a window across a boundary (the end of
    # one function and the start of the next, alike in every file) is no copy of anything.
    innermost = _innermost(functions)
    region = [innermost.get(n) for n, _ in lines]
    windows: dict[tuple[tuple[str, ...], ...], list[int]] = defaultdict(list)
    for i in range(len(shapes) - WINDOW + 1):
        window = tuple(shapes[i : i + WINDOW])
        if (len(set(window)) >= 2 and sum(map(len, window)) >= MIN_TOKENS
                and region[i] == region[i + WINDOW - 1]):
            windows[window].append(i)
    pairs: list[tuple[int, int, int]] = []  # (length, i, j): lines[i:i+length] repeats at j
    covered: set[tuple[int, int]] = set()
    for starts in windows.values():
        for a, i in enumerate(starts):
            for j in starts[a + 1 :]:
                if j - i < WINDOW or (i, j) in covered:
                    continue
                length = WINDOW
                while (j + length < len(shapes) and i + length < j and shapes[i + length] == shapes[j + length]
                       and region[i + length] == region[i] and region[j + length] == region[j]):
                    length += 1
                for k in range(length - WINDOW + 1):
                    covered.add((i + k, j + k))
                pairs.append((length, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    out: list[Candidate] = []
    taken: list[tuple[int, int, int]] = []
    for length, i, j in pairs:
        if len(out) >= limit:
            break
        # a shifted copy of a pair already asked about (blocks overlapping both of its blocks)
        if any(i < ti + tl and ti < i + length and j < tj + tl and tj < j + length for tl, ti, tj in taken):
            continue
        taken.append((length, i, j))
        first = (lines[i][0], lines[i + length - 1][0])
        second = (lines[j][0], lines[j + length - 1][0])
        out.append(Candidate(
            rule=rule, lines=(first, second), report=second,
            question=(
                f"Lines {second[0]}-{second[1]} have the same structure as lines {first[0]}-{first[1]}. "
                "Is the second block a repetition of the first's logic that should be extracted into one "
                "shared function (not merely similar-looking code, like a list of unrelated statements)? "
                f"If it is, report one violation of rule {rule} on line {second[0]}; if not, report none."
            ),
            key=f"{first}{second}",
            where=where(first, functions),
        ))
    for first, second in near_misses(dict(rows), functions):
        if len(out) >= limit:
            break
        if any(_inside(c.lines[0], first) and _inside(c.lines[1], second) for c in out):
            continue  # an exact pair inside them says it already
        out.append(Candidate(
            rule=rule, lines=(first, second), report=second,
            question=(
                f"Lines {second[0]}-{second[1]} are nearly the same as lines {first[0]}-{first[1]}: the same "
                "steps, with a line changed, added or removed. Is the second a repetition of the first's logic "
                "that should be one shared function (the difference a parameter), not merely similar-looking "
                f"code? If it is, report one violation of rule {rule} on line {second[0]}; if not, report none."
            ),
            key=f"near{first}{second}",
            where=where(first, functions, "nearly the same logic as"),
        ))
    return out


def near_misses(shapes: dict[int, tuple[str, ...]], functions: list[tuple[int, int, str]],
                ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Pairs of whole functions whose line shapes (``token_lines``, by line) are ``NEAR_MISS``
    alike, most alike first."""
    from difflib import SequenceMatcher

    bodies = []
    for start, end, _ in functions[:MAX_FUNCTIONS]:
        lines = [shapes[n] for n in range(start, end + 1) if shapes.get(n)]
        if len(lines) >= WINDOW and sum(map(len, lines)) >= MIN_TOKENS:
            bodies.append(((start, end), lines))
    found = []
    for i, (a_span, a) in enumerate(bodies):
        for b_span, b in bodies[i + 1 :]:
            if _overlaps(a_span, b_span):
                continue  # nested functions
            if 2 * min(len(a), len(b)) / (len(a) + len(b)) < NEAR_MISS:
                continue  # too different in length to reach the threshold
            matcher = SequenceMatcher(None, a, b, autojunk=False)
            if matcher.quick_ratio() >= NEAR_MISS and (ratio := matcher.ratio()) >= NEAR_MISS and ratio < 1.0:
                found.append((-ratio, a_span, b_span))
    return [(a, b) for _, a, b in sorted(found)]


def _inside(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return b[0] <= a[0] and a[1] <= b[1]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _innermost(functions: list[tuple[int, int, str]]) -> dict[int, tuple[int, int]]:
    """Line -> the span of the innermost function holding it (lines outside all are left out):
    outer functions first, so an inner one overwrites its lines."""
    out: dict[int, tuple[int, int]] = {}
    for start, end, _ in sorted(functions, key=lambda f: f[0] - f[1]):
        for line in range(start, end + 1):
            out[line] = (start, end)
    return out


def where(block: tuple[int, int], functions: list[tuple[int, int, str]], how: str = "same logic as") -> str:
    """'same logic as lines 5-11, in invoice_eu()': the first copy, and the innermost function
    holding it, if one does."""
    inside = [f for f in functions if f[0] <= block[0] and block[1] <= f[1]]
    name = min(inside, key=lambda f: f[1] - f[0])[2] if inside else None
    return f"{how} lines {block[0]}-{block[1]}" + (f", in {name}()" if name else "")
