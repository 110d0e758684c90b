from pathlib import PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyarms.finding import Skipped
from tinyarms.source import LANGUAGES, Source, decode, language_of, make_source


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


_pieces = st.sampled_from(["a", "é", "\n", "\r\n", "\r", "€x", "", "\n\n", " \t", "日本"])


@settings(max_examples=200, deadline=None)
@given(pieces=st.lists(_pieces, max_size=30))
def test_positions_and_lines_agree_with_a_plain_reading_of_the_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    src = make_source("a.py", "a.py", text.encode())
    assert isinstance(src, Source)
    assert src.lines == [line.rstrip("\r") for line in text.split("\n")]
    for offset in range(len(src.data) + 1):
        src._last_position = (-1, 0, 0)  # each offset on its own, not counted on from the last
        before = src.data[:offset].decode("utf-8", "replace")
        line = before.count("\n") + 1
        column = len(src.data[src.data.rfind(b"\n", 0, offset) + 1 : offset].decode("utf-8", "replace")) + 1
        assert src.position(offset) == (line, column), (text, offset)


@given(path=st.text(st.sampled_from("ab./PYcsxt"), max_size=12))
def test_language_of_reads_the_suffix_as_pathlib_does(path: str) -> None:
    assert language_of(path) == LANGUAGES.get(PurePosixPath(path).suffix.lower())
