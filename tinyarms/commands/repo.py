"""``tinyarms repo add|remove|list [PATH]``: the repositories the daemon watches and deep-scans.

PATH defaults to the current directory; any path inside a repository names the repository (its
top level). A running daemon picks a change up by itself within a second or two.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinyarms.stores import repos


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "remove", "list"))
    parser.add_argument("path", nargs="?", type=Path, metavar="PATH",
                        help="a path inside the repository (default: the current directory)")
    parser.add_argument("--json", action="store_true", help="list: machine-readable output")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        if args.path is not None:
            print("tinyarms: error: repo list takes no PATH", file=sys.stderr)
            return 2
        registered = repos.read()
        if not registered and not args.json:
            print("tinyarms: no watched repositories; add one with `tinyarms repo add [PATH]`", file=sys.stderr)
        if args.json:
            print(json.dumps([{"path": str(r), "exists": r.is_dir()} for r in registered], indent=2))
        else:
            for repo in registered:
                print(repo if repo.is_dir() else f"{repo}  (missing)")
        return 0
    path = args.path if args.path is not None else Path.cwd()
    if args.action == "add":
        top, new = repos.add(path)
        print(f"tinyarms: {'watching' if new else 'already watching'} {top}", file=sys.stderr)
        return 0
    removed = repos.remove(path)
    if removed is None:
        # as `hook uninstall` without a hook: nothing to do is not an error
        print(f"tinyarms: {path} was not a watched repository (see `tinyarms repo list`)", file=sys.stderr)
        return 0
    print(f"tinyarms: no longer watching {removed}", file=sys.stderr)
    return 0
