"""The daemon's settings, per repository and option set: loaded once, re-read when a config or
skill file they are made from changes, and kept running when the change fails to load.

A failed reload keeps the previous settings: the error goes to ``status`` and to the warnings of
each reply that used them, and the daemon stays up. Only ``SETTINGS_KEPT`` are held, the least
recently loaded dropped first, so a client varying its options cannot grow the daemon forever.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyarms import lintjob
from tinyarms.errors import ConfigError
from tinyarms.log import get_logger
from tinyarms.ruleset import Settings

SETTINGS_KEPT = 64  # repos x option sets: one client varying its options must not grow us forever

# (path, mtime_ns, size) of every file settings are made from; None where it could not be read
Stamp = tuple[tuple[str, int | None, int | None], ...]


@dataclass(slots=True)
class _Loaded:
    settings: Settings
    stamp: Stamp


class SettingsCache:
    """Settings by repository and options, each with the stamp of its files; thread-safe."""

    def __init__(self) -> None:
        self.log = get_logger(component="daemon")
        self._loaded: dict[tuple[Any, ...], _Loaded] = {}
        self._lock = threading.Lock()
        self.reload_errors: dict[str, str] = {}

    def get(self, job: lintjob.LintJob, cwd: Path) -> tuple[Settings, list[str]]:
        """Settings for this repo and these options, re-read when a config or skill file changed,
        and the warnings for the reply.

        A change that fails to load keeps the previous settings running: the error goes to
        ``status`` and to this reply's warnings, and the daemon stays up."""
        job.root = lintjob.find_root(job, cwd)
        key = job.settings_key()
        stamp = _stamp(job.root)
        with self._lock:
            loaded = self._loaded.get(key)
        if loaded is not None and loaded.stamp == stamp:
            return loaded.settings, self._reload_warning(job.root)
        try:
            # The request's budget is applied per lint (lintjob.execute), not baked into settings
            # shared with requests that have another.
            settings = lintjob.load(dataclasses.replace(job, budget=None), cwd)
        except ConfigError as exc:
            if loaded is None:
                raise
            self.reload_errors[str(job.root)] = "\n".join(exc.problems)
            self.log.warning("reload_failed", root=str(job.root), problems=exc.problems)
            return loaded.settings, self._reload_warning(job.root)
        with self._lock:
            self._loaded.pop(key, None)
            self._loaded[key] = _Loaded(settings, stamp)
            while len(self._loaded) > SETTINGS_KEPT:  # the least recently loaded go first
                del self._loaded[next(iter(self._loaded))]
            self.reload_errors.pop(str(job.root), None)
        return settings, []

    def for_watch(self, root: Path, env: dict[str, str]) -> Settings:
        """The settings a background lint of ``root`` uses (the watcher's), with the same reload rules."""
        return self.get(lintjob.LintJob(root=root, env=env), root)[0]

    def clear(self) -> None:
        """Forget every loaded settings and reload error (op ``reload``)."""
        with self._lock:
            self._loaded.clear()
            self.reload_errors.clear()

    def status(self) -> dict[str, Any]:
        """The ``config`` section of ``status``."""
        with self._lock:
            loaded = list(self._loaded.values())
        return {
            "repos_loaded": sorted({str(entry.settings.root) for entry in loaded if entry.settings.root}),
            "files": sorted({layer.source for entry in loaded for layer in entry.settings.loaded.layers}),
            "skills": sorted({name for entry in loaded for name in entry.settings.skills}),
            "reload_errors": dict(self.reload_errors),
            "settings_cached": len(loaded),
        }

    def _reload_warning(self, root: Path | None) -> list[str]:
        error = self.reload_errors.get(str(root))
        return [f"config change not applied, still using the previous config:\n{error}"] if error else []


def _stamp(root: Path | None) -> Stamp:
    """mtimes and sizes of every file settings are made from; a change in any means reload."""
    from tinyarms import resources
    from tinyarms.config import REPO_CONFIG, user_config_path

    paths = [user_config_path(), *sorted(resources.data_dir("skills").glob("*.yaml")),
             resources.data_dir("config") / "default.yaml"]
    if root is not None:
        paths += [root / REPO_CONFIG, *sorted((root / ".tinyarms" / "skills").glob("*.yaml"))]
    stamp: list[tuple[str, int | None, int | None]] = []
    for path in paths:
        try:
            st = path.stat()
            stamp.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((str(path), None, None))
    return tuple(stamp)
