"""The rules reference, generated from the skill YAML (the table in docs/skills.md is this output)."""

from __future__ import annotations

from tinyarms.skills import Skill


def rules_markdown(skills: list[Skill], *, anchors: bool = False) -> str:
    """The rules reference as Markdown tables, one per skill. ``anchors``: each rule's row gets an
    HTML anchor, ``#rule-ID``, that the documentation site and the language server link to."""
    out = []
    for skill in skills:
        out.append(f"### `{skill.name}`\n\n{skill.description.strip()}\n")
        out.append("| rule | level | engine | severity | languages | what it finds |")
        out.append("|---|---|---|---|---|---|")
        for rule in skill.rules:
            languages = ", ".join(rule.languages) or "any"
            description = " ".join(rule.description.split()).replace("|", "\\|")
            anchor = f'<a id="rule-{rule.id}"></a>' if anchors else ""
            out.append(f"| {anchor}`{rule.id}` | {rule.level} | {rule.engine} | {rule.severity} | {languages} "
                       f"| {description} |")
        out.append("")
    return "\n".join(out) + "\n"
