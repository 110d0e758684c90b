"""The command line's side of the daemon: find it, ask it, replace it when it is stale.

Small and light on purpose (stdlib, ``protocol`` and ``paths``): when a daemon runs,
``tinyarms lint`` answers without importing the linter at all.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tinyarms import __version__, protocol
from tinyarms.paths import is_config_env, state_dir

CONNECT_TIMEOUT = 0.5
LINT_TIMEOUT = 300.0


def home() -> Path:
    return state_dir()


def connect(timeout: float = CONNECT_TIMEOUT, where: Path | None = None) -> protocol.Connection | None:
    """A connection to the running daemon, or None when none answers."""
    path = protocol.socket_path(where or home())
    try:
        return protocol.Connection(path, timeout)
    except OSError:
        return None


def ping(timeout: float = CONNECT_TIMEOUT, where: Path | None = None) -> dict[str, Any] | None:
    conn = connect(timeout, where)
    if conn is None:
        return None
    with conn:
        try:
            reply = conn.request({"op": "ping", "client_version": __version__})
        except (OSError, protocol.ProtocolError):
            return None
    return reply if reply.get("ok") else None


def client_env() -> dict[str, str]:
    """The settings this shell gives: the daemon's own environment is not the user's shell's."""
    return {k: v for k, v in os.environ.items() if is_config_env(k) or k == "OLLAMA_HOST"}


def lint_through_daemon(args: argparse.Namespace, color: bool) -> tuple[str, int] | None:
    """(output, exit code) from the daemon, or None when no daemon serves (lint in process)."""
    conn = connect()
    if conn is None:
        return None
    request = {
        "op": "lint", "client_version": __version__, "cwd": os.getcwd(),
        "paths": args.paths, "staged": args.staged, "skill": args.skill, "select": args.select,
        "ignore": args.ignore, "fail_on": args.fail_on, "budget": args.budget,
        "baseline": str(args.baseline) if getattr(args, "baseline", None) else None,
        "report_unused": args.report_unused_ignores, "no_cache": args.no_cache,
        "format": args.format, "color": color, "env": client_env(),
    }
    try:
        with conn:
            reply = conn.request(request, timeout=LINT_TIMEOUT)
    except (OSError, protocol.ProtocolError):
        return None
    if reply.get("version") != __version__:
        # A daemon from before an upgrade: replace it, and lint in process this once.
        from tinyarms.daemon import control

        control.restart_in_background(home())
        return None
    if not reply.get("ok"):
        error = reply.get("error") or {}
        if error.get("code") == protocol.CONFIG_ERROR:
            from tinyarms.errors import ConfigError

            raise ConfigError(error.get("problems") or [error.get("message", "config error")])
        return None
    result = reply["result"]
    import sys

    for warning in result.get("warnings", []):
        print(f"tinyarms: warning: {warning}", file=sys.stderr)
    return result["output"], result["exit_code"]
