"""Cross-file candidates: pairs of functions in different files that look alike.

The deep model cannot read a repository, so cheap code proposes the pairs worth a question:

- **Token shingles** (always available): each function becomes the set of its ``SHINGLE``-token
  windows, with identifiers, strings and numbers abstracted away as for clone detection
  (``simple_dry.token_lines``), so renamed copies look the same. An inverted index over the
  shingles that few functions share proposes pairs (a shingle that half the repository has is
  boilerplate, not evidence); their exact Jaccard similarity decides.
- **Embeddings** (Level 1, when a backend gives them): one vector per function; pairs by cosine
  similarity. ``tinyarms.levels.embed`` fetches the vectors; this module only pairs them.

A rule takes the pairs whose similarity falls in its band (``params``: ``min_jaccard`` /
``max_jaccard``, ``min_cosine`` / ``max_cosine``): near-copies for ``semantic-duplication``, a
looser likeness for ``cross-file-patterns``, so the two rules do not ask about the same pairs.
Counts are bounded: ``limit`` pairs per rule, and a function takes part in at most
``PER_FUNCTION`` of them, so one generic helper cannot use up the scan's questions.

Each pair becomes one question about the later of the two functions (by path), showing both with
their real line numbers; a finding lands on that function and names the other place.
"""

from __future__ import annotations

import math
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tinyarms.candidates import Candidate, Excerpt
from tinyarms.candidates import functions as function_spans
from tinyarms.candidates.simple_dry import token_lines
from tinyarms.source import Source

SHINGLE = 5  # tokens per shingle
MIN_LINES = 4
MIN_TOKENS = 40  # smaller functions look alike whatever they do
MAX_SHOWN = 60  # lines of each function shown to the model
PER_FUNCTION = 2
MIN_MAX_DF = 10  # the boilerplate bound of a small index (see Index.max_df)
MATRIX_ROWS = 512  # bounded memory: rows of the similarity matrix computed at once
_ROUNDING = 1e-6  # float error in a dot product: a pair at the threshold stays in
MAX_EMBED_CHARS = 4000

# Similarity bands when a rule's params do not say: (low, high), high exclusive unless 1.0.
DEFAULT_JACCARD = (0.5, 1.0)
DEFAULT_COSINE = (0.9, 1.0)


@dataclass(slots=True)
class Function:
    src: Source
    rel: str
    start: int
    end: int
    name: str
    shingles: frozenset[int]

    def text(self) -> str:
        return "\n".join(self.src.lines[self.start - 1 : self.end])


@dataclass(slots=True, frozen=True)
class Pair:
    other: Function  # shown first; the finding names it
    own: Function  # where a finding lands
    similarity: float


def extract(src: Source) -> list[Function]:
    """The outermost functions of a file that are big enough to compare, with their shingles."""
    rows = token_lines(src)
    if not rows:
        return []
    numbers = [n for n, _ in rows]
    out: list[Function] = []
    covered: list[tuple[int, int]] = []
    for start, end, name in function_spans.spans(src):
        if end - start + 1 < MIN_LINES or any(s <= start and end <= e for s, e in covered):
            continue
        covered.append((start, end))
        tokens = [t for _, shape in rows[bisect_left(numbers, start) : bisect_right(numbers, end)] for t in shape]
        if len(tokens) < MIN_TOKENS:
            continue
        out.append(Function(src, src.rel, start, end, name, shingles(tokens)))
    return out


def shingles(tokens: Sequence[str]) -> frozenset[int]:
    # crc32, not hash(): str hashes change with every process, and the pairs (so the prompts, so
    # the cache keys) must be the same in every scan of unchanged code.
    return frozenset(
        zlib.crc32("\x1f".join(tokens[i : i + SHINGLE]).encode()) for i in range(len(tokens) - SHINGLE + 1)
    )


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


class Index:
    """Every comparable function of a set of files, and the pairs between files."""

    def __init__(self, sources: Iterable[Source]):
        self.functions: list[Function] = []
        for src in sorted(sources, key=lambda s: s.rel):
            self.functions += extract(src)
        self._jaccard: list[tuple[float, int, int]] | None = None

    def max_df(self) -> int:
        """A shingle shared by more functions than this is boilerplate, not evidence."""
        return max(MIN_MAX_DF, int(2 * math.sqrt(len(self.functions))))

    def jaccard_pairs(self) -> list[tuple[float, int, int]]:
        """(similarity, i, j) for every pair of functions in different files that share a rare
        shingle, most similar first; i < j."""
        if self._jaccard is None:
            posting: dict[int, list[int]] = defaultdict(list)
            for i, fn in enumerate(self.functions):
                for s in fn.shingles:
                    posting[s].append(i)
            limit = self.max_df()
            seen: set[tuple[int, int]] = set()
            for ids in posting.values():
                if len(ids) < 2 or len(ids) > limit:
                    continue
                for x, i in enumerate(ids):
                    for j in ids[x + 1 :]:
                        if self.functions[i].rel != self.functions[j].rel:
                            seen.add((i, j))
            scored = []
            for i, j in seen:
                a, b = self.functions[i].shingles, self.functions[j].shingles
                scored.append((jaccard(a, b), len(a & b), i, j))
            # Equally alike: the pair that shares more code first (two 3-line getters are alike too).
            self._jaccard = [(sim, i, j) for sim, _, i, j in sorted(scored, key=lambda p: (-p[0], -p[1], p[2], p[3]))]
        return self._jaccard

    def cosine_pairs(self, vectors: dict[int, list[float]], low: float) -> list[tuple[float, int, int]]:
        """(cosine, i, j) for pairs in different files at or above ``low``, most similar first."""
        ids = sorted(vectors)
        if len(ids) < 2:
            return []
        import numpy as np

        raw = np.asarray([vectors[i] for i in ids], dtype=np.float32)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        matrix = raw / np.where(norms == 0, 1, norms)
        file_ids: dict[str, int] = {}
        files = np.asarray([file_ids.setdefault(self.functions[i].rel, len(file_ids)) for i in ids])
        out: list[tuple[float, int, int]] = []
        for row in range(0, len(ids), MATRIX_ROWS):
            sims = matrix[row : row + MATRIX_ROWS] @ matrix.T
            for r, c in zip(*np.nonzero(sims >= low - _ROUNDING), strict=True):
                a, b = row + int(r), int(c)
                if a < b and files[a] != files[b]:
                    out.append((round(float(sims[r, c]), ndigits=4), ids[a], ids[b]))
        return sorted(out, key=lambda p: (-p[0], p[1], p[2]))

    def pairs(self, scored: list[tuple[float, int, int]], band: tuple[float, float], limit: int,
              files: set[str] | None = None) -> list[Pair]:
        """The best pairs in ``band``, at most ``limit``, each function in at most ``PER_FUNCTION``."""
        low, high = band
        uses: Counter[int] = Counter()
        out: list[Pair] = []
        for similarity, i, j in scored:
            if similarity < low:
                break
            if similarity >= high and high < 1.0:
                continue
            a, b = self.functions[i], self.functions[j]
            if files is not None and (a.rel not in files or b.rel not in files):
                continue
            if uses[i] >= PER_FUNCTION or uses[j] >= PER_FUNCTION:
                continue
            uses[i] += 1
            uses[j] += 1
            other, own = (a, b) if (a.rel, a.start) <= (b.rel, b.start) else (b, a)
            out.append(Pair(other, own, similarity))
            if len(out) >= limit:
                break
        return out


def band(params: dict[str, Any], measure: str) -> tuple[float, float]:
    low, high = DEFAULT_COSINE if measure == "cosine" else DEFAULT_JACCARD
    return float(params.get(f"min_{measure}", low)), float(params.get(f"max_{measure}", high))


_QUESTIONS = {
    "semantic-duplication": (
        "Do the two functions do the same thing, so that one could replace the other (not merely a "
        "similar shape doing different work)? If they do, report one violation of rule {rule} on line "
        "{line}; if they do different things, report none."
    ),
    "cross-file-patterns": (
        "Do the two functions solve the same task (the same pattern, such as a retry loop, a formatter or "
        "a parser) in two different ways, so that one implementation should be reused? If they do, report "
        "one violation of rule {rule} on line {line}; otherwise report none."
    ),
}
_GENERIC = (
    "Do these two functions together break rule {rule}? If they clearly do, report one violation of "
    "rule {rule} on line {line}; otherwise report none."
)


def candidate(pair: Pair, rule: str, how: str) -> Candidate:
    own, other = pair.own, pair.other
    last = min(own.end, own.start + MAX_SHOWN - 1)
    other_last = min(other.end, other.start + MAX_SHOWN - 1)
    excerpt = Excerpt(other.rel, other.start, tuple(other.src.lines[other.start - 1 : other_last]))
    intro = (
        f"Function {own.name} ({own.rel} lines {own.start}-{own.end}) and function {other.name} "
        f"({other.rel} lines {other.start}-{other.end}) look alike ({how}). "
    )
    question = intro + _QUESTIONS.get(rule, _GENERIC).format(rule=rule, line=own.start)
    return Candidate(
        rule=rule, lines=((own.start, last),), report=(own.start, last), question=question,
        key=f"{other.rel}:{other.start}-{other.end}|{own.start}-{own.end}", other=excerpt,
    )


def find(sources: Iterable[Source], rule: str, params: dict[str, Any], limit: int,
         index: Index | None = None, vectors: dict[int, list[float]] | None = None) -> list[tuple[Source, Candidate]]:
    """(the file a finding would land in, the question) for the rule's pairs among ``sources``.
    ``vectors`` (function index -> embedding) switches from shingles to cosine similarity."""
    sources = list(sources)
    index = index or Index(sources)
    files = {s.rel for s in sources}
    if vectors:
        low, high = band(params, "cosine")
        found = index.pairs(index.cosine_pairs(vectors, low), (low, high), limit, files)
        how = "similar embeddings"
    else:
        found = index.pairs(index.jaccard_pairs(), band(params, "jaccard"), limit, files)
        how = "similar token structure"
    return [(p.own.src, candidate(p, rule, f"{how}, similarity {p.similarity:.2f}")) for p in found]
