"""The YAML loader with positions, and `--set` overrides."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.diagnostics import Diagnostic
from specc.source.overrides import apply_overrides, override_file, parse_override
from specc.source.yamlpos import (
    MAX_DEPTH,
    Pos,
    PosTree,
    load_file,
    load_value,
    load_yaml,
    yaml11_boolean,
)

SPEC = textwrap.dedent(
    """\
    name: digits
    layers:
      - dense: {units: 128, activation: relu}
      - dropout:
          rate: 0.2
    optimizer:
      name: adam
      lr: 1.0e-3
    """
)


def load(text: str) -> tuple:
    """load_yaml on dedented text, file 'spec.yaml'."""
    return load_yaml(textwrap.dedent(text), "spec.yaml")


def codes(diags: list[Diagnostic]) -> list[tuple[int, int, str]]:
    """(line, col, code) of each diagnostic."""
    return [(d.line, d.col, d.code) for d in diags]


# --- values and positions ---------------------------------------------------------------


def test_plain_values_and_no_diagnostics() -> None:
    value, tree, diags = load(SPEC)
    assert diags == []
    assert value == {
        "name": "digits",
        "layers": [{"dense": {"units": 128, "activation": "relu"}}, {"dropout": {"rate": 0.2}}],
        "optimizer": {"name": "adam", "lr": 1.0e-3},
    }
    assert tree is not None


def test_positions_of_nested_keys_and_list_items_are_exact() -> None:
    _, tree, _ = load(SPEC)
    assert tree.locate(()) == Pos(1, 1)
    assert tree.locate(("layers",)) == Pos(3, 3)  # the sequence starts at its first '-'
    assert tree.locate(("layers", 0)) == Pos(3, 5)  # the item's mapping starts at 'dense'
    assert tree.locate_key(("layers", 0, "dense")) == Pos(3, 5)
    assert tree.locate(("layers", 0, "dense")) == Pos(3, 12)  # the '{'
    assert tree.locate(("layers", 0, "dense", "units")) == Pos(3, 20)
    assert tree.locate_key(("layers", 0, "dense", "activation")) == Pos(3, 25)
    assert tree.locate(("layers", 1, "dropout", "rate")) == Pos(5, 13)
    assert tree.locate_key(("layers", 1, "dropout", "rate")) == Pos(5, 7)
    assert tree.locate_key(("optimizer", "lr")) == Pos(8, 3)


def test_locate_falls_back_to_the_nearest_ancestor() -> None:
    _, tree, _ = load(SPEC)
    assert tree.node(("optimizer", "momentum")) is None
    assert tree.locate(("optimizer", "momentum")) == tree.locate(("optimizer",)) == Pos(7, 3)
    assert tree.locate(("layers", 7, "dense")) == tree.locate(("layers",))
    assert tree.locate_key(("optimizer", "missing")) == Pos(7, 3)
    assert tree.locate_key(()) == Pos(1, 1)


def test_positions_count_characters_not_bytes() -> None:
    _, tree, diags = load("dé: [é, x]\n")
    assert diags == []
    assert tree.locate(("dé", 1)) == Pos(1, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1.0e-4", 1.0e-4),
        ("a: 1e-4", 1e-4),  # YAML 1.2 core: a float without a dot too
        ("a: 3", 3),
        ("a: -3", -3),
        ("a: +3", 3),
        ("a: 017", 17),  # decimal in 1.2 (octal 15 in 1.1)
        ("a: 0o17", 15),
        ("a: 0x1F", 31),
        ("a: 1_000", "1_000"),  # 1000 in 1.1
        ("a: 0b101", "0b101"),
        ("a: 1:30", "1:30"),  # sexagesimal 90 in 1.1
        ("a: .5", 0.5),
        ("a: 1.", 1.0),
        ("a: -.inf", float("-inf")),
        ("a: .inf", float("inf")),
        ("a: +.INF", float("inf")),
        ("a: true", True),
        ("a: FALSE", False),
        ("a: yes", "yes"),  # booleans in 1.1, text in 1.2
        ("a: off", "off"),
        ("a: On", "On"),
        ("a: y", "y"),
        ("a: tRUE", "tRUE"),
        ("a: ~", None),
        ("a: null", None),
        ("a: NULL", None),
        ("a:", None),
        ("a: nULL", "nULL"),
        ("a: '3'", "3"),
        ("a: 'true'", "true"),
        ("a: 2024-01-01", "2024-01-01"),  # timestamps stay text
        ("a: =", "="),
        ("a: [1, b, {c: d}]", [1, "b", {"c": "d"}]),
        ("a: !!int '12'", 12),
        ("a: !!str 12", "12"),
        ("a: !!float '1'", 1.0),
    ],
)
def test_scalars_are_resolved_by_the_yaml_1_2_core_schema(text: str, expected: object) -> None:
    value, _, diags = load_yaml(text, "f.yaml")
    assert diags == []
    assert value == {"a": expected}
    assert type(value["a"]) is type(expected)


def test_not_a_number_is_a_float() -> None:
    value, _, diags = load_yaml("a: .nan\nb: .NaN\n", "f.yaml")
    assert diags == []
    assert all(math.isnan(v) for v in value.values())


@pytest.mark.parametrize("text", ["a: !!int 1_000\n", "a: !!bool yes\n", "a: !!float x\n"])
def test_explicit_tag_that_does_not_fit_is_an_error(text: str) -> None:
    value, _, diags = load_yaml(text, "f.yaml")
    assert codes(diags) == [(1, 4, "yaml-syntax")]
    assert diags[0].message.startswith("cannot read '")
    assert value == {"a": None}


@pytest.mark.parametrize(("word", "meant"), [("yes", True), ("Off", False), ("ON", True)])
def test_yaml11_boolean_words_are_recognised_for_hints(word: str, meant: bool) -> None:
    assert yaml11_boolean(word) is meant
    assert load_yaml(f"a: {word}\n", "f.yaml")[0] == {"a": word}


@pytest.mark.parametrize("value", ["true", "y", "maybe", True, 1, None])
def test_other_values_are_no_yaml11_boolean_words(value: object) -> None:
    assert yaml11_boolean(value) is None


def test_aliases_and_merge_keys_are_plain_data() -> None:
    value, tree, diags = load(
        """\
        base: &b {units: 8, activation: relu}
        one: *b
        two: {<<: *b, units: 16}
        """
    )
    assert diags == []
    assert value["one"] == {"units": 8, "activation": "relu"}
    assert value["two"] == {"units": 16, "activation": "relu"}
    value["one"]["units"] = 99
    assert value["base"]["units"] == 8  # aliases are copies, not shared objects
    assert tree.locate(("two", "units")) == Pos(3, 22)
    assert tree.locate(("two", "activation")) == Pos(1, 33)  # from the anchor


# --- errors -----------------------------------------------------------------------------


def test_yaml_syntax_error_at_the_problem_mark() -> None:
    value, tree, diags = load("a: b: c\n")
    assert value is None and tree is None
    assert codes(diags) == [(1, 5, "yaml-syntax")]
    assert "mapping values are not allowed" in diags[0].message
    assert diags[0].file == "spec.yaml"


def test_yaml_syntax_error_in_block_mapping_has_context_hint() -> None:
    _, _, diags = load("a:\n  b: 1\n  - c\n")
    assert codes(diags) == [(3, 3, "yaml-syntax")]
    assert diags[0].hints == ("while parsing a block mapping on line 2",)


def test_control_character_is_a_syntax_error() -> None:
    _, _, diags = load("a: 1\nb: x\x00y\n")
    assert codes(diags) == [(2, 5, "yaml-syntax")]
    assert "U+0000" in diags[0].message


def test_duplicate_key_at_second_occurrence_keeps_the_first_value() -> None:
    value, tree, diags = load("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert codes(diags) == [(4, 3, "duplicate-key")]
    assert diags[0].hints == (
        "'c' is first given on line 3",
        "the first value is used; remove one of them",
    )
    assert value == {"a": 1, "b": {"c": 1}}
    assert tree.locate(("b", "c")) == Pos(3, 6)


def test_every_duplicate_key_is_reported_and_the_rest_is_read() -> None:
    value, tree, diags = load("a: 1\na: [!!binary aGk=]\nb: [1, 2]\nb: 3\nc: 4\n")
    assert codes(diags) == [(2, 1, "duplicate-key"), (4, 1, "duplicate-key")]
    assert value == {"a": 1, "b": [1, 2], "c": 4}  # the second value is never constructed
    assert tree.locate(("c",)) == Pos(5, 4)


def test_duplicate_key_beside_a_fatal_error_returns_no_value() -> None:
    value, tree, diags = load("a: 1\na: 2\nb: &x [1, *x]\n")
    assert [d.code for d in diags] == ["duplicate-key", "yaml-too-large"]
    assert (value, tree) == (None, None)


def test_refused_keys_are_left_out_and_the_rest_is_read() -> None:
    value, _, diags = load("1: x\ntrue: y\na: 1\n")
    assert [d.code for d in diags] == ["invalid-key", "invalid-key"]
    assert value == {"a": 1}


def test_python_tag_is_rejected_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"name: x\nrun: !!python/object/apply:os.system ['echo pwned > {marker}']\n"
    value, _, diags = load_yaml(text, "spec.yaml")
    assert codes(diags) == [(2, 6, "unsafe-tag")]
    assert "not allowed" in diags[0].message
    assert value == {"name": "x", "run": None}  # the rest can still be checked
    assert not marker.exists()


@pytest.mark.parametrize(
    "text", ["a: !foo 1\n", "a: !!binary aGk=\n", "a: !!set {x}\n", "a: !!python/name:os.system\n"]
)
def test_other_tags_are_rejected(text: str) -> None:
    _, _, diags = load_yaml(text, "f.yaml")
    assert codes(diags) == [(1, 4, "unsafe-tag")]


def test_python_tag_at_top_level_is_rejected(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _, _, diags = load_yaml(f"!!python/object/apply:os.system ['touch {marker}']\n", "f.yaml")
    assert "unsafe-tag" in [d.code for d in diags]
    assert not marker.exists()


@pytest.mark.parametrize("text", ["", "   \n", "# just a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    value, tree, diags = load_yaml(text, "f.yaml")
    assert (value, tree) == (None, None)
    assert codes(diags) == [(1, 1, "empty-file")]


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "a list"), ("hello\n", "a scalar")])
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    _, _, diags = load_yaml(text, "f.yaml")
    assert codes(diags) == [(1, 1, "not-a-mapping")]
    assert diags[0].message.endswith(kind)


def test_multiple_documents() -> None:
    _, _, diags = load("a: 1\n---\nb: 2\n")
    assert codes(diags) == [(2, 1, "multiple-documents")]


@pytest.mark.parametrize(
    ("text", "line", "col", "code"),
    [
        ("1: x\n", 1, 1, "invalid-key"),
        ("a: 1\nnull: y\n", 2, 1, "invalid-key"),
        ("[a]: b\n", 1, 1, "invalid-key"),
        ("true: 1\n", 1, 1, "invalid-key"),
        ("yes: 1\n", None, None, None),  # text in YAML 1.2
        ("~: 1\n", 1, 1, "invalid-key"),
        ("a:\n  2.5: 1\n", 2, 3, "invalid-key"),
        ("'1': x\n", None, None, None),
        ("a: {? {b: 1} : 2}\n", 1, 7, "invalid-key"),
    ],
)
def test_keys_must_be_strings(text: str, line: int, col: int, code: str | None) -> None:
    _, _, diags = load_yaml(text, "f.yaml")
    assert codes(diags) == ([(line, col, code)] if code else [])


def test_billion_laughs_is_capped() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    _, _, diags = load_yaml("\n".join(lines) + "\n", "f.yaml")
    assert [d.code for d in diags] == ["yaml-too-large"]


def test_deep_nesting_is_rejected_without_crashing() -> None:
    deep = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
    _, _, diags = load_yaml(deep, "f.yaml")
    assert [d.code for d in diags] == ["yaml-too-large"]
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_yaml(ok, "f.yaml")[2] == []


def test_recursive_alias_is_rejected() -> None:
    _, _, diags = load_yaml("a: &x [1, *x]\n", "f.yaml")
    assert codes(diags) == [(1, 4, "yaml-too-large")]


def test_undefined_alias_is_a_syntax_error() -> None:
    _, _, diags = load_yaml("a: *nope\n", "f.yaml")
    assert [d.code for d in diags] == ["yaml-syntax"]


# --- load_file --------------------------------------------------------------------------


def test_load_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    value, _, diags = load_file(path)
    assert value == {"a": 1}
    assert diags[0].file == str(path)


def test_load_file_raises_for_unreadable_or_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_file(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        load_file(latin)


# --- never raises -----------------------------------------------------------------------


def _check_result(result: tuple) -> None:
    """The loader's result is well formed: a mapping and a tree, or errors and None."""
    value, tree, diags = result
    assert all(isinstance(d, Diagnostic) and d.line >= 1 and d.col >= 1 for d in diags)
    assert all("\n" not in d.render().split("\n  hint: ")[0] for d in diags)
    if value is None:
        assert tree is None and diags
    else:
        assert isinstance(value, dict) and isinstance(tree, PosTree)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _check_result(load_yaml(text, "f.yaml"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \n\t-:[]{},&*!|>'\"#?%@`abc01.~<"))
def test_yaml_punctuation_soup_never_raises(text: str) -> None:
    _check_result(load_yaml(text, "f.yaml"))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(SPEC)))
def test_truncated_valid_yaml_never_raises(cut: int) -> None:
    _check_result(load_yaml(SPEC[:cut], "f.yaml"))


_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k not in {"yes", "no", "on", "off", "y", "n", "true", "false", "null"}
)
_DATA = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    # safe_dump writes YAML 1.1: a text it leaves plain may be a YAML 1.2 number (1e5)
    | st.text(max_size=10).filter(lambda t: not t or t[0] not in "+-.0123456789"),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_KEYS, kids, max_size=4),
    max_leaves=20,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into a nested value."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = list(enumerate(value)) if isinstance(value, list) else []
    return [prefix, *(p for key, child in items for p in _paths(child, (*prefix, key)))]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _DATA, min_size=1, max_size=5), st.booleans())
def test_dumped_data_loads_back_with_a_position_for_every_node(data: dict, flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=False)
    value, tree, diags = load_yaml(text, "f.yaml")
    assert diags == []
    assert value == data
    lines = text.splitlines()
    for path in _paths(data):
        node = tree.node(path)
        assert node is not None
        assert 1 <= node.pos.line <= len(lines) + 1
        if node.key_pos is not None:
            key_line = lines[node.key_pos.line - 1]
            assert key_line[node.key_pos.col - 1 :].lstrip("'\"").startswith(str(path[-1]))


# --- overrides --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("optimizer.lr=0.01", ("optimizer", "lr"), 0.01),
        ("layers.0.dense.units=64", ("layers", 0, "dense", "units"), 64),
        ("data.features=[1, 2]", ("data", "features"), [1, 2]),
        ("optimizer={name: sgd}", ("optimizer",), {"name": "sgd"}),
        ("stopping.early.restore_best=true", ("stopping", "early", "restore_best"), True),
        ("name=a=b", ("name",), "a=b"),
        ("description=", ("description",), None),
        ("optimizer.lr=1e-3", ("optimizer", "lr"), 1e-3),
        ("stopping.early.restore_best=yes", ("stopping", "early", "restore_best"), "yes"),
    ],
)
def test_parse_override(text: str, path: tuple, value: object) -> None:
    assert parse_override(text) == (path, value)


@pytest.mark.parametrize(
    ("text", "col", "code"),
    [
        ("optimizer.lr", 1, "invalid-override"),
        ("=3", 1, "invalid-override"),
        ("a..b=1", 3, "invalid-override"),
        ("a.=1", 3, "invalid-override"),
        ("a=!!python/object/apply:os.system [x]", 3, "unsafe-tag"),
        ("a=[1,", 6, "yaml-syntax"),
    ],
)
def test_bad_override(text: str, col: int, code: str) -> None:
    diag = parse_override(text)
    assert isinstance(diag, Diagnostic)
    assert (diag.file, diag.line, diag.col, diag.code) == (override_file(text), 1, col, code)


def test_apply_overrides_returns_new_value_and_positions_in_the_override() -> None:
    value, tree, _ = load(SPEC)
    before = repr(value)
    new, new_tree, diags = apply_overrides(
        value, tree, ["optimizer.lr=0.5", "layers.0.dense.units=64", "training.epochs=5"]
    )
    assert diags == []
    assert repr(value) == before  # the input is untouched
    assert tree.locate(("optimizer", "lr")) == Pos(8, 7)
    assert new["optimizer"]["lr"] == 0.5
    assert new["layers"][0]["dense"] == {"units": 64, "activation": "relu"}
    assert new["training"] == {"epochs": 5}
    assert new_tree.locate(("optimizer", "lr")) == Pos(1, 14, "--set optimizer.lr=0.5")
    assert new_tree.locate_key(("optimizer", "lr")) == Pos(1, 11, "--set optimizer.lr=0.5")
    assert new_tree.locate(("training", "epochs")) == Pos(1, 17, "--set training.epochs=5")
    assert new_tree.locate(("training",)).file == "--set training.epochs=5"
    assert new_tree.locate(("optimizer", "name")) == Pos(7, 9)  # untouched positions stay


def test_override_with_a_mapping_value_has_positions_inside_it() -> None:
    value, tree, _ = load(SPEC)
    text = "optimizer={name: sgd, lr: abc}"
    new, new_tree, diags = apply_overrides(value, tree, [text])
    assert diags == []
    assert new["optimizer"] == {"name": "sgd", "lr": "abc"}
    assert new_tree.locate(("optimizer", "lr")) == Pos(1, 27, override_file(text))
    assert new_tree.locate(("optimizer", "missing")) == Pos(1, 11, override_file(text))


def test_override_creates_missing_and_null_mappings() -> None:
    value, tree, _ = load_yaml("export:\n", "f.yaml")
    new, _, diags = apply_overrides(value, tree, ["export.onnx.opset=18", "a.b.c=1"])
    assert diags == []
    assert new == {"export": {"onnx": {"opset": 18}}, "a": {"b": {"c": 1}}}


@pytest.mark.parametrize(
    ("override", "col", "words"),
    [
        ("layers.5.dense.units=1", 8, "out of range"),
        ("layers.x=1", 8, "is a list"),
        ("name.first=1", 6, "not a mapping"),
        ("optimizer.name.x=1", 16, "not a mapping"),
    ],
)
def test_override_into_a_scalar_or_past_a_list_is_an_error(
    override: str, col: int, words: str
) -> None:
    value, tree, _ = load(SPEC)
    new, _, diags = apply_overrides(value, tree, [override])
    assert codes(diags) == [(1, col, "invalid-override")]
    assert diags[0].file == override_file(override)
    assert words in diags[0].message
    assert new == value  # a failed override changes nothing


def test_overrides_apply_in_order_and_collect_every_error() -> None:
    value, tree, _ = load(SPEC)
    new, _, diags = apply_overrides(value, tree, ["bad", "optimizer.lr=1", "optimizer.lr=2", "=x"])
    assert new["optimizer"]["lr"] == 2
    assert [d.file for d in diags] == ["--set bad", "--set =x"]


def test_apply_overrides_without_a_tree() -> None:
    new, tree, diags = apply_overrides({}, None, ["a=1"])
    assert (new, diags) == ({"a": 1}, [])
    assert tree.locate(("a",)) == Pos(1, 3, "--set a=1")


def test_load_value_reads_any_scalar() -> None:
    assert load_value("0.01", "v")[0] == 0.01
    assert load_value("", "v")[0] is None
    assert load_value("[a, {b: 1}]", "v")[0] == ["a", {"b": 1}]
