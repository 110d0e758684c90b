"""``--format json``: the LintResult contract itself (DESIGN.md, "Finding"), nothing added.

Scripts parse this, so it is exactly ``LintResult.to_dict()``; non-ASCII stays readable. It is
compact, one line, as ESLint's ``--format json`` is: an indent would make the standard library's
encoder fall back to pure Python, 5x slower on 11,000 findings (``jq .`` indents it for reading).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

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
    for finding in data["findings"]:
        # NaN or infinity would be written as bare NaN/Infinity, which no strict JSON parser reads.
        if not math.isfinite(finding["confidence"]):
            finding["confidence"] = None
    return escape_surrogates(json.dumps(data, ensure_ascii=False, separators=(",", ":"))) + "\n"
