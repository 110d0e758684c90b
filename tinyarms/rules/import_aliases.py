"""import-aliases: deep relative imports where the project has an alias for the target.

``import { fmt } from '../../utils/format'`` in ``src/features/cart/Cart.tsx`` becomes
``@/utils/format`` when ``@/`` maps to ``src/`` (the rule's ``aliases``, plus the
``compilerOptions.paths`` of the project's tsconfig.json or jsconfig.json). In Python, relative
imports that climb beyond the parent package (``from ...core import x``) become absolute.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from tinyarms.paths import within
from tinyarms.rules import Context, Hit, ImportAliasesParams
from tinyarms.source import Source


def check(src: Source, params: ImportAliasesParams, ctx: Context) -> Iterator[Hit]:
    if src.language == "python":
        yield from _python(src, params)
    elif src.language in ("javascript", "typescript", "tsx"):
        aliases = dict(params.aliases)
        if params.read_tsconfig and ctx.root:
            aliases.update(_tsconfig_aliases(ctx.root))
        yield from _javascript(src, params, aliases)


def _javascript(src: Source, params: ImportAliasesParams, aliases: dict[str, str]) -> Iterator[Hit]:
    directory = posixpath.dirname(src.rel)
    for node in src.captures("import"):
        spec = src.node_text(node)[1:-1]
        depth = 0
        while spec.startswith("../", depth * len("../")):
            depth += 1
        if depth < params.min_depth:
            continue
        target = posixpath.normpath(posixpath.join(directory, spec))
        if target.startswith("../"):
            continue  # outside the project: no alias can name it
        for alias, configured in sorted(aliases.items(), key=lambda kv: -len(kv[1])):
            folder = configured.strip("./") + "/" if configured.strip("./") else ""
            if (target + "/").startswith(folder):
                suggested = alias + target[len(folder):]
                yield Hit(node.start_byte, node.end_byte, {"value": spec, "alias": suggested},
                          suggestion=f"import from '{suggested}'")
                break


def _python(src: Source, params: ImportAliasesParams) -> Iterator[Hit]:
    parts = src.rel.split("/")[:-1]
    if parts and parts[0] in ("src", "lib"):
        parts = parts[1:]
    for node in src.captures("relative_import"):
        text = src.node_text(node)
        level = len(text) - len(text.lstrip("."))
        if level <= params.python_max_level:
            continue
        module = text[level:]
        suggestion = None
        if len(parts) >= level - 1:
            base = parts[: len(parts) - (level - 1)]
            absolute = ".".join(base + ([module] if module else []))
            if absolute:
                suggestion = f"from {absolute} import ..."
        yield Hit(node.start_byte, node.end_byte, {"value": text, "alias": suggestion or "an absolute import"},
                  suggestion=suggestion)


@lru_cache(maxsize=32)
def _tsconfig_aliases(root: str) -> dict[str, str]:
    """``"@/*": ["./src/*"]`` in compilerOptions.paths becomes ``{"@/": "src/"}``."""
    for name in ("tsconfig.json", "jsconfig.json"):
        path = Path(root, name)
        if path.is_symlink() and not within(path, root):
            continue  # a link out of the repository: its target is not the project's to read
        try:
            config = json.loads(_strip_jsonc(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        options = config.get("compilerOptions") if isinstance(config, dict) else None
        if not isinstance(options, dict):
            continue
        paths = options.get("paths")
        if not isinstance(paths, dict):
            continue
        base = options.get("baseUrl", ".") if isinstance(options.get("baseUrl", "."), str) else "."
        aliases = {}
        for key, targets in paths.items():
            if key.endswith("/*") and isinstance(targets, list) and targets and str(targets[0]).endswith("/*"):
                folder = posixpath.normpath(posixpath.join(base, str(targets[0])[:-2]))
                aliases[key[:-1]] = "" if folder == "." else folder + "/"
        return aliases
    return {}


def _strip_jsonc(text: str) -> str:
    """tsconfig.json allows comments and trailing commas; drop them outside strings."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))
