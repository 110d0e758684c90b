from tinyarms.candidates.functions import MAX_LINES, find, spans
from tinyarms.source import make_source

PY = '''\
def small(x):
    return x


class Shop:
    def checkout(self, cart):
        total = 0
        for item in cart:
            total += item.price
        return total

    def refund(self, order):
        def inner(line):
            return -line.price

        return sum(inner(line) for line in order.lines)
'''


def test_each_function_is_one_question_and_nested_ones_ride_along() -> None:
    found = find(make_source("shop.py", "shop.py", PY.encode()), "complex-dry", 8)
    assert [c.lines for c in found] == [((6, 10),), ((12, 16),)]  # small() is too small; inner() is inside refund
    assert "checkout" in found[0].question and found[0].report == (6, 10)


def test_js_functions_and_long_functions_in_windows() -> None:
    body = "".join(f"  step{i}();\n" for i in range(MAX_LINES + 10))
    code = f"export function long() {{\n{body}}}\nconst arrow = (x) => {{\n  a();\n  b();\n  return x;\n}};\n"
    src = make_source("a.ts", "a.ts", code.encode())
    assert [name for *_, name in spans(src)] == ["long", "arrow"]
    found = find(src, "architectural-anti-patterns", 8)
    assert [c.lines for c in found] == [
        ((1, MAX_LINES),), ((MAX_LINES + 1, MAX_LINES + 12),), ((MAX_LINES + 13, MAX_LINES + 17),),
    ]
