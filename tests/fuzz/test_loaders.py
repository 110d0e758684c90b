"""Fuzzing the YAML loaders: skills, the repo config, ``TINYARMS_*`` values, and YAML itself.

Whatever a file says, loading it gives a valid object or a ``ConfigError`` whose every problem
starts ``file:line:`` (and names the field when the problem is one); a setting that loads
must also lint. Nothing else may escape: a raw traceback is the bug this file looks for.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.conftest import git
from tests.fuzz.strategies import JSON_VALUES, TEXT
from tinyarms import resources
from tinyarms.config import REPO_CONFIG, env_layer
from tinyarms.levels.level0 import Job, Linter
from tinyarms.ruleset import load_settings
from tinyarms.skills import parse_skill
from tinyarms.yamlio import ConfigError, load_text

_PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<rest>.+)", re.DOTALL)

SKILL_FILE = ".tinyarms/skills/team.yaml"
# A repo skill of every engine, and a config that touches every section: the seeds to mutate.
SKILL = {
    "name": "team", "description": "Team rules.", "levels": [0, 2],
    "rules": [
        {"id": "no-todo", "engine": "pattern", "level": 0, "check": "regex", "description": "No TODO.",
         "message": "TODO left in", "params": {"regex": "TODO", "scope": "comments"},
         "languages": ["python", "typescript"], "files": ["**/*.md"], "exclude": ["vendor/**"],
         "examples": [{"language": "python", "bad": "# TODO", "good": "# done"}]},
        {"id": "team-dry", "engine": "model", "level": 2, "description": "Copies.", "message": "copy",
         "params": {"finder": "clones"}, "examples": [{"bad": "a()\na()", "good": "f()"}]},
    ],
}
CONFIG = {
    "fail_on": "error", "exclude": ["dist/**"], "max_file_bytes": 4096, "budget": 2.0,
    "rules": {"magic-numbers": {"params": {"allow": [0, 7]}, "severity": "info", "files": ["**/*.py"]},
              "file-size": {"enabled": False}},
    "models": {"backend": "none", "concurrency": 2, "fast": {"embedded": "x.gguf"}},
    "schedule": {"cron": "0 3 * * mon", "gates": {"idle_minutes": 5}},
    "daemon": {"idle_timeout": 60},
}
_GLOBS = st.sampled_from(["!", "\\", "[z-a]", "**", "a/**/b", "[", "*.py", "", "/", "!x", "#c", "\x00"])
_VALUES = JSON_VALUES | _GLOBS | st.lists(_GLOBS, max_size=3) | st.sampled_from(
    [0, -1, 2, 3, 10**20, 1.5, "0 0 31 2 *", "* * * * mon#9", "99 * * * *", "*/0 * * * *", "(", "a{", "x" * 3000])


def assert_located(exc: ConfigError, shown: set[str], text_lines: int | None = None) -> None:
    """Every problem names one of the files (or the environment), a real line, then what."""
    assert exc.problems
    for problem in exc.problems:
        match = _PROBLEM.match(problem)
        assert match, f"no file:line in {problem!r}"
        assert match["file"] in shown, problem
        line = int(match["line"])
        assert line >= 1 and (text_lines is None or line <= text_lines + 1), problem
        assert match["rest"].strip(), problem


# -- mutating data: pick a spot anywhere in the tree, change it -------------------------------


def _spots(data: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _spots(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _spots(value, (*path, i))
    return out


@st.composite
def mutated(draw: Any, seed: dict[str, Any]) -> Any:
    data = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        spots = _spots(data)
        spot = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not spot:
            if action == "replace":
                data = draw(_VALUES)
            continue
        parent = data
        try:
            for part in spot[:-1]:
                parent = parent[part]
        except (KeyError, IndexError, TypeError):
            continue
        last = spot[-1]
        if action == "replace":
            parent[last] = draw(_VALUES)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(TEXT | st.sampled_from(["id", "engine", "level", "params", "check", "rules"]))] = draw(_VALUES)
        else:
            parent.insert(last, draw(_VALUES))
    return data


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loaders") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".tinyarms" / "skills").mkdir(parents=True)
    return root


def _load_and_lint(root: Path, shown: set[str], lines: int | None) -> None:
    """Settings load, or fail with located problems; settings that load must lint files."""
    try:
        settings = load_settings(root)
    except ConfigError as exc:
        event("config-error")
        assert_located(exc, shown, lines)
        return
    event("loaded")
    linter = Linter(settings.ruleset, settings.config.max_file_bytes)
    for rel, code in (("src/a.py", b"x = 4500  # TODO\n"), ("src/b.ts", b'const c = "#ff0000";\n'),
                      ("README.md", b"TODO\n"), ("vendor/c.css", b"a { color: #abc; }\n")):
        if settings.ruleset.excluded(rel):
            continue
        outcome = linter.lint(Job(rel, rel, code))
        assert not [s for s in outcome.skipped if s.reason == "internal-error"], outcome.skipped


def test_the_seeds_are_valid(project: Path) -> None:
    (project / SKILL_FILE).write_text(_dump(SKILL))
    (project / REPO_CONFIG).write_text(_dump(CONFIG))
    settings = load_settings(project)
    assert "team" in settings.skills and settings.config.fail_on == "error"


@settings(max_examples=60)
@given(skill=mutated(SKILL))
def test_mutated_skill_loads_and_lints_or_is_a_located_error(project: Path, skill: Any) -> None:
    text = _dump(skill)
    (project / SKILL_FILE).write_text(text)
    (project / REPO_CONFIG).unlink(missing_ok=True)
    _load_and_lint(project, {SKILL_FILE}, text.count("\n"))


@settings(max_examples=60)
@given(config=mutated(CONFIG))
def test_mutated_repo_config_loads_and_lints_or_is_a_located_error(project: Path, config: Any) -> None:
    text = _dump(config)
    (project / REPO_CONFIG).write_text(text)
    (project / SKILL_FILE).write_text(_dump(SKILL))
    _load_and_lint(project, {str(project / REPO_CONFIG)}, text.count("\n"))


@pytest.mark.parametrize("glob", ["!", "[z-a]", "\\"])
@pytest.mark.parametrize("where", ["exclude", "rules.magic-numbers.files", "skill"])
def test_an_invalid_glob_is_an_error_where_it_is_written(project: Path, glob: str, where: str) -> None:
    """Found by the mutations above: such a glob loaded fine and then crashed the first lint."""
    skill, config = copy.deepcopy(SKILL), copy.deepcopy(CONFIG)
    if where == "skill":
        skill["rules"][0]["exclude"] = ["vendor/**", glob]
        shown, field = SKILL_FILE, "rules[0].exclude[1]"
    elif where == "exclude":
        config["exclude"] = [glob]
        shown, field = str(project / REPO_CONFIG), "exclude[0]"
    else:
        config["rules"]["magic-numbers"]["files"] = [glob]
        shown, field = str(project / REPO_CONFIG), "rules.magic-numbers.files[0]"
    (project / SKILL_FILE).write_text(_dump(skill))
    (project / REPO_CONFIG).write_text(_dump(config))

    with pytest.raises(ConfigError) as caught:
        load_settings(project)
    assert_located(caught.value, {shown})
    [problem] = caught.value.problems
    assert f": {field}: " in problem and f"invalid glob {glob!r}" in problem


_SKILL_TEXT = _dump(SKILL)


@settings(max_examples=80)
@given(cut=st.integers(0, len(_SKILL_TEXT)), length=st.integers(0, 40),
       insert=TEXT | st.sampled_from(["\t", ": ", "- ", "&a", "*a", "!!python/object:os.system", "{", "'", "\x00"]))
def test_skill_text_spliced_anywhere_loads_or_is_a_located_error(cut: int, length: int, insert: str) -> None:
    text = _SKILL_TEXT[:cut] + insert + _SKILL_TEXT[cut + length:]
    try:
        parse_skill(load_text(text, "team.yaml"))
    except ConfigError as exc:
        assert_located(exc, {"team.yaml"}, text.count("\n") + text.count("\r"))


@settings(max_examples=100)
@given(text=TEXT | st.sampled_from(["[" * 3000, "- " * 3000, "a: &x [*x]", "a: &x {b: *x}", "\ufeffa: 1",
                                    "? [a]\n: b", "a: 1\na: 2", "--- a\n--- b", "%YAML 9.9\n--- a"]))
def test_any_text_is_a_document_or_a_located_error(text: str) -> None:
    try:
        load_text(text, "x.yaml")
    except ConfigError as exc:
        assert_located(exc, {"x.yaml"})


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "what"), [
    ("rules: &r [*r]\n", "contains it"),
    (_laughs(9), "aliases are expanded"),  # a billion strings, from 9 lines
    ("rules:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)), "nested too deeply"),
    ("name: x\nrules: [\x07]\n", "unacceptable character"),
])
def test_hostile_yaml_is_a_located_error(text: str, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "team.yaml")
    assert_located(caught.value, {"team.yaml"}, text.count("\n"))
    assert what in caught.value.problems[0]


@settings(max_examples=80)
@given(env=st.dictionaries(
    st.sampled_from(["TINYARMS_FAIL_ON", "TINYARMS_EXCLUDE", "TINYARMS_RULES__SIMPLE_DRY__PARAMS__X",
                     "TINYARMS_RULES__MAGIC_NUMBERS__FILES", "TINYARMS_MODELS__CONCURRENCY", "TINYARMS_SKILLS",
                     "TINYARMS_SCHEDULE__CRON", "TINYARMS_RULES"]),
    TEXT | st.sampled_from(["[" * 3000, _laughs(9), "&x [*x]", "['!']", "['[z-a]']", "{a: &x [*x]}"]),
    max_size=3))
def test_environment_values_load_and_lint_or_are_located_errors(env: dict[str, str]) -> None:
    assert env_layer(env).doc.data is not None
    try:
        settings = load_settings(None, env=env)
    except ConfigError as exc:
        assert_located(exc, {"environment (TINYARMS_*)"})
        return
    Linter(settings.ruleset, settings.config.max_file_bytes).lint(Job("a.py", "a.py", b"x = 4500\n"))


def test_builtin_skills_and_config_still_load() -> None:
    assert len(list(resources.data_dir("skills").glob("*.yaml"))) == 2
    assert load_settings(None).ruleset.rules
