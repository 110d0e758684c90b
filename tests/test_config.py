from pathlib import Path

import pytest

from tests.conftest import run_cli
from tinyarms.config import load_config
from tinyarms.ruleset import load_settings
from tinyarms.yamlio import ConfigError


def rule(settings, rule_id):
    return next(r for r in settings.ruleset.rules if r.id == rule_id)


def test_builtin_defaults() -> None:
    config = load_config(None, env={}).config
    got = (config.fail_on, config.budget, config.max_file_bytes, config.on_model_unavailable)
    assert got == ("warning", 5.0, 1 << 20, "skip")


def test_layers_later_wins_and_mappings_merge(repo: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = isolated_env / "user.yaml"
    user.write_text("fail_on: error\nbudget: 3\nrules:\n  file-size: {params: {max_lines: 100}, severity: info}\n")
    monkeypatch.setenv("TINYARMS_CONFIG", str(user))
    (repo / ".tinyarms.yaml").write_text(
        "budget: 4\nrules:\n  file-size: {severity: error}\n  magic-numbers: {enabled: false}\n")
    monkeypatch.setenv("TINYARMS_MAX_FILE_BYTES", "2048")
    monkeypatch.setenv("TINYARMS_RULES__LINE_REFERENCES__SEVERITY", "warning")
    settings = load_settings(repo, {"budget": 1.5})
    assert settings.config.fail_on == "error"  # user
    assert settings.config.budget == 1.5  # command line over repo over user
    assert settings.config.max_file_bytes == 2048  # environment
    size = rule(settings, "file-size")
    assert (size.severity, size.params["max_lines"]) == ("error", 100)  # repo severity, user params kept
    assert rule(settings, "line-references").severity == "warning"
    assert "magic-numbers" not in {r.id for r in settings.ruleset.rules}


def test_params_override_merges_into_the_rules_own(repo: Path) -> None:
    (repo / ".tinyarms.yaml").write_text("rules:\n  import-aliases: {params: {aliases: {'~/': 'app/'}}}\n")
    params = rule(load_settings(repo), "import-aliases").params
    assert params["aliases"] == {"~/": "app/"} and params["min_depth"] == 2
    (repo / ".tinyarms.yaml").write_text("rules:\n  design-tokens: {params: {root_font_px: 10}}\n")
    assert rule(load_settings(repo), "design-tokens").params == {"finder": "tokens", "root_font_px": 10.0}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fail_on: sometimes\n", ".tinyarms.yaml:1: fail_on: 'sometimes' is not one of error, warning, never"),
        ("budget: 5\nbugdet: 4\n", ".tinyarms.yaml:2: bugdet: unknown key"),
        ("rules:\n  magic-number: {enabled: false}\n",
         ".tinyarms.yaml:2: rules.magic-number: no rule with this id (did you mean 'magic-numbers'?)"),
        ("rules:\n  file-size:\n    params:\n      max_lines: -3\n",
         ".tinyarms.yaml:4: rules.file-size.params.max_lines: Input should be greater than or equal to 1"),
        ("rules:\n  file-size: {colour: red}\n", ".tinyarms.yaml:2: rules.file-size.colour: unknown key"),
        ("rules:\n  design-tokens: {params: {root_font_px: 0}}\n",
         ".tinyarms.yaml:2: rules.design-tokens.params.root_font_px: Input should be greater than 0"),
        ("rules:\n  design-tokens: {params: {root_px: 10}}\n",
         ".tinyarms.yaml:2: rules.design-tokens.params.root_px: unknown key"),
        ("fail_on: [\n", ".tinyarms.yaml:2: YAML error"),
        ("!!python/object:os.system {}\n", ".tinyarms.yaml:1: YAML error: could not determine a constructor"),
    ],
)
def test_bad_repo_config_is_exit_2_naming_file_line_and_field(repo: Path, text: str, problem: str) -> None:
    (repo / ".tinyarms.yaml").write_text(text)
    (repo / "a.py").write_text("x = 1\n")
    with pytest.raises(ConfigError) as error:
        load_settings(repo)
    assert any(p.startswith(f"{repo}/{problem}") for p in error.value.problems), error.value.problems
    result = run_cli("lint", "a.py", cwd=repo)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"tinyarms: error: {repo}/{problem}" in result.stderr


def test_bad_environment_value_names_the_variable_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_FAIL_ON", "loudly")
    with pytest.raises(ConfigError) as error:
        load_settings(None)
    assert error.value.problems == ["environment (TINYARMS_*):1: fail_on: 'loudly' is not one of error, warning, never"]


def test_a_bad_rule_param_from_the_environment_is_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    # rules: {} sits on a line of the built-in config; the bad key is the environment's all the same
    monkeypatch.setenv("TINYARMS_RULES__SIMPLE_DRY__PARAMS__MIN_LOGIC", "0")
    with pytest.raises(ConfigError) as error:
        load_settings(None)
    [problem] = error.value.problems
    assert problem.startswith("environment (TINYARMS_*):1: rules.simple-dry.params.min_logic:"), problem


def test_unknown_skill_and_rule_selection_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    result = run_cli("lint", "--skill", "code-linting-fats", "a.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown skill 'code-linting-fats' (did you mean 'code-linting-fast'?)" in result.stderr
    result = run_cli("lint", "--select", "magic-number", "a.py", cwd=tmp_path)
    assert result.returncode == 2 and "--select: no rule 'magic-number'" in result.stderr


def test_a_layer_may_change_one_model_of_a_level(repo: Path) -> None:
    (repo / ".tinyarms.yaml").write_text("models:\n  fast: {embedded: ./models/mine.gguf}\n")
    models = load_settings(repo).config.models
    assert models.fast.embedded == "./models/mine.gguf"
    assert models.fast.ollama == "qwen2.5-coder:3b" and models.deep.embedded == "qwen2.5-coder:1.5b"


def test_ollama_host_from_the_environment_over_the_user_config(isolated_env: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    user = isolated_env / "user.yaml"
    user.write_text("models:\n  ollama: {host: 'http://gpu-box:11434'}\n")
    monkeypatch.setenv("TINYARMS_CONFIG", str(user))
    assert load_config(None).config.models.ollama.host == "http://gpu-box:11434"
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9999")  # as Ollama's own tools take it: no scheme
    assert load_config(None).config.models.ollama.host == "http://127.0.0.1:9999"
    monkeypatch.setenv("TINYARMS_MODELS__OLLAMA__HOST", "http://other:1")  # tinyarms' own variable is more specific
    assert load_config(None).config.models.ollama.host == "http://other:1"


def test_the_default_schedule_parses_though_the_config_does_not_parse_it_on_every_load() -> None:
    # The config skips parsing its default cron (APScheduler's import is a tenth of a cached lint),
    # so the default itself must be a valid expression, and the shipped config must use it.
    import yaml

    from tinyarms.config import DEFAULT_CRON
    from tinyarms.cron import trigger
    from tinyarms.resources import data_dir

    assert trigger(DEFAULT_CRON) is not None
    shipped = yaml.safe_load((data_dir("config") / "default.yaml").read_text())
    assert shipped["schedule"]["cron"] == DEFAULT_CRON


def test_a_rule_set_that_has_matched_paths_still_pickles(tmp_path: Path) -> None:
    # The daemon lints big batches in spawned worker processes, which get the rule set pickled:
    # the remembered glob matchers and rules per file must travel with it (a lambda did not).
    import pickle

    (tmp_path / ".tinyarms.yaml").write_text("rules:\n  file-size: {exclude: ['gen/**', '!gen/keep.py']}\n")
    ruleset = load_settings(tmp_path).ruleset
    before = {rel: [r.id for r in ruleset.rules_for(rel, "python")]
              for rel in ("app.py", "tests/test_app.py", "gen/x.py", "gen/keep.py")}
    copy = pickle.loads(pickle.dumps(ruleset))
    assert copy._rules_for == {}  # what one process remembered per file does not travel
    assert {rel: [r.id for r in copy.rules_for(rel, "python")] for rel in before} == before
    assert "magic-numbers" not in before["tests/test_app.py"] and "file-size" not in before["gen/x.py"]
    assert "file-size" in before["gen/keep.py"]
