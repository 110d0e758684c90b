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
        total += item.price
    return total


def gross(items):
    total = 0
    for item in items:
        total += item.price * 1.2
    return total


def logged(items):
    total = 0
    for item in items:
        log.debug(item)
        total += item.price
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
