"""What a model is asked to return, and how its untrusted answer is checked.

The answer shape is DESIGN.md's: ``{"violations": [{"rule", "line", "message", "suggestion",
"confidence"}]}``, requested as a JSON schema with ``maxItems``/``maxLength`` bounds so a small
model cannot run on until ``max_tokens`` cuts the JSON in half. Whatever comes back is data:
parsed leniently (llama.cpp's grammar lets raw control characters into strings), validated,
and trimmed to the rules asked about and the lines shown. Nothing in it is ever executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_VIOLATIONS = 4
MAX_TEXT = 160


def schema(rules: list[str], max_items: int = MAX_VIOLATIONS) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "violations": {
                "type": "array",
                "maxItems": max_items,
                "items": {
                    "type": "object",
                    "properties": {
                        "rule": {"type": "string", "enum": rules},
                        "line": {"type": "integer", "minimum": 1},
                        "message": {"type": "string", "maxLength": MAX_TEXT},
                        "suggestion": {"type": "string", "maxLength": MAX_TEXT},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["rule", "line", "message", "suggestion", "confidence"],
                },
            },
        },
        "required": ["violations"],
    }


class _Violation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule: str
    line: int
    message: str = Field(max_length=10_000)
    suggestion: str | None = Field(None, max_length=10_000)
    confidence: float = 0.5


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    violations: list[_Violation] = Field(max_length=1000)


@dataclass(slots=True)
class Violation:
    rule: str
    line: int
    message: str
    suggestion: str | None
    confidence: float


class BadAnswer(ValueError):
    """The answer is not JSON of the asked shape."""


def parse(text: str, rules: set[str], lines: set[int]) -> tuple[list[Violation], int]:
    """Violations for the asked ``rules`` on the shown ``lines``, and how many were dropped."""
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise BadAnswer(f"not JSON ({exc.msg} at character {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits; nesting too deep
        raise BadAnswer(f"not JSON tinyarms accepts ({type(exc).__name__}: {str(exc)[:80]})") from None
    try:
        answer = _Answer.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise BadAnswer(f"wrong shape: {where}: {first['msg']}") from None
    kept: list[Violation] = []
    seen: set[tuple[str, int]] = set()
    for v in answer.violations:
        if v.rule not in rules or v.line not in lines or (v.rule, v.line) in seen:
            continue
        seen.add((v.rule, v.line))
        confidence = v.confidence if v.confidence == v.confidence else 0.0  # NaN
        kept.append(Violation(
            v.rule, v.line, _clean(v.message) or "possible violation", _clean(v.suggestion) or None,
            min(1.0, max(0.0, confidence)),
        ))
    return kept, len(answer.violations) - len(kept)


def _clean(text: str | None) -> str:
    """One line of printable text, bounded: model text ends up in terminals and SARIF files."""
    if not text:
        return ""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat[:MAX_TEXT]


def schema_error(data: Any, schema: dict[str, Any], where: str = "answer") -> str | None:
    """Where ``data`` breaks ``schema`` (the JSON Schema keywords ``schema()`` uses), or None.

    ``parse`` is lenient on purpose (it keeps what it can use); this is the strict check that
    ``tinyarms bench`` counts, so a model that returns usable but off-schema JSON shows up.
    """
    kind = schema.get("type")
    checks: dict[str, type | tuple[type, ...]] = {
        "object": dict, "array": list, "string": str, "number": (int, float), "integer": int}
    if kind == "integer" and isinstance(data, float) and data.is_integer():
        pass  # JSON Schema counts 3.0 as an integer
    elif kind in checks and (not isinstance(data, checks[kind]) or isinstance(data, bool)):
        return f"{where}: not {'an' if kind in ('object', 'array', 'integer') else 'a'} {kind}"
    if "enum" in schema and data not in schema["enum"]:
        return f"{where}: {data!r} is not one of {schema['enum']}"
    if isinstance(data, dict):
        for name in schema.get("required", []):
            if name not in data:
                return f"{where}: {name} is missing"
        for name, sub in schema.get("properties", {}).items():
            if name in data and (error := schema_error(data[name], sub, f"{where}.{name}")):
                return error
    if isinstance(data, list):
        if len(data) > schema.get("maxItems", len(data)):
            return f"{where}: more than {schema['maxItems']} items"
        for i, item in enumerate(data):
            if "items" in schema and (error := schema_error(item, schema["items"], f"{where}[{i}]")):
                return error
    if isinstance(data, str) and len(data) > schema.get("maxLength", len(data)):
        return f"{where}: longer than {schema['maxLength']} characters"
    if isinstance(data, int | float) and not isinstance(data, bool):
        if "minimum" in schema and data < schema["minimum"]:
            return f"{where}: {data} is below {schema['minimum']}"
        if "maximum" in schema and data > schema["maximum"]:
            return f"{where}: {data} is above {schema['maximum']}"
    return None
