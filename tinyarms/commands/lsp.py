"""``tinyarms lsp``: a Language Server over stdio, backed by the daemon (docs/editors.md).

Its libraries (pygls, lsprotocol) are the ``lsp`` extra, imported here and nowhere else: the
hook and ``tinyarms lint`` never load them.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true",
                        help="talk LSP over stdin and stdout (the default and only transport; "
                             "accepted because editors pass it)")


def run(args: argparse.Namespace) -> int:
    try:
        from tinyarms.lsp import server
    except ImportError as exc:
        print(f"tinyarms: error: the language server needs the lsp extra ({exc.name} is missing): "
              "pip install 'tinyarms[lsp]'", file=sys.stderr)
        return 2
    return server.main()
