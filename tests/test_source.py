from tinyarms.finding import Skipped
from tinyarms.source import decode, make_source


def test_columns_count_characters_not_bytes() -> None:
    src = make_source("a.py", "a.py", 'é = "ü"; x = "#ff0000"\n'.encode())
    offset = src.data.index(b"#ff0000")
    assert src.position(offset) == (1, 15)


def test_bom_is_dropped_and_lines_stay_right() -> None:
    src = make_source("a.py", "a.py", b"\xef\xbb\xbfx = 1\r\ny = 2\r\n")
    assert src.text.startswith("x") and src.lines[:2] == ["x = 1", "y = 2"]
    assert src.position(src.data.index(b"y")) == (2, 1)


def test_declared_encodings_are_honoured() -> None:
    text, data = decode("a.py", "# -*- coding: latin-1 -*-\ns = 'café'\n".encode("latin-1"))
    assert "café" in text and data == text.encode("utf-8")
    text, _ = decode("a.css", '@charset "iso-8859-1";\na::after { content: "é"; }\n'.encode("latin-1"))
    assert "é" in text


def test_bad_input_is_skipped_with_a_reason() -> None:
    cases = {
        "binary": b"GIF89a\x00\x01\x02",
        "encoding": "s = 'café'\n".encode("latin-1"),
        "too-large": b"x" * 101,
    }
    for reason, raw in cases.items():
        skipped = decode("f.py", raw, max_bytes=100)
        assert isinstance(skipped, Skipped) and skipped.reason == reason and skipped.path == "f.py"
    assert "line 1" in decode("f.py", cases["encoding"]).message
