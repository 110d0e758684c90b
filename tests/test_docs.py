import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_rules_reference_matches_the_skill_yaml() -> None:
    spec = importlib.util.spec_from_file_location("update_docs", ROOT / "scripts/update_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = module.rules_block((ROOT / "docs" / "skills.md").read_text(encoding="utf-8"))
    assert block == module.generated(), "docs/skills.md rules reference is stale: run python scripts/update_docs.py"


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("Run the tests", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    install, test = (part.strip() for part in block.strip().split("&&"))
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test in ci, f"{test!r} is not a line of .ci/run"
    flags = 'CMAKE_ARGS="$(python3 tinyarms/models/buildflags.py)" '  # llama.cpp built for this CPU
    assert install.startswith(flags), install
    assert "CMAKE_ARGS=${CMAKE_ARGS:-$(python tinyarms/models/buildflags.py)}" in ci  # the same flags
    target = install.removeprefix(flags).removeprefix("pip install ")  # CI adds only -q, no version check
    assert any(line.startswith("python -m pip install ") and line.endswith(f" {target}") for line in ci), target


def test_readme_is_a_short_tour_whose_pages_are_all_in_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200, "the README is the short tour: the rest goes to docs/"
    linked = set(re.findall(r"\]\((docs/[^)#]+)", readme))
    assert linked and all((ROOT / target).is_file() for target in linked), linked
    nav = set(re.findall(r"^\s+- [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M))
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert nav == pages, f"pages not in mkdocs.yml's nav: {pages - nav}; nav entries with no page: {nav - pages}"
    assert {f"docs/{name}" for name in pages} <= linked | {"docs/index.md"}, "a page the README does not link"
