"""The literal printers (specc/codegen/literals.py) over every Unicode code point: whatever the
text, a comment stays one comment and a docstring one string token that reads back as the text."""

from __future__ import annotations

import ast
import io
import sys
import tokenize

import pytest

from specc.codegen.literals import LINE_LENGTH, comment_text, docstring, escape_text, header, py

CODE_POINTS = [*range(0x20000), *range(0xE0000, 0xE1000), *range(0xF0000, 0xF0100), sys.maxunicode]
EVERY_CHAR = "".join(map(chr, CODE_POINTS))
"""Every code point of planes 0 and 1 (every line break, control, format character and lone
surrogate, what os.fsdecode makes of undecodable bytes), the tags, private use and the last."""


def tokens(source: str) -> list[tokenize.TokenInfo]:
    """The tokens of source, without the bookkeeping ones."""
    skip = {tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT}
    return [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type not in skip]


def test_escaped_text_has_no_line_break_and_reads_back():
    escaped = escape_text(EVERY_CHAR)
    assert len(escaped.splitlines()) == 1
    assert all(c.isprintable() for c in escaped)
    assert escaped.encode("utf-8")  # no lone surrogate left: the file can be written
    assert ast.literal_eval('"' + escaped.replace('"', '\\"') + '"') == EVERY_CHAR


def test_a_comment_cannot_be_broken_out_of():
    text = 'x\n__import__("os")\r#' + EVERY_CHAR
    source = f"# {comment_text(text)}\nx = 1\n"
    assert [t.type for t in tokens(source)][:1] == [tokenize.COMMENT]
    assert [t.string for t in tokens(source)][1:] == ["x", "=", "1"]


@pytest.mark.parametrize("indent", [0, 4, 8])
@pytest.mark.parametrize(
    "text",
    [
        "ab\\" * 60,
        " ".join(["a\\" * 20] * 12),
        'ends with a quote "',
        'triple """ quotes """""" \\"""',
        "x" * 300 + " tail",
        "\x00 nul, \x1b esc, \u200b zero width, \ud800 surrogate",
        "line\nbreaks\r\nof\x85every\u2028kind\u2029here\x0cand\x0bthere",
    ],
)
def test_docstring_is_one_string_token_that_reads_back(text: str, indent: int):
    literal = docstring(text, indent)
    source = "if True:\n" * bool(indent) + " " * indent + literal + "\n"
    body = tokens(source)[3 if indent else 0 :]  # after `if True:`
    assert [t.type for t in body] == [tokenize.STRING]
    value = ast.literal_eval(literal)
    assert " ".join(value.split()) == " ".join(text.split())
    # lines fit, except a word too long for any line (which the linter allows)
    for line in source.splitlines():
        assert len(line) <= LINE_LENGTH or " " not in line.strip(), line


def test_header_is_comments_only_for_any_path():
    for path in ["specs/x.yaml", 'x\n__import__("os").system("touch PWNED")\n#.yaml', "d/" * 80]:
        text = header(path) + "\nx = 1\n"
        assert [t.type for t in tokens(text)][:-3] == [tokenize.COMMENT] * len(
            header(path).split("\n")
        )


def test_py_strings_are_repr_literals_that_read_back():
    text = EVERY_CHAR[:0x3000] + "\u2028\u2029\ud800"
    assert ast.literal_eval(py(text)) == text
    assert ast.literal_eval(py([text, "b"])) == (text, "b")
    assert len(py(text).splitlines()) == 1
