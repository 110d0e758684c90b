"""Security: what users and repositories write is data. Python tags in YAML are refused naming the
file, text in a skill never runs, a skill's pattern cannot hang the lint, and a repository's
config cannot choose where code and API keys are sent. Each protection here was checked by
removing it and watching its test fail.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.timing import scaled
from tinyarms import lintjob, protocol
from tinyarms.daemon import control
from tinyarms.rules import regex as regex_rule
from tinyarms.ruleset import load_settings
from tinyarms.yamlio import ConfigError

# Each tag, if PyYAML's unsafe loaders were used, would run code; {marker} is a file it would create.
TAGS = {
    "object/apply": '!!python/object/apply:os.system ["touch {marker}"]',
    "object/new": '!!python/object/new:subprocess.Popen [["touch", "{marker}"]]',
    "name": "!!python/name:os.system",
    "module": "!!python/module:os",
    "object": "!!python/object:tinyarms.config.Config {{}}",
}
# Where tinyarms reads YAML from a user or a repository, and how each names itself in errors.
YAML_FILES = {
    "user config": ("user/config.yaml", "fail_on: {tag}\n"),
    "repo config": (".tinyarms.yaml", "budget: 2\nfail_on: {tag}\n"),
    "repo skill": (".tinyarms/skills/team.yaml", "name: team\ndescription: {tag}\nlevels: [0]\nrules: []\n"),
}


def plant(repo: Path, tmp_path: Path, where: str, tag: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """Write the tagged YAML file; (the marker it would create, the file's name in errors)."""
    marker = tmp_path / f"pwned-{tag.replace('/', '-')}"
    name, template = YAML_FILES[where]
    base = tmp_path if where == "user config" else repo
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template.format(tag=TAGS[tag].format(marker=marker)))
    if where == "user config":
        monkeypatch.setenv("TINYARMS_CONFIG", str(path))
    return marker, str(path) if where != "repo skill" else name


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("where", YAML_FILES)
def test_python_tags_in_yaml_are_refused_naming_the_file(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, tag: str,
) -> None:
    marker, shown = plant(repo, tmp_path, where, tag, monkeypatch)
    with pytest.raises(ConfigError) as error:
        load_settings(repo)
    [problem] = error.value.problems
    assert problem.startswith(f"{shown}:") and "object tags are not allowed" in problem, problem
    assert not marker.exists(), "the YAML ran code"


def test_a_python_tag_in_an_environment_variable_is_a_plain_string(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    env = {"TINYARMS_FAIL_ON": TAGS["object/apply"].format(marker=marker)}
    with pytest.raises(ConfigError) as error:
        load_settings(None, env=env)
    assert "environment (TINYARMS_*)" in error.value.problems[0] and "is not one of" in error.value.problems[0]
    assert not marker.exists()


def test_python_tags_are_refused_by_the_command_line_and_the_daemon(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path,
) -> None:
    marker, shown = plant(repo, tmp_path, "repo config", "object/apply", monkeypatch)
    (repo / "a.py").write_text("x = 1\n")
    result = run_cli("lint", "--no-daemon", "a.py", cwd=repo)
    assert result.returncode == 2 and f"{shown}:2: YAML error" in result.stderr, result.stderr
    control.start(isolated_env)
    try:
        with protocol.Connection(protocol.socket_path(isolated_env), 30) as conn:
            reply = conn.request({"op": "lint", "cwd": str(repo), "paths": ["a.py"]})
        assert control.ping(isolated_env) is not None  # and it keeps serving
    finally:
        control.stop(isolated_env)
    assert reply["error"]["code"] == protocol.CONFIG_ERROR and f"{shown}:2: YAML error" in reply["error"]["message"]
    assert not marker.exists()


def test_a_repository_config_cannot_choose_where_code_and_keys_are_sent(
    repo: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.models.fake_openai import FakeOpenAI

    monkeypatch.setenv("ZQ7_CLOUD_SECRET", "zq7secret-key")
    (repo / "prices.py").write_text(TWINS)  # a model question to ask, if a backend were chosen
    server = FakeOpenAI()  # the repository author's server
    try:
        (repo / ".tinyarms.yaml").write_text(
            "fail_on: never\nmodels:\n  backend: openai\n  ollama: {host: 'http://evil.example:11434'}\n"
            f"  openai:\n    base_url: {server.base_url}\n    api_key_env: ZQ7_CLOUD_SECRET\n")
        job = lintjob.LintJob(paths=["prices.py"], no_cache=True)
        with pytest.raises(ConfigError) as error:
            lintjob.execute(job, repo, lintjob.load(job, repo))
        problems = "\n".join(error.value.problems)
        for line, key in ((4, "models.ollama.host"), (6, "models.openai.base_url"), (7, "models.openai.api_key_env")):
            assert f".tinyarms.yaml:{line}: {key}: a repository's config may not choose where" in problems, problems
        assert "TINYARMS_MODELS__OPENAI__BASE_URL" in problems
        assert server.requests == [], "the repository's server was contacted"
        # The same settings from the user (here: the environment) are the user's choice, and work.
        (repo / ".tinyarms.yaml").write_text("fail_on: never\n")
        job = lintjob.LintJob(paths=["prices.py"], no_cache=True, env={
            "TINYARMS_MODELS__BACKEND": "openai", "TINYARMS_MODELS__OPENAI__BASE_URL": server.base_url,
            "TINYARMS_MODELS__OPENAI__API_KEY_ENV": "ZQ7_CLOUD_SECRET"})
        lintjob.execute(job, repo, lintjob.load(job, repo))
        assert server.chats()[0].headers["Authorization"] == "Bearer zq7secret-key"
    finally:
        server.stop()


SHELLISH_SKILL = r"""
name: team
description: "$(touch {marker})"
levels: [0]
rules:
  - id: no-subshell
    engine: pattern
    level: 0
    check: regex
    languages: [python]
    params: {{regex: '\$\(touch [^)]*\)|`touch [^`]*`', scope: all}}
    description: "`touch {marker}`; rm -rf ~"
    message: "found {{value}} && touch {marker}"
    suggestion: "$(touch {marker})"
"""


def test_shell_looking_text_in_a_skill_is_only_data(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (repo / ".tinyarms" / "skills").mkdir(parents=True)
    (repo / ".tinyarms" / "skills" / "team.yaml").write_text(SHELLISH_SKILL.format(marker=marker))
    (repo / "run.py").write_text(f'os.popen("$(touch {marker})")\nos.popen("`touch {marker}`")\n')
    job = lintjob.LintJob(paths=["run.py"], select=["no-subshell"], no_cache=True)
    result = lintjob.execute(job, repo, lintjob.load(job, repo))
    assert [(f.line, f.message) for f in result.findings] == [
        (1, f"found $(touch {marker}) && touch {marker}"), (2, f"found `touch {marker}` && touch {marker}")]
    assert not marker.exists()


BACKTRACKING_SKILL = r"""
name: team
description: a pattern that backtracks for ever on a run of a's with no end
levels: [0]
rules:
  - id: runaway
    engine: pattern
    level: 0
    check: regex
    languages: [python]
    params: {regex: '(a|aa)+$', scope: all}
    description: catastrophic backtracking
    message: "found {value}"
"""


def test_a_skill_pattern_that_backtracks_for_ever_costs_that_file_half_a_second_not_the_lint(
        repo: Path) -> None:
    (repo / ".tinyarms" / "skills").mkdir(parents=True)
    (repo / ".tinyarms" / "skills" / "team.yaml").write_text(BACKTRACKING_SKILL)
    (repo / "run.py").write_text("x = '" + "a" * 60 + "!'\nprint(3 * 7)\n")
    job = lintjob.LintJob(paths=["run.py"], select=["runaway", "magic-numbers"], no_cache=True)
    started = time.monotonic()
    result = lintjob.execute(job, repo, lintjob.load(job, repo))
    took = time.monotonic() - started
    budget, margin = scaled(regex_rule.SECONDS_PER_FILE, 2.0)
    assert took < budget + margin, took  # plain re would still be matching (2**60 ways to split the a's)
    [skipped] = [s for s in result.skipped if s.rule == "runaway"]
    assert skipped.reason == "rule-timeout" and "(a|aa)+$" in skipped.message and "backtracking" in skipped.message
    assert skipped.hint == "fix the pattern of rule runaway in skill team"
    assert {f.rule for f in result.findings} == {"magic-numbers"}  # the other rules' findings are all there
