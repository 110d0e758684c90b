"""The built-in deterministic checks (Level 0) and the parameters each one takes.

A skill's rule names its check (``check:``, by default the rule's id). The parameter models
live here, away from the implementations, so loading and validating skills never imports the
parsers; ``load_check`` imports an implementation only when a file is linted.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from tinyarms.source import Source


@dataclass(slots=True)
class Hit:
    """What a check reports: a byte span and the values its message template may use."""

    start: int
    end: int
    values: dict[str, Any] = field(default_factory=dict)
    suggestion: str | None = None


@dataclass(slots=True, frozen=True)
class Context:
    """What a check may know beyond the file: the project root on disk, if there is one."""

    root: str | None = None


Check = Callable[["Source", Any, Context], Iterator[Hit]]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HardcodedColorsParams(Params):
    # A colour in a string is only a colour when it looks like one: these JSX attributes and
    # object keys hold fragments and ids (``href="#add"``), never colours.
    ignore_attributes: list[str] = ["href", "to", "id", "key", "name", "target"]


class MagicNumbersParams(Params):
    allow: list[float] = [0, 1, -1, 2, 12, 16, 24, 60, 100, 1000]


class FileSizeParams(Params):
    max_lines: int = Field(350, ge=1)


class ImportAliasesParams(Params):
    aliases: dict[str, str] = {"@/": "src/"}
    min_depth: int = Field(2, ge=1,
                           description="how many '../' a relative import may climb before it must use an alias")
    python_max_level: int = Field(2, ge=1, description="deepest Python relative import allowed ('..' = 2)")
    read_tsconfig: bool = True


class LineReferencesParams(Params):
    pass


class PatternTimeout(Exception):
    """A skill's own pattern ran past its time limit on one file (rules/regex.py)."""


class RegexParams(Params):
    regex: str
    scope: Literal["code", "comments", "strings", "all"] = "all"
    ignore_case: bool = False

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    engine: str
    params: type[Params]
    module: str


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec("hardcoded-colors", "pattern", HardcodedColorsParams, "colors"),
        CheckSpec("magic-numbers", "ast", MagicNumbersParams, "magic_numbers"),
        CheckSpec("file-size", "pattern", FileSizeParams, "file_size"),
        CheckSpec("import-aliases", "ast", ImportAliasesParams, "import_aliases"),
        CheckSpec("line-references", "pattern", LineReferencesParams, "line_references"),
        CheckSpec("regex", "pattern", RegexParams, "regex"),
    )
}


def load_check(name: str) -> Check:
    module = importlib.import_module(f"tinyarms.rules.{CHECKS[name].module}")
    check: Check = module.check
    return check
