"""The state directory: everything tinyarms writes lives under one folder, private to the user."""

from __future__ import annotations

import os
from pathlib import Path

ENV_PREFIX = "TINYARMS_"
# Environment variables that locate things rather than set config keys.
ENV_RESERVED = frozenset({"TINYARMS_HOME", "TINYARMS_CONFIG", "TINYARMS_LOG_LEVEL", "TINYARMS_SERVICE",
                          "TINYARMS_MODEL_WORKER"})
_ENV_RESERVED_PREFIX = "TINYARMS_HOOK_"  # the git hook's own settings


def is_config_env(name: str) -> bool:
    """Whether an environment variable sets a config key (``TINYARMS_FAIL_ON``, ...)."""
    return name.startswith(ENV_PREFIX) and name not in ENV_RESERVED and not name.startswith(_ENV_RESERVED_PREFIX)


def state_dir(create: bool = True) -> Path:
    """``$TINYARMS_HOME``, else the per-user platform default (e.g. ``~/.local/state/tinyarms``)."""
    explicit = os.environ.get("TINYARMS_HOME")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_state_dir("tinyarms", appauthor=False))
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    return path


def cache_path() -> Path:
    return state_dir() / "cache.db"


def within(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` really is inside ``folder``, symlinks followed: a repository's link to
    a file elsewhere must not make tinyarms read that file."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
