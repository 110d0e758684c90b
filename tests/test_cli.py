import subprocess
import sys

# What every command pays before it runs, lint and `daemon status` alike: building the parser
# imports each subcommand's module, so their heavy imports must wait until their run().
HEAVY = (
    "asyncio", "pydantic", "yaml", "tree_sitter", "apscheduler", "tinyarms.quality.bench", "tinyarms.models.answer",
)


def test_building_the_parser_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from tinyarms.cli import build_parser\n"
        "build_parser()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

