from tests.conftest import LintCode, at

RULE = "magic-numbers"


def values(findings):
    return [(f.line, f.column, f.message.split()[2].rstrip(";")) for f in findings]


def test_python_flags_unnamed_numbers_only(lint_code: LintCode) -> None:
    code = (
        "import enum\n"
        "MAX_RETRIES = 5\n"
        "TIMEOUT: float = 2.5 * 60\n"
        "SIZES = (8, 32)\n"
        "class Color(enum.Enum):\n"
        "    RED = 3\n"
        "def fetch(url, retries=7, *, backoff: float = 1.5):\n"
        "    for attempt in range(retries * 3):\n"
        "        wait(attempt, jitter=0.25)\n"
        "    return data[3] + data[1:9] + 42 - 1\n"
        "x = -1\n"
        "y = -17\n"
    )
    assert values(lint_code(code, "pkg/net.py", rule=RULE)) == [
        (*at(code, 8, "3"), "3"), (*at(code, 10, "42"), "42"), (*at(code, 12, "-17"), "-17"),
    ]


def test_js_ts_constants_defaults_enums_indexes_and_literal_types(lint_code: LintCode) -> None:
    code = (
        "const TIMEOUT_MS = 3000;\n"
        "const timeoutMs = 4500;\n"
        "let delay = 250;\n"
        "enum Level { Low = 3, High = 9 }\n"
        "type Dice = 4 | 6;\n"
        "function f(a: number = 7, b = 8) { return xs[5] + a * 13; }\n"
        "class K { static readonly LIMIT = 40; width = 640; }\n"
        "setTimeout(refresh, 4999);\n"
    )
    assert values(lint_code(code, "src/a.ts", rule=RULE)) == [
        (*at(code, line, v), v) for line, v in ((3, "250"), (6, "13"), (7, "640"), (8, "4999"))
    ]


def test_allow_list_matches_by_value_and_is_configurable(lint_code: LintCode) -> None:
    code = "a = 0x10 + 1.0 + 1_000 + 100.0\nb = 7\n"
    assert values(lint_code(code, "m.py", rule=RULE)) == [(2, 5, "7")]
    assert values(lint_code(code, "m.py", rule=RULE, params={"allow": [7]})) == [
        (*at(code, 1, v), v) for v in ("0x10", "1.0", "1_000", "100.0")
    ]


def test_tests_are_exempt(lint_code: LintCode) -> None:
    code = "assert add(2, 40) == 42\n"
    assert lint_code(code, "tests/test_add.py", rule=RULE) == []
    assert lint_code(code.replace("assert", "expect("), "src/add.test.ts", rule=RULE) == []
    assert len(lint_code(code, "src/add.py", rule=RULE)) == 2


def test_jsx_props_do_not_name_their_numbers(lint_code: LintCode) -> None:
    # as in ESLint's no-magic-numbers: the prop says where a number goes, not what it means
    code = (
        "export const F = () => (\n"
        "  <form>\n"
        "    <input maxLength={10} tabIndex={-1} />\n"
        "    <Chart data={[1, 2, 3]} height={100} />\n"
        "  </form>\n"
        ");\n"
    )
    assert values(lint_code(code, "F.tsx", rule=RULE)) == [(*at(code, 3, "10"), "10"), (*at(code, 4, "3"), "3")]
    assert values(lint_code(code, "F.jsx", rule=RULE)) == [(*at(code, 3, "10"), "10"), (*at(code, 4, "3"), "3")]


def test_destructuring_defaults_are_named(lint_code: LintCode) -> None:
    code = (
        "const Bars = ({ barWidth = 3, fftSize = 256, offset = -8 }) => null;\n"
        "function poll({ retries = 5, backoff: { factor = 1.5 } } = {}) {}\n"
        "const { gap = 14, radius: r = 6 } = props;\n"
        "const [first = 7] = queue;\n"
        "const { limit } = props, pageSize = limit * 25;\n"
    )
    for path in ("src/bars.js", "src/bars.ts", "src/Bars.tsx"):
        assert values(lint_code(code, path, rule=RULE)) == [(*at(code, 5, "25"), "25")]


def test_lower_case_const_names_only_a_value_made_of_literals(lint_code: LintCode) -> None:
    code = (
        "const value = data[i] || 0.1;\n"
        "const scaled = width * 0.75 + margin;\n"
        "const fallback = 0.1;\n"
        "const RATIO = 16 / 9;\n"
        "const ratio = 16 / 9;\n"
        "const sizes = [8, 16];\n"
        "const steps = { small: 4, large: 32 } as const;\n"
        "const MIN_WIDTH = base + 40;\n"
        "class K { readonly scale = 2.5; readonly shift = n * 3; }\n"
    )
    assert values(lint_code(code, "src/layout.ts", rule=RULE)) == [
        (*at(code, 1, "0.1"), "0.1"), (*at(code, 2, "0.75"), "0.75"), (*at(code, 9, "3;"), "3"),
    ]


def test_python_assignments_are_named_by_upper_case_names_only(lint_code: LintCode) -> None:
    code = "value = data[i] or 0.1\nratio = 16 / 9\nRATIO = 16 / 9\nLIMIT = base + 40\n"
    assert values(lint_code(code, "layout.py", rule=RULE)) == [
        (*at(code, 1, "0.1"), "0.1"), (*at(code, 2, "9"), "9"),
    ]


def test_python_annotations_and_class_field_defaults(lint_code: LintCode) -> None:
    code = (
        "class Options:\n"
        "    level: Literal[0, 2, 3] = 3\n"
        "    retries: int = 4\n"
        "    window = 30\n"  # a class attribute names its value (subclasses override it)
        "    scale = window * 3\n"  # not made of literals alone
        "def f():\n"
        "    count: int = 5\n"  # an annotated local is not a field
        "    size = 7\n"  # nor is a local
    )
    assert values(lint_code(code, "opts.py", rule=RULE)) == [
        (*at(code, 5, "3"), "3"), (*at(code, 7, "5"), "5"), (*at(code, 8, "7"), "7"),
    ]


def test_an_index_is_named_arithmetic_inside_one_is_not(lint_code: LintCode) -> None:
    code = (
        "import sys\n"
        "if sys.version_info >= (3, 8):\n"  # a Python version, named by what it is compared with
        "    cube = levels[3] + levels[1:9] + levels[(i // 36) % 6]\n"
        "if count >= (3, 8):\n"
        "    pass\n"
    )
    assert values(lint_code(code, "colour.py", rule=RULE)) == [
        (*at(code, 3, "36"), "36"), (*at(code, 3, "6]"), "6"), (*at(code, 4, "3,"), "3"), (*at(code, 4, "8)"), "8"),
    ]


def test_a_field_calls_first_argument_is_the_attributes_default(lint_code: LintCode) -> None:
    code = (
        "class Options(BaseModel):\n"
        "    timeout: float = Field(10.0, gt=0, description='seconds')\n"
        "    retries: int = attrs.field(3)\n"
        "    window = Field(30)\n"  # no annotation: no field
        "    def f(self) -> None:\n"
        "        self.pool = Pool(8, 2)\n"
        "limit: int = Field(40)\n"  # not in a class body
    )
    assert values(lint_code(code, "opts.py", rule=RULE)) == [
        (*at(code, 4, "30"), "30"), (*at(code, 6, "8"), "8"), (*at(code, 7, "40"), "40"),
    ]
