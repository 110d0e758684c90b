"""The rule set a lint runs: skills chosen, overrides applied, globs compiled, hashed.

This is where config meets skills. The result is plain data that can be sent to worker
processes and whose hash keys the result cache: change a rule's parameter and every cached
result made with the old value stops matching.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tinyarms import __version__
from tinyarms.config import Config, LoadedConfig, load_config
from tinyarms.errors import ConfigError
from tinyarms.finding import RuleMeta
from tinyarms.skills import DEEP_LEVEL, ParamsError, Rule, Skill, load_skills, validate_params
from tinyarms.yamlio import Loc, did_you_mean, format_loc, validation_messages


@dataclass(slots=True)
class ActiveRule:
    id: str
    skill: str
    engine: str
    level: int
    severity: str
    message: str
    suggestion: str | None
    description: str
    check: str | None
    languages: tuple[str, ...]
    files: tuple[str, ...]
    exclude: tuple[str, ...]
    params: dict[str, Any]
    examples: tuple[dict[str, Any], ...] = ()

    def meta(self) -> RuleMeta:
        return RuleMeta(self.id, self.skill, self.description, self.severity, self.level, self.engine, self.suggestion)


_RULES_FOR_KEPT = 100_000  # files whose rules are remembered


_UNNAMED = re.compile(r"\(\?P<\w+>")


def _matcher(globs: tuple[str, ...]) -> Callable[[str], bool]:
    """gitignore-style ``globs`` as one test of a path. Without a negation (``!x``) any pattern
    matching is a match: one regex, not a loop over patterns per file (the common case: a rule's
    test excludes); with one, pathspec's own last-match-wins order. Picklable: a rule set goes to
    the Level 0 worker processes."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(globs)
    regexes = [p.regex.pattern for p in spec.patterns if p.include and p.regex is not None]
    if any(p.include is False for p in spec.patterns):
        return spec.match_file
    # each pattern's regex names its groups alike (ps_d): one alternation needs them unnamed
    return _AnyOf(re.compile("|".join(f"(?:{_UNNAMED.sub('(?:', r)})" for r in regexes)) if regexes else None)


@dataclass(frozen=True, slots=True)
class _AnyOf:
    regex: re.Pattern[str] | None  # None: no pattern at all (comments and blank lines only)

    def __call__(self, rel: str) -> bool:
        return self.regex is not None and self.regex.match(rel) is not None


@dataclass
class RuleSet:
    rules: list[ActiveRule]
    exclude: tuple[str, ...] = ()
    root: str | None = None
    _matchers: dict[tuple[str, ...], Callable[[str], bool]] = field(default_factory=dict, repr=False)
    _rules_for: dict[tuple[str, str | None], list[ActiveRule]] = field(default_factory=dict, repr=False)
    _rules_for_of: list[ActiveRule] | None = field(default=None, repr=False)

    @cached_property
    def digest(self) -> str:
        payload = json.dumps(
            [__version__, _code_stamp(), self.exclude, [asdict(r) for r in self.rules]],
            sort_keys=True, default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def rules_for(self, rel: str, language: str | None) -> list[ActiveRule]:
        """The rules that apply to a file: by language or ``files`` glob, minus ``exclude``.
        Asked about the same file more than once per lint (listing, the levels): kept."""
        if self._rules_for_of is not self.rules or len(self._rules_for) > _RULES_FOR_KEPT:
            self._rules_for.clear()  # the rules were replaced (eval --level), or a daemon's long run
            self._rules_for_of = self.rules
        key = (rel, language)
        known = self._rules_for.get(key)
        if known is None:
            known = self._rules_for[key] = self._rules_for_uncached(rel, language)
        return known

    def __getstate__(self) -> dict[str, Any]:
        # Pickled for the Level 0 worker processes: the rules and the compiled globs travel, not
        # the rules remembered per file (in a long-running daemon, up to _RULES_FOR_KEPT of them).
        return {**self.__dict__, "_rules_for": {}, "_rules_for_of": None}

    def _rules_for_uncached(self, rel: str, language: str | None) -> list[ActiveRule]:
        out = []
        for rule in self.rules:
            by_language = language is not None and language in rule.languages
            if (rule.languages or rule.files) and not (by_language or self._match(rule.files, rel)):
                continue
            if rule.exclude and self._match(rule.exclude, rel):
                continue
            out.append(rule)
        return out

    def excluded(self, rel: str) -> bool:
        return bool(self.exclude) and self._match(self.exclude, rel)

    def _match(self, globs: tuple[str, ...], rel: str) -> bool:
        if not globs:
            return False
        match = self._matchers.get(globs)
        if match is None:
            match = self._matchers[globs] = _matcher(globs)
        return match(rel)

    def meta(self) -> dict[str, RuleMeta]:
        return {r.id: r.meta() for r in self.rules}


@dataclass(slots=True)
class Settings:
    """Everything a lint needs to know before it reads a file."""

    config: Config
    ruleset: RuleSet
    root: Path | None
    skills: dict[str, tuple[Skill, str]]
    loaded: LoadedConfig


def load_settings(
    root: Path | None,
    cli: dict[str, Any] | None = None,
    skill_names: list[str] | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """``env``: the TINYARMS_* variables of the client (the daemon's own environment is not the
    user's shell's); None reads this process's environment."""
    loaded = load_config(root, cli, env)
    skills = load_skills(root)
    config = loaded.config
    names = skill_names or config.skills or _default_skills(skills)
    unknown = [n for n in names if n not in skills]
    if unknown:
        raise ConfigError(
            [f"unknown skill {n!r}{did_you_mean(n, skills)}; known skills: {', '.join(sorted(skills))}"
             for n in unknown]
        )
    rules = _apply_overrides(skills, names, loaded)
    known_ids = {r.id for skill, _ in skills.values() for r in skill.rules}
    for option, ids in (("--select", select), ("--ignore", ignore)):
        for rule_id in ids or ():
            if rule_id not in known_ids:
                raise ConfigError([f"{option}: no rule {rule_id!r}{did_you_mean(rule_id, known_ids)}"])
    if select:
        rules = [r for r in rules if r.id in select]
    if ignore:
        rules = [r for r in rules if r.id not in ignore]
    ruleset = RuleSet(rules, tuple(config.exclude), str(root) if root else None)
    return Settings(config, ruleset, root, skills, loaded)


def _default_skills(skills: dict[str, tuple[Skill, str]]) -> list[str]:
    # The pre-commit set: the fast skill plus every repo skill that needs no deep model.
    return ["code-linting-fast"] + [
        name for name, (skill, shown) in skills.items()
        if not shown.startswith("<built-in>") and DEEP_LEVEL not in skill.levels
    ]


def _apply_overrides(skills: dict[str, tuple[Skill, str]], names: list[str], loaded: LoadedConfig) -> list[ActiveRule]:
    by_id: dict[str, tuple[Rule, str]] = {r.id: (r, name) for name, (s, _) in skills.items() for r in s.rules}
    overrides = loaded.config.rules
    problems = []
    for rule_id in overrides:
        if rule_id not in by_id:
            problems.append(f"{_where(loaded, ('rules', rule_id))}: rules.{rule_id}: no rule with this id"
                            f"{did_you_mean(rule_id, by_id)}")
    active: list[ActiveRule] = []
    for name in names:
        skill, _ = skills[name]
        for rule in skill.rules:
            override = overrides.get(rule.id)
            data = rule.model_dump()
            if override is not None:
                changes = override.model_dump(exclude_none=True)
                params = changes.pop("params", None)
                data.update(changes)
                if params is not None:
                    data["params"] = {**rule.params, **params}
            if not data["enabled"]:
                continue
            try:
                params_model = validate_params(rule, data["params"])
            except ParamsError as exc:
                for loc, message in validation_messages(exc.error, ("rules", rule.id, "params")):
                    problems.append(f"{_where(loaded, loc)}: {format_loc(loc)}: {message}")
                continue
            params = params_model.model_dump() if hasattr(params_model, "model_dump") else dict(params_model)
            active.append(
                ActiveRule(
                    id=rule.id, skill=name, engine=rule.engine, level=rule.level, severity=data["severity"],
                    message=data["message"], suggestion=data["suggestion"], description=rule.description,
                    check=rule.check_name, languages=tuple(data["languages"]), files=tuple(data["files"]),
                    exclude=tuple(data["exclude"]), params=params,
                    examples=tuple(e.model_dump() for e in rule.examples),
                )
            )
    if problems:
        raise ConfigError(problems)
    return active


def _where(loaded: LoadedConfig, loc: Loc) -> str:
    """``file:line`` of the last layer that set ``loc`` (the environment's keys have no lines of
    their own); else of the last one that set the nearest key above it."""
    for layer in reversed(loaded.layers):
        if _holds(layer.doc.data, loc):
            probe = loc
            while probe and probe not in layer.doc.lines:
                probe = probe[:-1]
            return f"{layer.doc.path}:{layer.doc.lines.get(probe, 1)}"
    for layer in reversed(loaded.layers):
        doc = layer.doc
        probe = loc
        while probe:
            if probe in doc.lines:
                return f"{doc.path}:{doc.lines[probe]}"
            probe = probe[:-1]
    return loaded.layers[-1].doc.path if loaded.layers else "config"


def _holds(data: Any, loc: Loc) -> bool:
    for key in loc:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return bool(loc)


def ruleset_paths_root(paths: list[Path]) -> Path | None:
    from tinyarms.config import find_root

    start = paths[0] if paths else Path.cwd()
    return find_root(start if start.is_dir() else start.parent)


@functools.lru_cache(maxsize=1)
def _code_stamp() -> str:
    """A hash of the rules' and finders' source: cached results are keyed by it, so an edited
    rule in a checkout never answers with what the old code found (a release changes
    ``__version__`` anyway). About 20 small files, read once per process."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for folder in ("rules", "candidates"):
        for path in sorted((root / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
