"""Rewrite the rules reference in docs/skills.md from the built-in skill YAML (`tinyarms rules`)."""

from __future__ import annotations

import re
from pathlib import Path

from tinyarms.docs import rules_markdown
from tinyarms.skills import BUILTIN_SKILLS, load_skills

PAGE = Path(__file__).resolve().parent.parent / "docs" / "skills.md"
BLOCK = re.compile(r"(<!-- rules:start -->\n).*?(<!-- rules:end -->)", re.S)


def generated() -> str:
    skills = load_skills(None)
    return rules_markdown([skills[name][0] for name in BUILTIN_SKILLS], anchors=True)


def rules_block(text: str) -> str:
    match = BLOCK.search(text)
    if match is None:
        raise SystemExit("docs/skills.md has no <!-- rules:start --> ... <!-- rules:end --> block")
    return text[match.end(1) : match.start(2)]


def main() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rules_block(text)
    PAGE.write_text(BLOCK.sub(lambda m: m.group(1) + generated() + m.group(2), text), encoding="utf-8")


if __name__ == "__main__":
    main()
