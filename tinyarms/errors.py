"""Errors the command line turns into exit codes; importable without any dependency."""

from __future__ import annotations

from collections.abc import Sequence

EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped with Ctrl-C


class ConfigError(Exception):
    """A usage, config or skill error: exit code 2. Carries every problem found, not just one."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
