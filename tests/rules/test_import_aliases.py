from pathlib import Path

from tests.conftest import LintCode, at

RULE = "import-aliases"


def test_deep_relative_js_imports_get_the_alias(lint_code: LintCode) -> None:
    code = (
        'import { fmt } from "../../utils/format";\n'
        'import x from "../sibling";\n'
        "export { y } from '../../lib/y';\n"
        'const z = require("../../../src/z");\n'
        'const w = await import("../../utils/w");\n'
    )
    found = lint_code(code, "src/features/cart/Cart.tsx", rule=RULE)
    assert [(f.line, f.column, f.suggestion) for f in found] == [
        (*at(code, 1, '"'), "import from '@/utils/format'"),
        (*at(code, 3, "'"), "import from '@/lib/y'"),
        (*at(code, 4, '"'), "import from '@/z'"),
        (*at(code, 5, '"'), "import from '@/utils/w'"),
    ]


def test_no_finding_when_no_alias_covers_the_target(lint_code: LintCode) -> None:
    assert lint_code('import a from "../../shared/a";\n', "app/x/y/z.ts", rule=RULE) == []


def test_tsconfig_paths_are_aliases(lint_code: LintCode, tmp_path: Path) -> None:
    (tmp_path / "tsconfig.json").write_text(
        '{\n  // comments are allowed\n'
        '  "compilerOptions": {"baseUrl": ".", "paths": {"~lib/*": ["./packages/lib/*"],},},\n}\n'
    )
    found = lint_code('import a from "../../lib/a";\n', "packages/app/x/y.ts", rule=RULE, root=str(tmp_path))
    assert [f.suggestion for f in found] == ["import from '~lib/a'"]


def test_python_relative_imports_beyond_the_parent_package(lint_code: LintCode) -> None:
    code = "from . import a\nfrom ..b import c\nfrom ...core.models import User\n"
    [finding] = lint_code(code, "src/shop/cart/views/api.py", rule=RULE)
    assert (finding.line, finding.column) == at(code, 3, "...core")
    assert finding.suggestion == "from shop.core.models import ..."
