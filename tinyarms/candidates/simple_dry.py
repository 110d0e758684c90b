"""simple-dry candidates: pairs of similar blocks of at least four lines within one file.

Clone detection over normalised tokens (identifiers, strings and numbers abstracted away, as
CPD and Simian do): each code line becomes its token shape, windows of four lines are hashed,
equal windows at non-overlapping places are extended into the longest matching blocks.

Near-miss copies (Type-3 clones: a line that gained a term, a line added or removed) are found
by aligning the line shapes of two functions (``difflib``): runs of equal lines separated by at
most ``GAP`` differing lines on either side form one block, and a block of at least ``WINDOW``
equal lines that is at least ``NEAR_MISS`` alike (2·equal lines / all its lines: one changed line
in five is 0.8) is a pair, unless an exact pair covers it already. So a whole function copied
with a line changed is found, and so is a block copied into another function (inlined, or
wrapped in a guard). Only functions that share a run of two equal line shapes are aligned.

Most pairs of like shape are no copy of logic (on the corpus's train split: 131 pairs, 39 of
them labelled copies), so a pair is proposed only when it is worth a question:

- **one finding per copy**: a pair whose later block overlaps a block already proposed is left
  out (a copy found again against a third place), and so is a second pair between the same two
  functions (the pieces of one copied function around its changed lines);
- **logic**: each block does at least ``MIN_LOGIC`` things: calls, branches, loops, operators,
  markup elements (``_LOGIC``). Runs of declarations, plain assignments and type members have the
  shape of a copy and nothing to extract, and a guard of two or three steps (a re-raise clause,
  the choice of an output handle) is an idiom that reads better in place than as a call;
- **few parameters**: on their lines of equal shape the blocks hold at most ``DIFFERENCES``
  distinct replacements per line (``1.2`` -> ``1.08``, ``"email"`` -> ``"contact"``): each would
  be a parameter of the shared function. Names renamed consistently (``total`` -> ``amount``
  wherever it occurs, and nothing else -> ``amount``) are one copy's own names, not parameters,
  and a function's own name and its parameter list are its signature: neither counts. A table
  of cases has a new literal or name on nearly every line.

On the train split these took the finder from 131 candidates (39 real: precision 0.30, recall
0.83) to 85 (0.46 / 0.83): one per copy 131 -> 105, logic -> 91, few parameters -> 85; later the
floor of four things (``MIN_LOGIC``) 101 -> 61 (0.49 / 0.88 -> 0.70 / 0.77) on the larger split.
docs/evaluation.md has the held-out figures. Requiring shared names as well would drop every
copy renamed throughout: the rule's own "different names".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from tinyarms.candidates import Candidate
from tinyarms.candidates.functions import FUNCTION_NODES, spans
from tinyarms.source import Source

if TYPE_CHECKING:
    from difflib import SequenceMatcher

    from tree_sitter import Node

WINDOW = 4
MIN_TOKENS = 16
MIN_SHAPES = 3  # distinct line shapes a near-miss block holds at least
NEAR_MISS = 0.8  # similarity of two blocks' line shapes that makes them a near-miss pair
GAP = 2  # differing lines a near-miss block may hold between two runs of equal ones, on either side
MAX_FUNCTIONS = 200  # functions per file looked at for near misses (a bound on the work)
MAX_ALIGNMENTS = 400  # function pairs aligned per file, those sharing the most runs first (a bound on the work)
_COMMON = 20  # a run of two line shapes held by more functions than this leads to no pair
# Distinct replacements (a token of one block where the other has another, a consistent renaming
# of names aside) per line a pair may hold at most: each would be a parameter of the shared
# function. One in two lines: a copy with its messages or constants changed stays a copy.
DIFFERENCES = 0.5
MIN_LOGIC = 4  # ``_LOGIC`` nodes each block holds at least; train, 47 copies: 1..5 kept 41, 40, 38, 35, 26
# Nodes that make a block logic rather than a list: calls, branches, loops, operators (Python,
# JS/TS), and markup elements (JSX), each a call of its component.
_LOGIC = frozenset({
    "jsx_element", "jsx_self_closing_element",
    "call", "call_expression", "new_expression", "await", "await_expression", "yield", "yield_expression",
    "if_statement", "for_statement", "for_in_statement", "while_statement", "do_statement", "try_statement",
    "with_statement", "switch_statement", "raise_statement", "throw_statement", "return_statement",
    "boolean_operator", "comparison_operator", "binary_operator", "not_operator", "binary_expression",
    "augmented_assignment", "augmented_assignment_expression", "update_expression",
    "conditional_expression", "ternary_expression",
})
_IDENTIFIER_HINT = "identifier"
_NUMBERS = frozenset({"integer", "float", "number"})
_STRINGS = frozenset({"string", "template_string", "concatenated_string"})
_PARAMETERS = frozenset({"parameters", "formal_parameters", "lambda_parameters", "type_parameters"})
_SKIP_LINES = frozenset({"import", "from", "export", "#"})  # import blocks look alike by nature


@dataclass(slots=True)
class _Lines:
    """What each code line holds (1-based line numbers), comments and docstrings left out."""

    shapes: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))  # token shapes
    texts: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))  # the tokens themselves
    logic: Counter[int] = field(default_factory=Counter)  # ``_LOGIC`` nodes starting on it

    def code(self, block: tuple[int, int]) -> list[int]:
        return [n for n in range(block[0], block[1] + 1) if self.shapes.get(n)]

    def replacements(self, first: tuple[int, int], second: tuple[int, int]) -> tuple[int, int]:
        """The distinct replacements between the blocks' lines of equal shape, aligned as the near
        misses are (``difflib``), less a consistent renaming of names; and the code lines of the
        shorter block."""
        from difflib import SequenceMatcher

        a, b = self.code(first), self.code(second)
        matcher = SequenceMatcher(None, [tuple(self.shapes[n]) for n in a], [tuple(self.shapes[n]) for n in b],
                                  autojunk=False)
        replaced = {(shape == "I", x, y) for m in matcher.get_matching_blocks() for k in range(m.size)
                    for shape, x, y in zip(self.shapes[a[m.a + k]], self.texts[a[m.a + k]], self.texts[b[m.b + k]],
                                           strict=True) if x != y}
        renamed_to = Counter(x for name, x, _ in replaced if name)
        renamed_from = Counter(y for name, _, y in replaced if name)
        # A name replaced by one other name, itself replacing nothing else: the copy's own name.
        renamed = sum(1 for name, x, y in replaced if name and renamed_to[x] == renamed_from[y] == 1)
        return len(replaced) - renamed, min(len(a), len(b))

    def logic_in(self, block: tuple[int, int]) -> int:
        return sum(self.logic[n] for n in range(block[0], block[1] + 1))


def _scan(src: Source) -> _Lines:
    out = _Lines()
    tree = src.tree
    if tree is None:
        return out
    data = src.data
    cursor = tree.walk()
    while True:
        node = cursor.node
        assert node is not None  # a cursor from tree.walk() always stands on a node
        kind = node.type
        row = node.start_point[0] + 1
        descend = True
        if kind == "comment" or (kind in _STRINGS and _is_docstring(node)):
            descend = False  # a docstring is a comment: a copy starts at its code
        elif kind in _PARAMETERS:
            # A signature is no logic: parameter lists alike (overloads, the same options taken by
            # several functions) are one token, on the line the list opens, and so is a function's
            # own name (below): two functions differ in name and parameters whatever they do.
            out.shapes[row].append("P")
            out.texts[row].append(b"P")
            descend = False
        elif kind in _STRINGS:
            out.shapes[row].append("S")
            out.texts[row].append(data[node.start_byte : node.end_byte])
            descend = False
        elif node.child_count == 0:
            text = data[node.start_byte : node.end_byte]
            if kind in _NUMBERS:
                token = "N"
            elif _IDENTIFIER_HINT in kind:
                token = "I"
                if _is_function_name(node):
                    text = b"F"
            else:
                token = kind
            out.shapes[row].append(token)
            out.texts[row].append(text)
        elif kind in _LOGIC:
            out.logic[row] += 1
        if descend and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return out


def token_lines(src: Source) -> list[tuple[int, tuple[str, ...]]]:
    """(1-based line, token shape) for every line with code, comments left out."""
    return _rows(_scan(src))


def _rows(scan: _Lines) -> list[tuple[int, tuple[str, ...]]]:
    return [(row, tuple(tokens)) for row, tokens in sorted(scan.shapes.items())]


def find(src: Source, rule: str, limit: int, min_logic: int = MIN_LOGIC) -> list[Candidate]:
    scan = _scan(src)
    rows = _rows(scan)
    lines = [(n, shape) for n, shape in rows if shape and shape[0] not in _SKIP_LINES]
    shapes = [shape for _, shape in lines]
    functions = spans(src)
    # A block lies within one function, or outside all within one top-level statement: a window
    # across a boundary (the end of one function or declaration and the start of the next, alike
    # in every file) is no copy of anything.
    innermost = _innermost(functions)
    outside = _top_level_statements(src)
    region = [innermost.get(n) or outside.get(n) for n, _ in lines]
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
    asked = _Asked(scan, functions, min_logic)
    taken: list[tuple[int, int, int]] = []
    exact: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for length, i, j in pairs:
        if len(out) >= limit:
            break
        # a shifted copy of a pair already asked about (blocks overlapping both of its blocks)
        if any(i < ti + tl and ti < i + length and j < tj + tl and tj < j + length for tl, ti, tj in taken):
            continue
        taken.append((length, i, j))
        first = (lines[i][0], lines[i + length - 1][0])
        second = (lines[j][0], lines[j + length - 1][0])
        exact.append((first, second))
        if asked.worth(first, second):
            out.append(_pair(rule, first, second, functions, near=False))
    for first, second in near_misses(dict(rows), functions):
        if len(out) >= limit:
            break
        if any(_inside(a, first) and _inside(b, second) for a, b in exact):
            continue  # an exact pair inside them says it already (whether worth asking or not)
        if asked.worth(first, second):
            out.append(_pair(rule, first, second, functions, near=True))
    return out


class _Asked:
    """The pairs proposed so far in a file, and whether one more is worth a question (the
    module's docstring says why each test)."""

    def __init__(self, scan: _Lines, functions: list[tuple[int, int, str]], min_logic: int) -> None:
        self.scan = scan
        self.min_logic = min_logic
        self.functions = functions
        self.reported: list[tuple[int, int]] = []
        self.function_pairs: set[tuple[tuple[int, int], tuple[int, int]] | None] = set()

    def worth(self, first: tuple[int, int], second: tuple[int, int]) -> bool:
        if any(_overlaps(second, block) for block in self.reported):
            return False  # that copy has its question
        a, b = _holder(first, self.functions), _holder(second, self.functions)
        between = (a[:2], b[:2]) if a and b and a != b else None  # two functions: one question about them
        if between in self.function_pairs:
            return False  # another piece of a copied function already asked about
        scan = self.scan
        if min(scan.logic_in(first), scan.logic_in(second)) < self.min_logic:
            return False
        replaced, lines = scan.replacements(first, second)
        if replaced > DIFFERENCES * lines:
            return False
        self.reported.append(second)
        if between is not None:
            self.function_pairs.add(between)
        return True


def _pair(rule: str, first: tuple[int, int], second: tuple[int, int], functions: list[tuple[int, int, str]],
          *, near: bool) -> Candidate:
    """The question about a pair of blocks: the second an exact-shape copy of the first, or a
    near miss (a line changed, added or removed)."""
    if near:
        claim = (f"Lines {second[0]}-{second[1]} are nearly the same as lines {first[0]}-{first[1]}: the same "
                 "steps, with a line changed, added or removed. Is the second a repetition of the first's logic "
                 "that should be one shared function (the difference a parameter), not merely similar-looking "
                 "code?")
    else:
        claim = (f"Lines {second[0]}-{second[1]} have the same structure as lines {first[0]}-{first[1]}. "
                 "Is the second block a repetition of the first's logic that should be extracted into one "
                 "shared function (not merely similar-looking code, like a list of unrelated statements)?")
    return Candidate(
        rule=rule, lines=(first, second), report=second,
        question=f"{claim} If it is, report one violation of rule {rule} on line {second[0]}; if not, report none.",
        key=f"{'near' if near else ''}{first}{second}",
        where=where(first, functions, "nearly the same logic as" if near else "same logic as"),
    )


def near_misses(shapes: dict[int, tuple[str, ...]], functions: list[tuple[int, int, str]],
                ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Pairs of blocks in two functions whose line shapes (``token_lines``, by line) are
    ``NEAR_MISS`` alike with a line or two changed, added or removed; largest first."""
    from difflib import SequenceMatcher

    bodies: list[tuple[tuple[int, int], list[int], list[tuple[str, ...]]]] = []
    for start, end, _ in functions[:MAX_FUNCTIONS]:
        numbers = [n for n in range(start, end + 1) if shapes.get(n) and shapes[n][0] not in _SKIP_LINES]
        lines = [shapes[n] for n in numbers]
        if len(lines) >= WINDOW and sum(map(len, lines)) >= MIN_TOKENS:
            bodies.append(((start, end), numbers, lines))
    # Only functions sharing a run of two equal line shapes can hold a block worth aligning.
    holders: dict[tuple[tuple[str, ...], tuple[str, ...]], set[int]] = defaultdict(set)
    for k, (_, _, lines) in enumerate(bodies):
        for pair in pairwise(lines):
            holders[pair].add(k)
    shared: Counter[tuple[int, int]] = Counter()
    for ks in holders.values():
        if len(ks) <= _COMMON:  # a run in every other function (`return x`, a closing brace) says nothing
            shared.update((a, b) for a in ks for b in ks if a < b and not _overlaps(bodies[a][0], bodies[b][0]))
    found = []
    for (a, b), _ in shared.most_common(MAX_ALIGNMENTS):
        (_, a_lines, a_shapes), (_, b_lines, b_shapes) = bodies[a], bodies[b]
        for chain in _chains(SequenceMatcher(None, a_shapes, b_shapes, autojunk=False)):
            best = _best_block(chain, a_shapes)
            if best is not None:
                equal, (i0, i1), (j0, j1) = best
                found.append((-equal, (a_lines[i0], a_lines[i1 - 1]), (b_lines[j0], b_lines[j1 - 1])))
    return [(first, second) for _, first, second in sorted(found)]


def _chains(matcher: SequenceMatcher[tuple[str, ...]]) -> list[list[tuple[int, int, int]]]:
    """Runs of equal lines (a start, b start, length), chained where the gap between two runs is
    at most ``GAP`` lines on each side."""
    chains: list[list[tuple[int, int, int]]] = []
    for m in matcher.get_matching_blocks():
        if m.size == 0:
            continue
        last = chains[-1][-1] if chains else None
        if last is not None and m.a - (last[0] + last[2]) <= GAP and m.b - (last[1] + last[2]) <= GAP:
            chains[-1].append((m.a, m.b, m.size))
        else:
            chains.append([(m.a, m.b, m.size)])
    return chains


def _best_block(chain: list[tuple[int, int, int]], a_shapes: list[tuple[str, ...]],
                ) -> tuple[int, tuple[int, int], tuple[int, int]] | None:
    """The contiguous part of a chain with the most equal lines that is a near miss: at least
    ``WINDOW`` equal lines, ``NEAR_MISS`` alike, not an exact copy (the window pairs' business),
    and logic rather than a list of like statements. (equal lines, a span, b span), ends exclusive."""
    best = None
    for first in range(len(chain)):
        for last in range(first + 1, len(chain)):  # at least two runs: one gap, so not exact
            i0, j0 = chain[first][0], chain[first][1]
            i1, j1 = chain[last][0] + chain[last][2], chain[last][1] + chain[last][2]
            equal = sum(run[2] for run in chain[first : last + 1])
            if equal < WINDOW or 2 * equal / ((i1 - i0) + (j1 - j0)) < NEAR_MISS:
                continue
            block = a_shapes[i0:i1]
            if len(set(block)) < MIN_SHAPES or sum(map(len, block)) < MIN_TOKENS:
                continue
            if best is None or equal > best[0]:
                best = (equal, (i0, i1), (j0, j1))
    return best


def _is_function_name(node: Node) -> bool:
    parent = node.parent
    return parent is not None and parent.type in FUNCTION_NODES and parent.child_by_field_name("name") == node


def _is_docstring(node: Node) -> bool:
    parent = node.parent
    return parent is not None and parent.type == "expression_statement" and parent.named_child_count == 1


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


def _top_level_statements(src: Source) -> dict[int, tuple[int, int]]:
    """Line -> the span of the top-level statement holding it (1-based lines)."""
    tree = src.tree
    out: dict[int, tuple[int, int]] = {}
    if tree is None:
        return out
    for node in tree.root_node.named_children:
        span = (node.start_point[0] + 1, node.end_point[0] + 1)
        for line in range(span[0], span[1] + 1):
            out[line] = span
    return out


def where(block: tuple[int, int], functions: list[tuple[int, int, str]], how: str = "same logic as") -> str:
    """'same logic as lines 5-11, in invoice_eu()': the first copy, and the innermost function
    holding it, if one does."""
    holder = _holder(block, functions)
    return f"{how} lines {block[0]}-{block[1]}" + (f", in {holder[2]}()" if holder else "")


def _holder(block: tuple[int, int], functions: list[tuple[int, int, str]]) -> tuple[int, int, str] | None:
    """The innermost function holding all of ``block``, if one does."""
    inside = [f for f in functions if f[0] <= block[0] and block[1] <= f[1]]
    return min(inside, key=lambda f: f[1] - f[0]) if inside else None
