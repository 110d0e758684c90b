import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_rules_reference_matches_the_skill_yaml() -> None:
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts/update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = module.readme_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block == module.generated(), "README rules reference is stale: run python scripts/update_readme.py"
