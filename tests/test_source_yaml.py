"""The loader's hardening (issue 8): line breaks, parser independence, one-line diagnostics.

Through the real `specc check` where a user would see it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import specc

from specc.diagnostics import MESSAGE_LIMIT, QUOTE_LIMIT, Diagnostic, escape, quoted, render_text
from specc.source import yamlpos
from specc.source.yamlpos import Pos, load_yaml

VALID = """\
name: case
data: {source: 'sklearn:iris'}
input: {shape: [4]}
output: {units: 3, activation: softmax}
"""


def codes(diags: list[Diagnostic]) -> list[tuple[int, int, str]]:
    """(line, col, code) of each diagnostic."""
    return [(d.line, d.col, d.code) for d in diags]


# --- line breaks: CR, LF and CRLF end a line (YAML 1.2 and editors); NEL, LS, PS do not ----


@pytest.mark.parametrize("br", ["\n", "\r", "\r\n"])
def test_positions_after_each_line_break(br: str) -> None:
    text = br.join(["a: 1", "b:", "  c: [x, !!binary aGk=]", "d: \x00"]) + br
    _, _, diags = load_yaml(text, "f.yaml")
    assert codes(diags) == [(4, 4, "yaml-syntax")]  # the NUL, counted as the parser counts
    _, tree, diags = load_yaml(text.replace("\x00", "2"), "f.yaml")
    assert codes(diags) == [(3, 10, "unsafe-tag")]
    assert tree.locate_key(("d",)) == Pos(4, 1)
    assert tree.locate(("b", "c", 0)) == Pos(3, 7)


@pytest.mark.parametrize("br", ["\x85", "\u2028", "\u2029"])
def test_unicode_line_separators_are_characters_as_in_yaml_1_2(br: str) -> None:
    value, tree, diags = load_yaml(
        f"# note{br}a: 1\nb: 'x{br}y'\nc: p{br}q\nd: [1, !!x 2]\n", "f.yaml"
    )
    assert value is not None
    assert "a" not in value  # inside the comment: the separator does not end the line
    assert value["b"] == f"x{br}y" and value["c"] == f"p{br}q"  # kept, not folded
    assert codes(diags) == [(4, 8, "unsafe-tag")]
    assert tree.locate(("c",)) == Pos(3, 4)


@pytest.mark.parametrize("br", ["\x85", "\u2028", "\u2029"])
def test_columns_stay_right_after_a_unicode_separator(br: str) -> None:
    _, tree, diags = load_yaml(f"a: 'x{br}y'\nb: {{c: 1, d: [1, 2]}}\ne: z{br}{br}w\n", "f.yaml")
    assert diags == []
    assert tree.locate(("b", "d", 1)) == Pos(2, 18)
    assert tree.locate_key(("e",)) == Pos(3, 1)
    _, _, diags = load_yaml(f"a: 'x{br}y'  \x01\n", "f.yaml")
    assert codes(diags) == [(1, 11, "yaml-syntax")]


def test_a_private_use_character_in_the_text_is_left_alone() -> None:
    value, _, diags = load_yaml('a: "\ue000\\ue001"\nb: x\x85y\n', "f.yaml")
    assert diags == []
    assert value == {"a": "\ue000\ue001", "b": "x\x85y"}


# --- the same answers from libyaml and from PyYAML's pure-Python parser ----------------------

SAMPLES = [
    VALID,
    "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "a: " + "{a: " * 2_000 + "1" + "}" * 2_000 + "\n",
    "".join(" " * i + "a:\n" for i in range(1_200)),
    "a: [1, 2\n",
    "a: 1\n---\nb: 2\n",
    "a: yes\nb: 0o17\nc: 1e-4\nd: 1_000\n",
    "a:\n  b: 1\n   c: 2\n",
]


@pytest.mark.parametrize("text", SAMPLES, ids=range(len(SAMPLES)))
def test_libyaml_and_the_pure_parser_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_yaml(text, "f.yaml")
    monkeypatch.setattr(yamlpos, "_FastLoader", yamlpos._PureLoader)
    pure = load_yaml(text, "f.yaml")
    assert (fast[0], codes(fast[2])) == (pure[0], codes(pure[2]))


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_deep_nesting_is_too_large_whatever_the_parser(opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    deep = "a:\n  " + opener * 5_000 + "1" + closer * 5_000 + "\n"
    _, _, diags = load_yaml(deep, "f.yaml")
    assert [d.code for d in diags] == ["yaml-too-large"]


# --- one line per diagnostic, whatever the spec holds ---------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb", "'a\\nb'"),
        ("tab\there\r", "'tab\\there\\r'"),
        ("x\x85y\u2028z\u2029", "'x\\x85y\\u2028z\\u2029'"),
        ("\x00\x1b[31m\x7f\x9b", "'\\x00\\x1b[31m\\x7f\\x9b'"),
        ("\u202eevil", "'\\u202eevil'"),
        ("plain café", "'plain café'"),
    ],
)
def test_quoted_escapes_control_characters(text: str, shown: str) -> None:
    assert quoted(text) == shown
    assert escape(shown) == shown  # escaping twice changes nothing


def test_quoted_shortens_long_values() -> None:
    shown = quoted("x" * 1_000_000)
    assert len(shown) == QUOTE_LIMIT + 2 and shown.endswith("…'")
    assert quoted(10**5000) == "an integer too long to show"


def test_render_keeps_every_diagnostic_on_its_lines() -> None:
    diag = Diagnostic("a\nb.yaml", 1, 1, "error", "x", "bad\n" * 1_000_000, ("h\rint",))
    lines = render_text([diag]).split("\n")
    assert lines[0].startswith("a\\nb.yaml:1:1: error[x]: bad\\nbad\\n")
    assert len(lines[0]) < MESSAGE_LIMIT + 40 and lines[0].endswith("…")
    assert lines[1:] == ["  hint: h\\rint"]
    assert len(diag.to_json()["message"]) == MESSAGE_LIMIT


# --- through `specc check` ------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    """A spec file in tmp_path."""
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_check_reports_a_duplicate_key_and_every_other_error(tmp_path: Path) -> None:
    spec = VALID + "layers:\n  - dropout: {rate: 1.5}\nname: again\nloss: mse\n"
    done = specc("check", str(write(tmp_path, spec)))
    assert done.returncode == 1, done.stdout + done.stderr
    found = [line.split(": ")[1] for line in done.stdout.splitlines() if ": error[" in line]
    assert found == ["error[out-of-range]", "error[duplicate-key]", "error[loss-output-mismatch]"]
    assert ":7:1: error[duplicate-key]: duplicate key 'name'" in done.stdout
    assert "Traceback" not in done.stderr


def test_check_output_stays_one_line_with_newlines_and_a_huge_value(tmp_path: Path) -> None:
    huge = "x" * 1_000_000
    spec = VALID + f'"bad\\nkey": 1\ndescription: [1]\nstopping: {{refit: "{huge}\\nz"}}\n'
    for fmt in ("text", "json"):
        done = specc("check", "--format", fmt, str(write(tmp_path, spec)))
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stdout) < 5_000
    done = specc("check", str(write(tmp_path, spec)))
    heads = [line for line in done.stdout.splitlines() if not line.startswith("  ")]
    assert all(": error[" in line for line in heads), done.stdout
    assert "'bad\\nkey'" in done.stdout
    assert all(len(line) < 300 for line in done.stdout.splitlines())
    diags = json.loads(specc("check", "--format", "json", str(write(tmp_path, spec))).stdout)[
        "diagnostics"
    ]
    assert all(len(d["message"]) <= MESSAGE_LIMIT for d in diags)


@pytest.mark.parametrize("br", ["\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_check_positions_after_each_line_break(tmp_path: Path, br: str) -> None:
    unicode = br not in ("\r", "\r\n")
    spec = VALID + (f"# note{br}x: 1\n" if unicode else "") + "layers:\n  - dropout: {rate: 1.5}\n"
    done = specc("check", str(write(tmp_path, spec if unicode else spec.replace("\n", br))))
    line = 7 if unicode else 6
    assert done.stdout.splitlines()[0].endswith("must be < 1, got 1.5"), done.stdout
    assert f"spec.yaml:{line}:21: error[out-of-range]" in done.stdout, done.stdout


# --- layout mistakes in words (the cases in tests/cases/yaml-* show the full messages) -------


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a:\n  b: 1\n\tc: 2\n", (3, 1), "line 3 is indented with a tab; YAML needs spaces"),
        ("a:\n  b: 1\n   c: 2\n", (3, 4), "'c' is indented 1 space more than 'b' on line 2"),
        ("a:\n  b: 1\n c: 2\n", (3, 2), "'c' is indented 1 space less than 'b' on line 2"),
        ("d: |\n  x: 1\n    y: 2\na:\n  b: 1\n   c: 2\n", (6, 4), "more than 'b' on line 5"),
        ("l:\n  - a: 1\n   - b: 2\n", (3, 4), "this list item is indented 1 space more than"),
    ],
)
def test_layout_mistakes_are_said_in_words(text: str, where: tuple, words: str) -> None:
    _, _, diags = load_yaml(text, "f.yaml")
    assert [(d.line, d.col) for d in diags] == [where]
    assert words in diags[0].message
    assert not any("'-'" in h and "item" in h for h in diags[0].hints[1:])


@pytest.mark.parametrize("text", ["a: [1,\n  b: 2\n c: 3\n", "a: x\n  y\n z: 1\n"])
def test_layout_is_not_guessed_inside_flow_or_continued_scalars(text: str) -> None:
    _, _, diags = load_yaml(text, "f.yaml")
    assert [d.code for d in diags] == ["yaml-syntax"]
    assert "indented" not in diags[0].message
