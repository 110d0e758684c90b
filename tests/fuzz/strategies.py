"""Hypothesis strategies shared by the fuzz tests: hostile text, JSON values, and socket requests
built by mutating valid ones (pure noise is refused at the first check; a mutated valid request
gets past it and reaches the code behind)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tinyarms import protocol

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
# What breaks parsers and terminals: controls, line separators, bidi overrides, BOM, NUL.
NASTY_CHARS = st.sampled_from(
    ["\x00", "\r", "\n", "\r\n", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029",
     "\u202e", "\ufeff", "\ufffd", "é", "漢", "🦀", "\\", '"', "%", ":", ",", "::", "{", "}", "[", "]"])
TEXT = (st.text(st.characters() | SURROGATES, max_size=40)
        | st.lists(NASTY_CHARS | st.text(max_size=5), max_size=8).map("".join))

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30, max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True) | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def deeply_nested(depth: int) -> bytes:
    return b'{"v":1,"op":"ping","id":' + b"[" * depth + b"]" * depth + b"}"


def valid_requests(repo: str) -> dict[str, dict[str, Any]]:
    """One valid request per op, all aimed at ``repo`` (a fuzzed request must never walk ``/``)."""
    return {
        "ping": {"v": 1, "op": "ping", "id": 1},
        "status": {"v": 1, "op": "status"},
        "reload": {"v": 1, "op": "reload"},
        "lint": {"v": 1, "op": "lint", "cwd": repo, "paths": ["bad.ts"], "format": "json",
                 "env": {"TINYARMS_MODELS__BACKEND": "none"}},
        "lint-files": {"v": 1, "op": "lint", "cwd": repo, "root": repo, "env": {"TINYARMS_MODELS__BACKEND": "none"},
                       "files": [{"path": "bad.ts", "content_b64": "ZXhwb3J0IGNvbnN0IGMgPSAiI2ZmMDAwMCI7Cg=="}]},
        "scan-status": {"v": 1, "op": "scan-status", "scan": "0123456789ab"},
    }


# Values that stay inside the test repository when they land on a path field.
_SAFE_NAMES = st.sampled_from(["bad.ts", "clean.ts", "missing.ts", "sub", "bad.ts\x00", "b\udcffd.ts", "ünï.ts",
                               "a b.ts", "%s", "{}", "*", "[", "-", "~"])


def _mutate(request: dict[str, Any], draw: Any, repo: str) -> dict[str, Any]:
    out = dict(request)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "delete", "add", "files", "paths"]))
        if action == "replace" and out:
            key = draw(st.sampled_from(sorted(out)))
            if key in ("cwd", "root"):
                out[key] = draw(st.sampled_from([repo, repo + "/", repo + "/sub", "relative", "", 5, None]))
            else:
                out[key] = draw(JSON_VALUES)
        elif action == "delete" and out:
            out.pop(draw(st.sampled_from(sorted(out))))
        elif action == "add":
            out[draw(TEXT)] = draw(JSON_VALUES)
        elif action == "paths" and out.get("op") == "lint":
            out["paths"] = draw(st.lists(_SAFE_NAMES | st.text("abc\x00\udcff", min_size=1, max_size=5), max_size=3))
        elif action == "files" and out.get("op") == "lint":
            out["root"] = repo
            out["files"] = draw(st.lists(st.fixed_dictionaries(
                {"path": TEXT | _SAFE_NAMES},
                optional={"content_b64": st.none() | TEXT | st.binary(max_size=30).map(_b64),
                          "size": JSON_VALUES, "changed": JSON_VALUES},
            ), max_size=3))
    return out


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


@st.composite
def mutated_requests(draw: Any, repo: str) -> dict[str, Any]:
    base = draw(st.sampled_from(sorted(valid_requests(repo).items())))[1]
    return _mutate(base, draw, repo)


def frames(repo: str) -> st.SearchStrategy[bytes]:
    """One line as a client might send it: noise, a valid request cut short, nested too deep,
    wrong types, or a mutated valid request."""
    encoded = mutated_requests(repo).map(_encode_any)
    return st.one_of(
        st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"") + b"\n"),
        st.builds(lambda raw, cut: raw[:cut].rstrip(b"\n") + b"\n", encoded, st.integers(0, 200)),
        st.integers(900, 200_000).map(lambda depth: deeply_nested(depth) + b"\n"),
        JSON_VALUES.map(_encode_any),
        encoded,
    )


def _encode_any(value: Any) -> bytes:
    """Any JSON value as one frame, even one ``protocol.encode`` would not send (NaN, a list)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass") + b"\n"


ERROR_CODES = {protocol.BAD_REQUEST, protocol.TOO_LARGE, protocol.CONFIG_ERROR, protocol.UNKNOWN_OP, protocol.BUSY}


# Source text that rules care about, glued together with hostile bytes.
SOURCE_PIECES = st.sampled_from([
    b'const c = "#ff0000";', b"x = 4500", b"let n = 3.14159;", b"// tinyarms: ignore[magic-numbers]",
    b"# tinyarms: ignore-file[hardcoded-colors]", b"/* tinyarms: ignore */", b"import a from '../../../x';",
    b"from ... import y", b"\xef\xbb\xbf", b"\r\n", b"\r", b"\n", b"\x00", b"\xff\xfe", b"\xc3", b"(" * 50,
    b"{", b"}", b"`${", b"'", b'"', b"\t", b"\xe2\x80\xa8", b"color: #abc;", b"see line 12 of foo.py",
])
SOURCES = st.lists(SOURCE_PIECES | st.binary(max_size=20), max_size=25).map(b"".join)

_ENV_KEYS = st.sampled_from([
    "TINYARMS_FAIL_ON", "TINYARMS_BUDGET", "TINYARMS_EXCLUDE", "TINYARMS_MAX_FILE_BYTES", "TINYARMS_SKILLS",
    "TINYARMS_RULES__MAGIC_NUMBERS__PARAMS__ALLOW", "TINYARMS_RULES__FILE_SIZE__ENABLED", "TINYARMS_RULES",
    "TINYARMS_RULES__HARDCODED_COLORS__FILES", "TINYARMS_MODELS", "TINYARMS_", "TINYARMS___", "TINYARMS_CACHE",
])
_ENV_VALUES = TEXT | st.sampled_from(["[", "{a: [", "!!python/object:os.system", "&a [*a]", "- - -", "1e999",
                                      "[!]", '["!"]', '["[z-a]"]', "null", "~", "[" * 5000, "0x10"])
_RULE_IDS = st.sampled_from(["magic-numbers", "hardcoded-colors", "file-size", "simple-dry", "nope"]) | TEXT


@st.composite
def typed_lint_requests(draw: Any, repo: str) -> dict[str, Any]:
    """Lint requests of the right shape with hostile values: they get past validation, so what
    they reach is the linter, the config loader and the renderers."""
    request: dict[str, Any] = {"v": 1, "op": "lint", "cwd": repo}
    if draw(st.booleans()):
        request["root"] = repo
        request["files"] = draw(st.lists(st.fixed_dictionaries({
            "path": st.sampled_from(["a.ts", "b.py", "c.css", "d.tsx", "e.js", "x.txt", "../x.ts"]) | TEXT,
            "content_b64": st.none() | SOURCES.map(_b64),
            "size": st.none() | st.integers(0, 10**12),
            "changed": st.none() | st.lists(st.tuples(st.integers(-5, 10**6), st.integers(-5, 10**6)), max_size=4),
        }), max_size=4))
    else:
        request["paths"] = draw(st.lists(_SAFE_NAMES, max_size=3))
    # One request in four also gets hostile settings (unknown names, broken env config): those
    # must be config errors; the rest get past the settings to the files.
    hostile = draw(st.integers(0, 3)) == 0
    rule_ids = _RULE_IDS if hostile else st.sampled_from(["magic-numbers", "hardcoded-colors", "file-size"])
    skills = st.sampled_from(["code-linting-fast", "code-linting-deep"]) | (TEXT if hostile else st.nothing())
    optional = {
        "skill": st.none() | st.lists(skills, max_size=2),
        "select": st.none() | st.lists(rule_ids, max_size=3),
        "ignore": st.none() | st.lists(rule_ids, max_size=3),
        "fail_on": st.sampled_from(["error", "warning", "never"]),
        "budget": st.floats(0.001, 3600),
        "format": st.sampled_from(["text", "json", "sarif", "github"]),
        "color": st.booleans(), "report_unused": st.booleans(), "no_cache": st.booleans(),
        "baseline": st.sampled_from(["bad.ts", "missing.json", "sub", "\x00"]) if hostile else st.nothing(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()) and not strategy.is_empty:
            request[key] = draw(strategy)
    env = draw(st.dictionaries(_ENV_KEYS, _ENV_VALUES, max_size=2)) if hostile else {}
    request["env"] = {**env, "TINYARMS_MODELS__BACKEND": "none"}
    return request
