"""Where the built-in config and skills are: inside the installed package, or the checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """``config`` or ``skills``. A wheel carries them under ``tinyarms/_data``; a source checkout
    (editable install, tests) keeps them at the top of the repo, where users read them."""
    packaged = _PACKAGE / "_data" / kind
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / kind
