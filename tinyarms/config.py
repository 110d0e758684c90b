"""Configuration: its schema, its layers, and where each layer lives.

Layers, later wins: built-in ``config/default.yaml`` < user config < repo ``.tinyarms.yaml`` <
environment (``TINYARMS_*``, ``OLLAMA_HOST``) < command-line flags. Each layer is validated on
its own, so an error names the file (or variable) it came from; mappings merge key by key and
lists replace. Unknown keys are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from tinyarms import resources
from tinyarms.errors import ConfigError
from tinyarms.paths import ENV_PREFIX, is_config_env
from tinyarms.skills import REPO_SKILLS, Glob, LanguageName, Severity
from tinyarms.units import HOUR, MINUTE
from tinyarms.yamlio import Document, load_file, load_text, validation_problems

REPO_CONFIG = ".tinyarms.yaml"
_RULE_KEYS = 3  # TINYARMS_RULES__<ID>__<FIELD>
# Where code and API keys are sent is the user's to choose (user config, environment, flags), never
# a cloned repository's: its .tinyarms.yaml could point the OpenAI backend at its own server and
# name AWS_SECRET_ACCESS_KEY as the variable whose value goes out as the bearer token.
USER_ONLY = (("models", "openai", "base_url"), ("models", "openai", "api_key_env"), ("models", "ollama", "host"))


class RuleOverride(BaseModel):
    """What ``.tinyarms.yaml`` may change about a rule, by id."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    severity: Severity | None = None
    message: str | None = None
    suggestion: str | None = None
    languages: list[LanguageName] | None = None
    files: list[Glob] | None = None
    exclude: list[Glob] | None = None
    params: dict[str, Any] | None = None


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idle_timeout: float | None = Field(None, gt=0, description="seconds without requests before the daemon exits")
    request_timeout: float = Field(10.0, gt=0, description="seconds a client may take to send its request")


class LevelModels(BaseModel):
    """The model a level uses on each backend (names differ between Ollama and GGUF files)."""

    model_config = ConfigDict(extra="forbid")

    # Optional so a layer may change one (`fast: {embedded: ./my.gguf}`); the built-in layer sets all.
    ollama: str | None = None
    embedded: str | None = None
    openai: str | None = None


class OllamaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "http://127.0.0.1:11434"
    keep_alive: str = "10m"
    timeout: float = Field(120.0, gt=0, description="seconds for one request; the budget cuts pre-commit shorter")


class OpenAIConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description="e.g. http://gpu-box:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key, if any")
    timeout: float = Field(120.0, gt=0)


def _seconds(value: Any) -> Any:
    """'90', '30s', '5m', '1h' -> seconds; numbers pass through (pydantic checks the rest)."""
    if isinstance(value, str):
        text = value.strip().lower()
        unit = {"s": 1, "m": MINUTE, "h": HOUR}.get(text[-1:])
        try:
            return float(text[:-1]) * unit if unit else float(text)
        except ValueError:
            return value
    return value


Duration = Annotated[float, BeforeValidator(_seconds)]


class EmbeddedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_ctx: int = Field(4096, ge=512)
    threads: int | None = Field(None, ge=1, description="null: every core")
    idle_unload: float | None = Field(None, gt=0,
                                      description="deprecated: models.keep_alive, for the embedded backend only")


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "ollama", "embedded", "openai", "none"] = "auto"
    fast: LevelModels = LevelModels(ollama="qwen2.5-coder:3b", embedded="qwen2.5-coder:0.5b", openai="qwen2.5-coder:3b")
    deep: LevelModels = LevelModels(ollama="qwen2.5-coder:7b", embedded="qwen2.5-coder:1.5b", openai="qwen2.5-coder:7b")
    ollama: OllamaConfig = OllamaConfig()
    openai: OpenAIConfig = OpenAIConfig()
    embedded: EmbeddedConfig = EmbeddedConfig()
    keep_alive: Duration = Field(300.0, gt=0, description="seconds (or 30s, 5m, 1h) an embedded model's worker "
                                 "process stays loaded unused before it exits and frees its memory, as Ollama's")
    preload: bool = Field(True, description="the daemon loads the embedded fast model when it starts, so the "
                          "first commit does not spend its budget on the load")
    concurrency: int = Field(1, ge=1, le=16, description="model requests in flight at once per backend")
    min_confidence: float = Field(0.5, ge=0, le=1, description="model findings below this become info")
    max_candidates: int = Field(8, ge=1, description="model questions per file and rule within a commit's budget")
    question: Literal["auto", "report", "yes-no"] = Field(
        "auto", description="how a candidate with a claim (a clone pair, a value equal to a token, a cross-file "
        "pair) is asked about: report = list the violations as JSON; yes-no = is the claim a violation, yes or no; "
        "auto = yes-no for the embedded backend's small models (measured better by `tinyarms eval`), report otherwise")
    verdict: Literal["probability", "answer", "finder"] = Field(
        "probability", description="how a yes/no question is answered where the backend gives log probabilities "
        "(the embedded one): probability = P(yes) from the first token of the answer, a finding at the rule's "
        "threshold, one forward pass and no generation; answer = the generated word; finder = no question: "
        "each candidate of the per-file claim finders (simple-dry's clone pairs, design-tokens' values) is a "
        "finding, no model needed, as `tinyarms eval --backend none` measures them")
    thresholds: dict[str, dict[str, float]] = Field(
        {}, description="P(yes) a claim needs to be a finding, per rule and model: {simple-dry: {qwen2.5-coder:0.5b: "
        "0.47}}; unset: the thresholds fitted by `tinyarms eval --calibrate` for the built-in models, else 0.5")
    confirm: bool = Field(False, description="ask a second, narrower yes/no question about each model finding "
                          "and drop the ones the model does not confirm (precision before recall)")
    embed_model: str | None = Field(
        "nomic-embed-text", description="Ollama embedding model that finds cross-file candidate pairs (Level 1) "
        "in deep scans; null, or not pulled: token shingles find them")


def question_mode(config: ModelsConfig, backend: str | None) -> str:
    """``models.question`` for the chosen backend: what ``auto`` means there."""
    if config.question != "auto":
        return config.question
    return "yes-no" if backend == "embedded" else "report"


class ScheduleGates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ac_power: bool = Field(True, description="only on AC power (no battery counts as AC)")
    idle_minutes: float = Field(10.0, ge=0, description="minutes since the last commit")
    max_cpu_percent: float = Field(50.0, gt=0, le=100)
    min_free_memory_mb: int = Field(2500, ge=0, description="free memory the deep model needs")


DEFAULT_CRON = "0 2 * * sun"  # the weekly deep scan: Sunday 02:00, local time

class ScheduleConfig(BaseModel):
    """The weekly deep scan of the watched repositories, run by the daemon."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    cron: str = Field(DEFAULT_CRON, description="local time; 5 fields, or 6 with seconds first")
    misfire_grace: float = Field(7 * 24 * 3600.0, gt=0, description="seconds a missed slot is still run after")
    retry_every: float = Field(900.0, gt=0, description="seconds between gate checks while waiting")
    give_up_after: float = Field(6 * 3600.0, gt=0, description="seconds of failed gates before this slot is skipped")
    gates: ScheduleGates = ScheduleGates()

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str) -> str:
        if value == DEFAULT_CRON:
            return value  # known good: a lint need not import APScheduler to read the default config
        from tinyarms.cron import trigger

        try:
            trigger(value)
        except ValueError as exc:
            raise ValueError(f"not a cron expression: {exc}") from None
        return value


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_on: Literal["error", "warning", "never"] = "warning"
    skills: list[str] | None = Field(
        None, description="skills `tinyarms lint` runs; null = code-linting-fast plus the repo's own skills"
    )
    exclude: list[Glob] = []
    max_file_bytes: int = Field(1 << 20, ge=1)
    budget: float = Field(5.0, gt=0)
    on_model_unavailable: Literal["skip", "fail"] = "skip"
    cache: bool = True
    rules: dict[str, RuleOverride] = {}
    daemon: DaemonConfig = DaemonConfig()
    models: ModelsConfig = ModelsConfig()
    schedule: ScheduleConfig = ScheduleConfig()


@dataclass(slots=True)
class Layer:
    source: str  # a file path, "environment" or "command line"
    doc: Document


@dataclass(slots=True)
class LoadedConfig:
    config: Config
    layers: list[Layer] = field(default_factory=list)


def user_config_path() -> Path:
    explicit = os.environ.get("TINYARMS_CONFIG")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_config_dir("tinyarms", appauthor=False)) / "config.yaml"


def find_root(start: Path) -> Path | None:
    """The nearest ancestor holding ``.tinyarms.yaml``, ``.tinyarms/skills`` or ``.git``: the
    project root. The skills folder counts on its own: outside a git repository, a project's
    skills would otherwise be ignored without a word."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / REPO_CONFIG).is_file() or (folder / REPO_SKILLS).is_dir() or (folder / ".git").exists():
            return folder
    return None


def load_config(root: Path | None, cli: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> LoadedConfig:
    layers = [_file_layer(resources.data_dir("config") / "default.yaml", "<built-in>/config/default.yaml")]
    user = user_config_path()
    if user.is_file():
        layers.append(_file_layer(user, str(user)))
    problems: list[str] = []
    if root is not None and (root / REPO_CONFIG).is_file():
        layers.append(_file_layer(root / REPO_CONFIG, str(root / REPO_CONFIG)))
        problems += _user_only_keys(layers[-1].doc)
    layers.append(env_layer(os.environ if env is None else env))
    if cli:
        layers.append(Layer("command line", Document("command line", cli, {(): 1})))

    merged: dict[str, Any] = {}
    for layer in layers:
        data = layer.doc.data
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(f"{layer.doc.path}:1: config must be a mapping of keys to values")
            continue
        try:
            Config.model_validate(data)
        except ValidationError as exc:
            problems += validation_problems(layer.doc, exc)
            continue
        merged = merge(merged, data)
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(Config.model_validate(merged), layers)


def _user_only_keys(doc: Document) -> list[str]:
    problems = []
    for loc in USER_ONLY:
        data = doc.data
        for key in loc:
            data = data.get(key) if isinstance(data, dict) else None
        if data is not None:
            variable = ENV_PREFIX + "__".join(k.upper() for k in loc)
            problems.append(
                f"{doc.path}:{doc.line_of(loc)}: {'.'.join(loc)}: a repository's config may not choose where code and "
                f"API keys are sent; set it in your user config ({user_config_path()}) or {variable}")
    return problems


def _file_layer(path: Path, shown: str) -> Layer:
    return Layer(shown, load_file(path, shown))


def env_layer(environ: dict[str, str] | os._Environ[str]) -> Layer:
    """``TINYARMS_FAIL_ON=error``; nested keys with ``__``: ``TINYARMS_RULES__FILE_SIZE__ENABLED=false``.
    ``OLLAMA_HOST``, as Ollama's own tools read it, sets ``models.ollama.host``."""
    data: dict[str, Any] = {}
    if environ.get("OLLAMA_HOST"):
        host = environ["OLLAMA_HOST"]
        data["models"] = {"ollama": {"host": host if "://" in host else f"http://{host}"}}
    lines: dict[tuple[str | int, ...], int] = {(): 1}
    for name in sorted(environ):
        if not is_config_env(name):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__")]
        if len(keys) >= _RULE_KEYS and keys[0] == "rules":  # rule ids use dashes, env names cannot
            keys[1] = keys[1].replace("_", "-")
        try:
            value = load_text(environ[name], name).data
        except ConfigError:  # not YAML (or a hostile one): the plain string, validated as such
            value = environ[name]
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                break
        else:
            target[keys[-1]] = value
    return Layer("environment", Document("environment (TINYARMS_*)", data, lines))


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
