"""``--format json``: the LintResult contract itself (DESIGN.md, "Finding"), nothing added.

Scripts parse this, so it is exactly ``LintResult.to_dict()``; non-ASCII stays readable. It is
compact, one line, as ESLint's ``--format json`` is (``jq .`` indents it for reading), and written
by orjson: 11,000 findings took the standard library's encoder a tenth of a cached lint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from tinyarms.render import escape_surrogates

if TYPE_CHECKING:
    from tinyarms.finding import LintResult, RuleMeta


def render(
    result: LintResult,
    rules: Mapping[str, RuleMeta],
    *,
    fail_on: str = "warning",
    color: bool = False,
) -> str:
    data = result.to_dict()
    try:
        # orjson writes NaN and infinity as null: no strict JSON parser reads bare NaN/Infinity.
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (a file name that is not UTF-8): written as an escape
        for finding in data["findings"]:
            if not math.isfinite(finding["confidence"]):
                finding["confidence"] = None
        return escape_surrogates(json.dumps(data, ensure_ascii=False, separators=(",", ":"))) + "\n"
