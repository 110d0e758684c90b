from tinyarms.candidates.simple_dry import find, token_lines
from tinyarms.source import make_source

TWINS = """\
import os
import sys


def total_eu(items):
    total = 0
    for item in items:
        total += item.price * item.qty
    return total * 1.2


def total_us(basket):
    amount = 0
    for entry in basket:
        amount += entry.cost * entry.count
    return amount * 1.08


A = 1
B = 2
C = 3
D = 4
E = 5
"""


def src(code: str, path: str = "m.py"):
    return make_source(path, path, code.encode())


def test_renamed_twin_blocks_are_one_candidate() -> None:
    [candidate] = find(src(TWINS), "simple-dry", 8)
    assert candidate.lines == ((5, 9), (12, 16))
    assert candidate.report == (12, 16)
    assert "simple-dry" in candidate.question and "line 12" in candidate.question
    assert candidate.where == "same logic as lines 5-9, in total_eu()"  # the finding's message says where


def test_the_other_copy_is_named_by_its_innermost_function_or_by_lines_alone() -> None:
    body = "    total = 0\n    for item in items:\n        total += item.price * item.qty\n    return total * 1.2\n"
    in_method = "class Cart:\n    def total(self, items):\n" + body.replace("    ", "        ", 1).replace(
        "\n    ", "\n        ") + "\n\ndef total_us(items):\n" + body
    [candidate] = find(src(in_method), "simple-dry", 8)
    assert candidate.where == "same logic as lines 2-6, in total()"  # signatures are one token: both def lines match
    top_level = "if True:\n" + body + "\n\ndef total_us(items):\n" + body
    [candidate] = find(src(top_level), "simple-dry", 8)
    assert candidate.where == "same logic as lines 2-5"  # no function holds the first copy


def test_look_alike_statements_and_imports_are_not_candidates() -> None:
    code = "".join(f"import mod{i}\n" for i in range(10)) + "".join(f"X{i} = {i}\n" for i in range(10))
    assert find(src(code), "simple-dry", 8) == []


def test_comments_and_literals_do_not_matter() -> None:
    shapes = dict(token_lines(src('x = f("a", 1)  # one\ny = g(\'b\', 2.5)\n')))
    assert shapes[1] == shapes[2] == ("I", "=", "I", "(", "S", ",", "N", ")")


def test_javascript_twins_and_limit() -> None:
    block = ("function {n}(xs) {{\n  const out = [];\n  for (const x of xs) {{\n"
             "    if (x.ok) out.push(x.v * 2);\n  }}\n  return out;\n}}\n")
    code = "".join(block.format(n=f"f{i}") for i in range(4))
    found = find(src(code, "a.js"), "simple-dry", 2)
    assert len(found) == 2
    assert all(c.lines[0][1] - c.lines[0][0] >= 3 for c in found)


NEAR = """\
def net(items):
    total = 0
    for item in items:
        total += item.price * item.qty
    return total


def gross(items):
    total = 0
    for item in items:
        total += item.price * item.qty * 1.2
    return total


def logged(items):
    total = 0
    for item in items:
        log.debug(item)
        total += item.price * item.qty
    return total


def names(people):
    return ", ".join(sorted(p.name for p in people if p.active))
"""


def test_near_miss_copies_a_changed_or_added_line_apart_are_candidates() -> None:
    found = find(src(NEAR), "simple-dry", 8)
    pairs = {(c.lines, c.report) for c in found if c.key.startswith("near")}
    assert (((1, 5), (15, 20)), (15, 20)) in pairs  # a line added
    assert (((1, 5), (8, 12)), (8, 12)) in pairs  # a line that gained a term
    near = next(c for c in found if c.lines == ((1, 5), (8, 12)))
    assert near.where == "nearly the same logic as lines 1-5, in net()"
    assert "a line changed, added or removed" in near.question and "line 8" in near.question
    assert not any(25 in range(c.lines[1][0], c.lines[1][1] + 1) for c in found)  # names() is like nothing


def test_an_exact_copy_is_not_asked_about_twice_as_a_near_miss() -> None:
    [candidate] = find(src(TWINS), "simple-dry", 8)
    assert not candidate.key.startswith("near")



def test_a_window_never_spans_two_functions() -> None:
    """The end of one function and the start of the next look alike in every file of small
    functions of one shape: that is no copy. Only blocks inside one function pair up."""
    code = "".join(f"def is_{name}(self):\n    value = int(self)\n    return {low} <= value <= {high}\n\n\n"
                   for name, low, high in (("info", 100, 199), ("ok", 200, 299), ("redirect", 300, 399),
                                           ("client", 400, 499)))
    assert find(src(code), "simple-dry", 8) == []


INLINED = """\
def unsubscribe(self):
    if self.count == 0:
        return
    self.count -= 1
    self.parent.detach(self.handler)
    self.handler = None
    self.closed = True
    self.notify(self.parent)


def unsubscribe_self(self):
    if self.only_self:
        log.debug("self")
        if self.count == 0:
            return
        self.count -= 1
        self.parent.detach(self.handler, quiet=True)
        self.handler = None
        self.closed = True
        self.notify(self.parent)
"""


def test_a_block_copied_into_another_function_under_a_guard_is_a_near_miss() -> None:
    found = find(src(INLINED), "simple-dry", 8)
    near = [c for c in found if c.key.startswith("near")]
    assert [(c.lines[0], c.report) for c in near] == [((2, 8), (14, 20))]  # the guard is no part of it
    assert near[0].where == "nearly the same logic as lines 2-8, in unsubscribe()"


def test_parameter_lists_alike_are_no_copy() -> None:
    signature = ("def {name}(\n    self,\n    value: str,\n    max_age: int | None = None,\n"
                 "    return_timestamp: bool = False,\n    salt: bytes = b'',\n):\n"
                 "    return self.{name}_impl({arg})\n\n\n")
    names = (("loads", "value"), ("unsign", "max_age"), ("dumps", "salt"))
    code = "".join(signature.format(name=n, arg=a) for n, a in names)
    assert find(src(code), "simple-dry", 8) == []


# --- pairs of like shape that are no copy of logic (the finder leaves them out) ---------------------

FIELDS = """\
class Route:
    def __init__(self, app, rule, method, callback):
        self.app = app
        self.rule = rule
        self.method = method
        self.callback = callback


class Upload:
    def __init__(self, stream, name, filename, headers):
        self.stream = stream
        self.name = name
        self.filename = filename
        self.headers = headers
"""

TABLE = """\
def apply(style, word):
    if word == "bold":
        style.weight = 700
    elif word == "light":
        style.weight = 300
    elif word == "italic":
        style.slant = 12
    elif word == "upright":
        style.slant = 0
    elif word == "underline":
        style.underline = True
    elif word == "plain":
        style.underline = False
    return style
"""

GUARD = """\
import io
import sys


def show(message, quiet=False):
    stream = sys.stdout
    if quiet:
        stream = io.StringIO()
    print(message, file=stream)


def warn(message, quiet=False):
    stream = sys.stderr
    if quiet:
        stream = io.StringIO()
    print(message, file=stream)
"""


def test_a_guard_of_three_steps_is_an_idiom_a_fourth_makes_it_a_candidate() -> None:
    assert find(src(GUARD), "simple-dry", 8) == []  # a branch and two calls: reads better in place
    [pair] = find(src(GUARD.replace("print(message,", "print(message.strip(),")), "simple-dry", 8)
    assert pair.lines == ((5, 9), (12, 16))


THRICE = """\
def load_user(db, key):
    row = db.get(key)
    if row is None:
        raise KeyError(key)
    log.debug("loaded %s", key)
    return decode(row)


def load_group(db, key):
    row = db.get(key)
    if row is None:
        raise KeyError(key)
    log.debug("loaded %s", key)
    return decode(row)


def load_role(db, key):
    row = db.get(key)
    if row is None:
        raise KeyError(key)
    log.debug("loaded %s", key)
    return decode(row)
"""

PIECES = """\
def export_csv(rows, path):
    header = rows[0].keys()
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(str(row[k]) for k in header))
    text = "\\n".join(lines)
    with open(path, "w") as out:
        out.write(text)
    log.info("wrote %d rows to %s", len(rows), path)
    stats.count("export", len(rows))
    notify(path)
    return len(rows)


def export_tsv(rows, path):
    header = rows[0].keys()
    lines = ["\\t".join(header)]
    for row in rows:
        lines.append("\\t".join(str(row[k]) for k in header))
    text = "\\n".join(lines)
    if not text:
        return 0
    with open(path, "w") as out:
        out.write(text)
    log.info("wrote %d rows to %s", len(rows), path)
    stats.count("export", len(rows))
    notify(path)
    return len(rows)
"""


def test_runs_of_assignments_without_logic_are_not_candidates() -> None:
    assert find(src(FIELDS), "simple-dry", 8) == []  # two constructors storing their own fields


def test_a_table_of_cases_is_not_a_candidate() -> None:
    # a new literal or name on nearly every line: each would be a parameter of the "shared" function
    assert find(src(TABLE), "simple-dry", 8) == []


def test_names_renamed_consistently_are_no_parameters_but_other_literals_are() -> None:
    # amount/entry/cost/count for total/item/price/qty is one renaming; 1.2 -> 1.08 is one parameter
    assert len(find(src(TWINS), "simple-dry", 8)) == 1
    # 0 -> 1 and 1.2 -> 1.08, and price and qty both -> cost (no renaming): four on five lines
    many = TWINS.replace("amount = 0", "amount = 1").replace("entry.cost * entry.count", "entry.cost * entry.cost")
    assert find(src(many), "simple-dry", 8) == []
    assert len(find(src(TWINS.replace("amount = 0", "amount = 1")), "simple-dry", 8)) == 1  # two on five


def test_a_block_repeated_three_times_gets_one_question_per_copy() -> None:
    found = find(src(THRICE), "simple-dry", 8)
    assert [c.lines for c in found] == [((1, 6), (9, 14)), ((1, 6), (17, 22))]  # not (9-14, 17-22) again


def test_the_pieces_of_one_copied_function_are_one_question() -> None:
    """export_tsv() is export_csv() with a guard added: two exact pieces around it, one copy."""
    [candidate] = find(src(PIECES), "simple-dry", 8)
    assert candidate.lines == ((1, 6), (15, 20))
    assert candidate.where == "same logic as lines 1-6, in export_csv()"


def test_a_function_name_and_parameters_are_no_difference() -> None:
    # the twins differ in name and parameter list (a signature), in one name used and one literal
    code = TWINS.replace("def total_us(basket):", "def sum_with_sales_tax(basket, region=None):")
    [candidate] = find(src(code), "simple-dry", 8)
    assert candidate.lines == ((5, 9), (12, 16))
