"""Nothing a user controls reaches generated code except as an escaped literal or a comment
that cannot be broken out of (issue 8 item 11): the spec's file name, its description, the data
path and the CSV's column and label names, with every line break Python's tokenizer or an editor
honours. Compiled by the real `specc compile`, then tokenized, parsed and imported."""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
from ruff.__main__ import find_ruff_bin

PAYLOAD = '__import__("os").system("touch PWNED")'
"""Code that leaves a file named PWNED in the working directory if it ever runs."""

LINE_BREAKS = {
    "lf": "\n",
    "cr": "\r",
    "crlf": "\r\n",
    "vt": "\x0b",
    "ff": "\x0c",
    "fs": "\x1c",
    "gs": "\x1d",
    "rs": "\x1e",
    "nel": "\x85",
    "ls": "\u2028",
    "ps": "\u2029",
}
"""Every character str.splitlines() breaks at (a superset of what the tokenizer honours)."""


def run_specc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m specc ARGS...` in a subprocess started in cwd."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def hostile(brk: str) -> str:
    """A piece of text that ends the line, runs the payload, and comments out the rest."""
    return f"x{brk}{PAYLOAD}{brk}#"


def write_case(root: Path, key: str, brk: str) -> tuple[Path, dict]:
    """A spec with a hostile file name, description, data folder, column and label names."""
    folder = root / key
    data_dir = folder / f"data{hostile(brk)}"  # a folder: a file name cannot hold a '/'
    data_dir.mkdir(parents=True)
    columns = [f"a{hostile(brk)}", f'b"""{hostile(brk)}', f"y'{hostile(brk)}\\"]
    labels = [f"=1+1{hostile(brk)}", f"n{hostile(brk)}"]
    with open(data_dir / "t.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i in range(12):
            writer.writerow([i % 2, i // 2 % 2, labels[i % 2]])
    spec = {
        "name": f"hostile_{key}",
        "description": f'{hostile(brk)} """ {PAYLOAD} \\',
        "data": {
            "source": f"{data_dir.name}/t.csv",
            "target": columns[2],
            "features": columns[:2],
            "split": {"val": 0.0, "test": 0.0},
            "normalize": "none",
        },
        "input": {"shape": [2]},
        "layers": [{"dense": {"units": 2, "activation": "relu"}}],
        "output": {"units": 1, "activation": "sigmoid"},
        "training": {"epochs": 1, "batch_size": 4},
    }
    path = folder / f"spec{hostile(brk)}.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML: escapes for every char
    return path, spec


def assert_payload_is_inert(source: str, name: str) -> None:
    """The payload's name appears only inside string literals and comments."""
    ast.parse(source, filename=name)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.STRING, tokenize.COMMENT):
            assert "__import__" not in tok.string, f"{name}:{tok.start[0]}: {tok.line!r}"
            assert "PWNED" not in tok.string, f"{name}:{tok.start[0]}: {tok.line!r}"


def squeeze(text: str | None) -> str:
    """text with its whitespace runs (the docstring's line breaks) as single spaces."""
    return " ".join((text or "").split())


def constants(source: str) -> dict[str, object]:
    """Module-level NAME = literal assignments of a generated file."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):  # not a literal: not a constant
                values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_hostile_names_paths_and_values_never_execute(tmp_path: Path):
    cases = {key: write_case(tmp_path, key, brk) for key, brk in LINE_BREAKS.items()}
    done = run_specc(
        tmp_path, "compile", *(str(p.relative_to(tmp_path)) for p, _ in cases.values())
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr

    folders = []
    for key, (path, spec) in cases.items():
        out = tmp_path / "generated" / spec["name"]
        folders.append(out)
        texts = {
            n: (out / n).read_text(encoding="utf-8") for n in ("model.py", "data.py", "train.py")
        }
        for name, text in texts.items():
            assert_payload_is_inert(text, f"{key}/{name}")
            # the header is comment lines only, up to the module docstring
            head = text.split('"""', 1)[0].splitlines()
            assert head and all(line.startswith("#") for line in head), (key, head)
        data = constants(texts["data.py"])
        # the literals read back as exactly what the spec says
        assert data["TARGET"] == (spec["data"]["target"],)
        assert data["FEATURES"] == tuple(spec["data"]["features"])
        assert Path(data["DATA_FILE"]).name == "t.csv"
        assert (out / data["DATA_FILE"]).resolve() == (
            path.parent / spec["data"]["source"]
        ).resolve()
        doc = ast.get_docstring(ast.parse(texts["model.py"]))
        assert squeeze(doc) == squeeze(f"{spec['name']}: {spec['description']}")

    # importing every generated module runs nothing from the spec (train.py's main is guarded)
    script = (
        "import importlib.util, sys\n"
        "for folder in sys.argv[1:]:\n"
        "    sys.path.insert(0, folder)\n"
        "    for name in ('model', 'data', 'train'):\n"
        "        sys.modules.pop(name, None)\n"
        "        spec = importlib.util.spec_from_file_location(name, f'{folder}/{name}.py')\n"
        "        module = importlib.util.module_from_spec(spec)\n"
        "        sys.modules[name] = module\n"
        "        spec.loader.exec_module(module)\n"
        "    sys.path.pop(0)\n"
    )
    imported = subprocess.run(
        [sys.executable, "-c", script, *map(str, folders)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert not list(tmp_path.rglob("PWNED")), "generated code ran the payload"

    lint = subprocess.run(
        [os.fsdecode(find_ruff_bin()), "check", "--isolated", "--line-length", "100",
         "--select", "E,F,W,I,B,UP", *map(str, folders)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout


def test_hostile_data_loads_with_its_names_intact(tmp_path: Path):
    """The escaped data path and column names are the real ones: data.load() reads the file."""
    path, spec = write_case(tmp_path, "lf", "\n")
    done = run_specc(tmp_path, "compile", str(path), "-o", "out")
    assert done.returncode == 0, done.stderr
    script = "import data; s = data.load(); print(repr(s.features)); print(repr(s.labels))"
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path / "out", capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    features, labels = map(ast.literal_eval, loaded.stdout.splitlines())
    assert list(features) == spec["data"]["features"]
    assert sorted(labels) == sorted([f"=1+1{hostile(chr(10))}", f"n{hostile(chr(10))}"])
    assert not list(tmp_path.rglob("PWNED"))


DESCRIPTIONS = {
    "long_word_with_backslashes": "ab\\" * 60,
    "backslash_at_every_wrap": " ".join(["a\\" * 20] * 12),
    "ends_with_backslash": "a model\\",
    "ends_with_a_quote": 'the "quoted"',
    "triple_quotes": 'say """ and \'\'\' and """""" and \\"""',
    "escapes_that_are_not": "\\n \\x00 \\u2028 \\N{BULLET} \\\\",
    "unicode": "Größe – 模型 ✓ 🙂 e\u0301 \u200b\u200e\ufeff",
    "control_characters": "nul\x00 bell\x07 esc\x1b del\x7f",
    "very_long_word": "https://example.org/" + "x" * 300,
    "only_spaces": "   ",
}


def yaml_quoted(text: str) -> str:
    """text as a double-quoted YAML scalar, every character outside printable ASCII escaped
    (YAML's \\U form reaches past the BMP, where JSON's surrogate pairs are refused)."""

    def escape(c: str) -> str:
        code = ord(c)
        if c in '"\\':
            return "\\" + c
        if 32 <= code < 127:
            return c
        return (
            f"\\x{code:02x}"
            if code < 0x100
            else f"\\u{code:04x}"
            if code < 0x10000
            else f"\\U{code:08x}"
        )

    return '"' + "".join(map(escape, text)) + '"'


def test_descriptions_compile_to_docstrings_that_read_back(tmp_path: Path):
    """Any description that passes `check` compiles (no traceback), stays lint-clean, and its
    docstrings read back as the description with whitespace collapsed."""
    xor = Path(__file__).resolve().parent.parent / "specs"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "xor.csv").write_bytes((xor / "data" / "xor.csv").read_bytes())
    base = (xor / "xor.yaml").read_text(encoding="utf-8").splitlines()
    paths = []
    for key, text in DESCRIPTIONS.items():
        lines = [
            f"name: d_{key}" if line.startswith("name:")
            else f"description: {yaml_quoted(text)}" if line.startswith("description:")
            else line
            for line in base
        ]  # fmt: skip
        (tmp_path / f"{key}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(f"{key}.yaml")
    checked = run_specc(tmp_path, "check", *paths)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = run_specc(tmp_path, "compile", *paths)
    assert done.returncode == 0, done.stderr
    for key, text in DESCRIPTIONS.items():
        out = tmp_path / "generated" / f"d_{key}"
        expected = " ".join(text.split())
        summary = expected or f"The d_{key} model."  # a blank description is none
        model = ast.parse((out / "model.py").read_text(encoding="utf-8"))
        assert squeeze(ast.get_docstring(model)) == f"d_{key}: {summary}", key
        model_class = [n for n in model.body if isinstance(n, ast.ClassDef)][-1]
        assert squeeze(ast.get_docstring(model_class)) == summary, key
        train = ast.get_docstring(ast.parse((out / "train.py").read_text(encoding="utf-8")))
        title = squeeze(train.split("\n\n")[0])
        assert title == (f"Train d_{key}: {expected}" if expected else f"Train d_{key}"), key
    lint = subprocess.run(
        [os.fsdecode(find_ruff_bin()), "check", "--isolated", "--line-length", "100",
         "--select", "E,F,W,I,B,UP", str(tmp_path / "generated")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\ufffe", "\ud800"])
def test_what_the_yaml_loader_rejects_never_reaches_codegen(tmp_path: Path, char: str):
    """Characters YAML forbids in a document, written raw: a diagnostic, exit 1, no traceback;
    written as an escape inside a quoted string they are values and compile (test above)."""
    spec = tmp_path / "s.yaml"
    raw = "name: s\ndescription: a" + char + "b\n"
    spec.write_bytes(raw.encode("utf-8", "surrogatepass"))
    done = run_specc(tmp_path, "compile", "s.yaml", "-o", "out")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (1, 2), done.stderr
    assert not (tmp_path / "out").exists()
