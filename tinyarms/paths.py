"""The state directory: everything tinyarms writes lives under one folder, private to the user."""

from __future__ import annotations

import os
from pathlib import Path

ENV_PREFIX = "TINYARMS_"
# Environment variables that locate things rather than set config keys.
ENV_RESERVED = frozenset({"TINYARMS_HOME", "TINYARMS_CONFIG", "TINYARMS_LOG_LEVEL", "TINYARMS_SERVICE",
                          "TINYARMS_MODEL_WORKER"})
_ENV_RESERVED_PREFIX = "TINYARMS_HOOK_"  # the git hook's own settings
PRIVATE_DIR = 0o700  # the state directory: the user's alone
_GROUP_OR_OTHER = 0o077  # permission bits for anyone but the user


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
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        if path.stat().st_mode & _GROUP_OR_OTHER:
            path.chmod(PRIVATE_DIR)
    return path


def cache_path() -> Path:
    return state_dir() / "cache.db"


def within(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` really is inside ``folder``, symlinks followed: a repository's link to
    a file elsewhere must not make tinyarms read that file."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
