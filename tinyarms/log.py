"""Logging through structlog: readable on a terminal, JSON lines in a file for the daemon."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO, cast

_configured = False
_verbosity = 0


def set_verbosity(verbosity: int) -> None:
    """Remember the level; structlog is imported only when something is logged."""
    global _verbosity  # noqa: PLW0603 - process-wide, set once from the command line
    _verbosity = verbosity


def verbose() -> bool:
    """Whether ``-v`` was given: callers skip building info lines (and importing structlog) otherwise."""
    return _verbosity > 0


def configure(verbosity: int = 0) -> None:
    """Human-readable lines on stderr. verbosity: -1 quiet (errors only), 0 warnings, 1 info, 2+ debug."""
    global _configured  # noqa: PLW0603 - structlog's configuration is process-wide too
    import structlog

    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # structlog only writes and flushes: _Stderr is all the TextIO it uses
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Stderr())),
        cache_logger_on_first_use=False,
    )
    _configured = True


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (tests and tools swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def get_logger(**bound: Any) -> Any:
    if not _configured:
        configure(_verbosity)
    import structlog

    return structlog.get_logger("tinyarms", **bound)


LOG_MAX_BYTES = 5 << 20
LOG_BACKUPS = 3


def configure_daemon(path: Any) -> None:
    """The daemon logs JSON lines to a rotating file under the state directory."""
    global _configured  # noqa: PLW0603 - structlog's configuration is process-wide too
    import logging.handlers

    import structlog
    import structlog.tracebacks

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tinyarms")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if _verbosity <= 0 else logging.DEBUG)
    logger.propagate = False
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            # Tracebacks without local variables: they would copy users' code into the log.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logger.level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    _configured = True
