from pathlib import Path

import pytest

from tests.conftest import LintCode, run_cli
from tinyarms.skills import BUILTIN_SKILLS, load_skills
from tinyarms.source import LANGUAGES
from tinyarms.yamlio import ConfigError

EXTENSION = {lang: ext for ext, lang in reversed(LANGUAGES.items())}


def builtin_rules():
    skills = load_skills(None)
    return [(name, rule) for name in BUILTIN_SKILLS for rule in skills[name][0].rules]


def test_builtin_skills_declare_the_design_rule_ids() -> None:
    ids = {name: [r.id for r in skill.rules] for name, (skill, _) in load_skills(None).items()}
    assert ids["code-linting-fast"] == [
        "hardcoded-colors", "magic-numbers", "file-size", "import-aliases", "line-references", "simple-dry",
        "design-tokens",
    ]
    assert ids["code-linting-deep"] == [
        "complex-dry", "architectural-anti-patterns", "cross-file-patterns", "semantic-duplication",
    ]


@pytest.mark.parametrize(("skill", "rule"), builtin_rules(), ids=lambda v: getattr(v, "id", v))
def test_every_rule_has_examples_and_level0_examples_hold(skill, rule, lint_code: LintCode) -> None:
    """The examples in the YAML are what the model is shown; for Level 0 they must be true."""
    assert rule.examples, f"{rule.id} has no examples"
    if rule.level != 0:
        assert all(e.bad and e.good for e in rule.examples)
        return
    for example in rule.examples:
        path = "src/features/x/example" + EXTENSION[example.language or rule.languages[0]]
        if example.bad:
            assert [f.rule for f in lint_code(example.bad, path, rule=rule.id)], f"bad example of {rule.id} not found"
        if example.good:
            assert lint_code(example.good, path, rule=rule.id) == [], f"good example of {rule.id} flagged"


def write_skill(root: Path, text: str, name: str = "team.yaml") -> Path:
    folder = root / ".tinyarms" / "skills"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


GOOD_SKILL = """\
name: team
description: our own rules
levels: [0]
rules:
  - id: no-print
    engine: pattern
    level: 0
    check: regex
    languages: [python]
    params: {regex: 'print\\(', scope: code}
    description: no print calls
    message: "print call: use the logger"
"""


def test_repo_skill_adds_a_regex_rule(repo: Path, lint_code: LintCode) -> None:
    write_skill(repo, GOOD_SKILL)
    skills = load_skills(repo)
    assert "team" in skills and skills["team"][1] == ".tinyarms/skills/team.yaml"
    (repo / "a.py").write_text('print("x")  # print( in a comment\ns = "print("\n')
    result = run_cli("lint", "--format", "text", "a.py", cwd=repo)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "a.py:1:1: no-print [warning] print call: use the logger"
    assert "a.py:2" not in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD_SKILL.replace("engine: pattern", "engine: telepathy"),
         "team.yaml:6: rules[0].engine: 'telepathy' is not one of pattern, ast, model"),
        (GOOD_SKILL.replace("    level: 0\n", "    level: 2\n"),
         "team.yaml:5: rules[0]: pattern rules are deterministic and run at level 0"),
        (GOOD_SKILL.replace("scope: code", "scope: code, colour: red"),
         "team.yaml:10: rules[0].params.colour: unknown key"),
        (GOOD_SKILL.replace("'print\\('", "'print('"),
         "team.yaml:10: rules[0].params.regex: invalid regular expression"),
        (GOOD_SKILL.replace("    check: regex\n", "    check: nonsense\n"),
         "team.yaml:5: rules[0]: no built-in check 'nonsense'"),
        (GOOD_SKILL.replace("description: our own rules\n", ""), "team.yaml:1: description: required field is missing"),
        (GOOD_SKILL.replace("levels: [0]", "levels: [0]\nlevels: [2]"),
         "team.yaml:4: levels: duplicate key (first defined on line 3)"),
        (GOOD_SKILL.replace("rules:\n", "rules: [\n"), "team.yaml:5: YAML error"),
        ("!!python/object/apply:os.system ['echo pwned']\n",
         "team.yaml:1: YAML error: could not determine a constructor"),
        ("- just\n- a list\n", "team.yaml:1: a skill must be a mapping"),
    ],
)
def test_bad_skills_are_usage_errors_naming_file_line_and_field(repo: Path, text: str, message: str) -> None:
    write_skill(repo, text)
    (repo / "a.py").write_text("x = 1\n")
    with pytest.raises(ConfigError) as error:
        load_skills(repo)
    assert any(p.startswith(f".tinyarms/skills/{message}") for p in error.value.problems), error.value.problems
    result = run_cli("lint", "a.py", cwd=repo)
    assert result.returncode == 2
    assert f"tinyarms: error: .tinyarms/skills/{message}" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_skills_folder_alone_marks_the_project_outside_git(tmp_path: Path) -> None:
    """No .git, no .tinyarms.yaml: the project's skills still load, and a bad one still fails."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "a.py").write_text('print("x")\n')
    write_skill(project, GOOD_SKILL)
    result = run_cli("lint", "--format", "text", cwd=project / "src")
    assert result.returncode == 1 and "a.py:1:1: no-print [warning]" in result.stdout, result.stderr

    write_skill(project, GOOD_SKILL.replace("engine: pattern", "engine: telepathy"))
    result = run_cli("lint", "--format", "json", cwd=project)
    assert result.returncode == 2 and result.stdout == ""
    assert "tinyarms: error: .tinyarms/skills/team.yaml:6: rules[0].engine: 'telepathy' is not one of" in result.stderr


def test_one_bad_file_fails_the_whole_load(repo: Path) -> None:
    write_skill(repo, GOOD_SKILL, "a.yaml")
    write_skill(repo, GOOD_SKILL.replace("name: team", "name: other").replace("no-print", "Bad Id"), "b.yaml")
    with pytest.raises(ConfigError) as error:
        load_skills(repo)
    assert error.value.problems == [
        ".tinyarms/skills/b.yaml:5: rules[0].id: String should match pattern '^[a-z0-9][a-z0-9-]*$'"
    ]


def test_rule_ids_are_unique_across_skills(repo: Path) -> None:
    write_skill(repo, GOOD_SKILL.replace("no-print", "magic-numbers").replace("check: regex", "check: regex"))
    with pytest.raises(ConfigError) as error:
        load_skills(repo)
    assert error.value.problems == [
        ".tinyarms/skills/team.yaml:5: rules[0].id: rule 'magic-numbers' is already defined in "
        "<built-in>/skills/code-linting-fast.yaml"
    ]
