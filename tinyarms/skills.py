"""Skills: YAML files of rules with examples. This module owns their schema and its errors.

A skill names the levels it runs at and lists rules. A rule says which engine judges it
(``pattern`` and ``ast`` at Level 0, ``model`` at Level 2 or 3), which files it applies to, its
parameters, message, suggestion and ``bad``/``good`` examples. Built-in skills ship inside the
package; a repo adds its own in ``.tinyarms/skills/*.yaml``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from tinyarms import resources
from tinyarms.errors import ConfigError
from tinyarms.rules import CHECKS
from tinyarms.source import LANGUAGE_NAMES
from tinyarms.yamlio import Document, load_file, validation_problems

Engine = Literal["pattern", "ast", "model"]
Severity = Literal["error", "warning", "info"]
LanguageName = Literal["python", "javascript", "typescript", "tsx", "css"]
assert set(LanguageName.__args__) == set(LANGUAGE_NAMES)  # type: ignore[attr-defined]

BUILTIN_SKILLS = ("code-linting-fast", "code-linting-deep")
FAST_LEVEL = 2  # model rules asked within a commit's budget (models.fast)
DEEP_LEVEL = 3  # model rules of the weekly deep scan (models.deep)
REPO_SKILLS = ".tinyarms/skills"  # a repository's own skills, *.yaml
# How a model rule finds what to ask about: clone pairs, values equal to design tokens, each
# function on its own (the default), or pairs across files (the deep scan).
MODEL_FINDERS = ("clones", "tokens", "functions", "cross-file")
_ID = r"^[a-z0-9][a-z0-9-]*$"


def _check_glob(value: str) -> str:
    """A gitignore-style pattern, compiled now: a bad one is an error in the file that wrote it,
    not a crash at the first file it is matched against."""
    import pathspec

    try:
        pathspec.GitIgnoreSpec.from_lines([value])
    except (ValueError, re.error) as exc:
        raise ValueError(f"invalid glob {value!r}: {exc}") from None
    return value


Glob = Annotated[str, AfterValidator(_check_glob)]


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: LanguageName | None = None
    bad: str | None = None
    good: str | None = None
    why: str | None = None

    @model_validator(mode="after")
    def _has_code(self) -> Example:
        if self.bad is None and self.good is None:
            raise ValueError("an example needs 'bad' or 'good' code")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID)
    engine: Engine
    level: Literal[0, 2, 3]
    severity: Severity = "warning"
    description: str
    message: str
    suggestion: str | None = None
    check: str | None = None
    languages: list[LanguageName] = []
    files: list[Glob] = []
    exclude: list[Glob] = []
    params: dict[str, Any] = {}
    examples: list[Example] = []
    enabled: bool = True

    @model_validator(mode="after")
    def _engine_fits_level(self) -> Rule:
        if self.engine == "model":
            if self.level == 0:
                raise ValueError("model rules run at level 2 (fast) or 3 (deep), not 0")
            finder = self.params.get("finder", "functions")
            if finder not in MODEL_FINDERS:
                raise ValueError(f"params.finder {finder!r} is not one of {', '.join(MODEL_FINDERS)}")
            if self.check is not None:
                raise ValueError("'check' names a deterministic check; model rules have none")
        else:
            if self.level != 0:
                raise ValueError(f"{self.engine} rules are deterministic and run at level 0")
            name = self.check or self.id
            if name not in CHECKS:
                raise ValueError(
                    f"no built-in check {name!r}; set 'check' to one of {', '.join(sorted(CHECKS))}"
                )
        return self

    @property
    def check_name(self) -> str | None:
        return None if self.engine == "model" else (self.check or self.id)


class Skill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_ID)
    description: str
    levels: list[Literal[0, 2, 3]]
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Skill:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is defined twice")
            seen.add(rule.id)
            if rule.level not in self.levels:
                raise ValueError(f"rule {rule.id!r} runs at level {rule.level}, "
                                 f"not in the skill's levels {self.levels}")
        return self


class TokensParams(BaseModel):
    """The parameters of a model rule whose finder is ``tokens`` (design-tokens)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    finder: Literal["tokens"] = "tokens"
    root_font_px: float = Field(16.0, gt=0, description="pixels to a rem: a px value and a rem token (or the "
                                                           "other way round) are compared at this size")


class ClonesParams(BaseModel):
    """The parameters of a model rule whose finder is ``clones`` (simple-dry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    finder: Literal["clones"] = "clones"
    min_logic: int = Field(4, ge=1, description="calls, branches, loops, operators and markup elements each block "
                           "of a pair does at least: lower it for small copies too (more pairs, fewer of them real)")


_FINDER_PARAMS: dict[str, type[BaseModel]] = {"tokens": TokensParams, "clones": ClonesParams}


def validate_params(rule: Rule, params: dict[str, Any]) -> Any:
    """The rule's parameters as its check's model; raises ``ValueError`` with the field."""
    name = rule.check_name
    if name is None:
        model = _FINDER_PARAMS.get(params.get("finder", ""))
        if model is None:
            return params
        try:
            return model.model_validate(params)
        except ValidationError as exc:
            raise ParamsError(exc) from None
    try:
        return CHECKS[name].params.model_validate(params)
    except ValidationError as exc:
        raise ParamsError(exc) from None


class ParamsError(ValueError):
    def __init__(self, error: ValidationError):
        self.error = error
        super().__init__(str(error))


def parse_skill(doc: Document) -> Skill:
    """Validate one skill document; every problem is reported with file, line and field."""
    if not isinstance(doc.data, dict):
        raise ConfigError([f"{doc.path}:1: a skill must be a mapping with name, description, levels and rules"])
    try:
        skill = Skill.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc)) from None
    problems: list[str] = []
    for i, rule in enumerate(skill.rules):
        try:
            validate_params(rule, rule.params)
        except ParamsError as exc:
            problems += validation_problems(doc, exc.error, ("rules", i, "params"))
    if problems:
        raise ConfigError(problems)
    return skill


def builtin_skill_paths() -> dict[str, Path]:
    folder = resources.data_dir("skills")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def repo_skill_paths(root: Path) -> list[Path]:
    return sorted((root / REPO_SKILLS).glob("*.yaml"))


def load_skills(root: Path | None) -> dict[str, tuple[Skill, str]]:
    """Built-in skills plus the repo's, all or nothing: skill name -> (skill, file shown)."""
    found: dict[str, tuple[Skill, str]] = {}
    problems: list[str] = []
    files = [(p, f"<built-in>/skills/{p.name}", True) for p in builtin_skill_paths().values()]
    if root is not None:
        files += [(p, _shown(p, root), False) for p in repo_skill_paths(root)]
    rule_owner: dict[str, str] = {}
    for path, shown, trusted in files:
        try:
            doc = load_file(path, shown, trusted=trusted)
            skill = parse_skill(doc)
        except ConfigError as exc:
            problems += exc.problems
            continue
        if skill.name in found:
            problems.append(
                f"{shown}:{doc.line_of(('name',))}: name: skill {skill.name!r} is already defined in "
                f"{found[skill.name][1]}"
            )
            continue
        for i, rule in enumerate(skill.rules):
            if rule.id in rule_owner:
                problems.append(
                    f"{shown}:{doc.line_of(('rules', i, 'id'))}: rules[{i}].id: rule {rule.id!r} is already "
                    f"defined in {rule_owner[rule.id]}"
                )
            rule_owner[rule.id] = shown
        found[skill.name] = (skill, shown)
    if problems:
        raise ConfigError(problems)
    return found


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


_FIELD = re.compile(r"\{(\w+)\}")


def format_message(template: str, values: dict[str, Any]) -> str:
    """Fill ``{name}`` placeholders; unknown names stay as written."""
    return _FIELD.sub(lambda m: str(values.get(m.group(1), m.group())), template)
