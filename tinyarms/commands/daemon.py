"""``tinyarms daemon start|stop|restart|status|run``."""

from __future__ import annotations

import argparse
import sys

from tinyarms.commands.status import NOT_RUNNING
from tinyarms.paths import state_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("start", "stop", "restart", "status", "run"))


def run(args: argparse.Namespace) -> int:
    from tinyarms.daemon import control

    home = state_dir()
    if args.action == "run":
        from tinyarms.daemon import process

        return process.exit_now(process.run(home))
    if args.action in ("stop", "restart"):
        stopped = control.stop(home)
        if args.action == "stop":
            print("tinyarms daemon stopped" if stopped else "tinyarms daemon was not running", file=sys.stderr)
            return 0
    if args.action in ("start", "restart"):
        try:
            info = control.start(home)
        except RuntimeError as exc:
            print(f"tinyarms: error: {exc}", file=sys.stderr)
            return 1
        print(f"tinyarms daemon running (pid {info['result']['pid']}, socket {home / 'daemon.sock'})", file=sys.stderr)
        return 0
    # status: the short form; `tinyarms status` has everything
    pong = control.ping(home)
    if pong is None:
        print(f"tinyarms daemon is not running (state directory {home})", file=sys.stderr)
        return NOT_RUNNING
    print(f"tinyarms daemon running (pid {pong['result']['pid']}, version {pong['version']})")
    return 0
