"""The command line as users and their scripts see it: real `specc` subprocesses, exit codes,
output formats, and the promise that check/summary/schema never import torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

WARNING_SPEC = """\
name: saturated
data: {source: "sklearn:iris"}
input: {shape: [4]}
layers:
  - dense: {units: 8, activation: sigmoid}
  - dense: {units: 8, activation: sigmoid}
  - dense: {units: 8, activation: sigmoid}
output: {units: 3, activation: softmax}
"""

ERROR_SPEC = """\
name: broken
data: {source: "sklearn:iris"}
input: {shape: [4]}
layers:
  - dense: {units: 0, activaton: relu}
output: {units: 3, activation: softmax}
"""

SEMANTIC_ERROR_SPEC = """\
name: broken
data: {source: "sklearn:iris"}
input: {shape: [5]}
layers:
  - dense: {units: 8, activation: relu}
output: {units: 3, activation: softmax}
loss: binary_cross_entropy
"""


def specc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *args], cwd=cwd, capture_output=True, text=True
    )


def test_every_example_spec_checks_clean() -> None:
    result = specc("check", *map(str, SPECS))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if ": ok: " in line]
    assert len(lines) == len(SPECS)
    assert "Traceback" not in result.stderr


def test_errors_exit_1_with_positions_and_did_you_mean(tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(ERROR_SPEC)
    result = specc("check", str(spec))
    assert result.returncode == 1
    out = result.stdout
    assert f"{spec}:5:23: error[unknown-key]" in out
    assert "did you mean 'activation'?" in out
    assert f"{spec}:5:20: error[out-of-range]" in out  # both problems in one run


def test_semantic_errors_all_reported(tmp_path: Path) -> None:
    spec = tmp_path / "semantic.yaml"
    spec.write_text(SEMANTIC_ERROR_SPEC)
    result = specc("check", str(spec))
    assert result.returncode == 1
    codes = {line.split("[")[1].split("]")[0] for line in result.stdout.splitlines() if "[" in line}
    assert {"loss-output-mismatch", "data-input-mismatch"} <= codes


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    spec = tmp_path / "sat.yaml"
    spec.write_text(WARNING_SPEC)
    relaxed = specc("check", str(spec))
    assert relaxed.returncode == 0
    assert "warning[" in relaxed.stdout
    assert specc("check", "--strict", str(spec)).returncode == 1


def test_json_format_is_machine_readable(tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(ERROR_SPEC)
    result = specc("check", "--format", "json", str(spec), str(SPECS[0]))
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert [f["valid"] for f in doc["files"]] == [False, True]
    first = doc["diagnostics"][0]
    assert set(first) == {"file", "line", "col", "severity", "code", "message", "hints"}
    assert {d["code"] for d in doc["diagnostics"]} >= {"unknown-key", "out-of-range"}


@pytest.mark.parametrize(
    "args",
    [
        ("check", "no/such/spec.yaml"),
        ("summary", "no/such/spec.yaml"),
        ("check",),
        ("frobnicate",),
        ("check", "--format", "xml", "specs/iris.yaml"),
    ],
)
def test_usage_errors_and_unreadable_files_exit_2(args: tuple[str, ...]) -> None:
    result = specc(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_binary_file_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    spec = tmp_path / "bin.yaml"
    spec.write_bytes(b"\xff\xfe\x00garbage")
    result = specc("check", str(spec))
    assert result.returncode == 2
    assert "not UTF-8" in result.stderr


def test_override_is_named_in_diagnostics() -> None:
    result = specc("check", "specs/iris.yaml", "--set", "optimizer.lr=-1")
    assert result.returncode == 1
    assert result.stdout.startswith("--set optimizer.lr=-1:1:")
    assert "out-of-range" in result.stdout


def test_summary_prints_table_with_total() -> None:
    result = specc("summary", "specs/digits_mlp.yaml")
    assert result.returncode == 0, result.stderr
    total = (64 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10)
    assert result.stdout.splitlines()[-1].endswith(str(total))


def test_schema_validates_every_example_and_rejects_a_typo(tmp_path: Path) -> None:
    out = tmp_path / "spec.schema.json"
    assert specc("schema", "-o", str(out)).returncode == 0
    validator = jsonschema.Draft202012Validator(json.loads(out.read_text()))
    for path in SPECS:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path, [e.message for e in errors])
    bad = yaml.safe_load((ROOT / "specs/iris.yaml").read_text())
    bad["optimizer"]["nesterv"] = True
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize(
    "argv", [["check", "specs/digits_cnn.yaml"], ["summary", "specs/digits_lstm.yaml"], ["schema"]]
)
def test_light_commands_never_import_heavy_modules(argv: list[str]) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from specc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main({argv!r})\n"
        "mods = ('torch', 'numpy', 'sklearn', 'pandas', 'onnx')\n"
        "heavy = sorted(m for m in mods if m in sys.modules)\n"
        "print(status, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0 []"


def test_spec_reference_doc_is_current() -> None:
    from specc.schema.reference import render_reference

    doc = ROOT / "docs" / "spec-reference.md"
    assert doc.read_text() == render_reference(), (
        "docs/spec-reference.md is stale: python -m specc.schema.reference > docs/spec-reference.md"
    )


def test_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    """`specc check ... | head`: the reader leaves early; specc ends quietly, no traceback."""
    spec = tmp_path / "broken.yaml"
    spec.write_text(ERROR_SPEC)
    proc = subprocess.Popen(
        [sys.executable, "-m", "specc", "check", str(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before specc writes anything
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 1
    assert stderr == ""


def test_compile_into_a_users_folder_keeps_their_files(tmp_path: Path) -> None:
    """-o DIR writes model.py, data.py, train.py beside what is there, and never deletes."""
    (tmp_path / "notes.txt").write_text("mine")
    result = specc("compile", "specs/iris.yaml", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert {"model.py", "data.py", "train.py"} <= {p.name for p in tmp_path.iterdir()}
    assert specc("compile", "--check", "specs/iris.yaml", "-o", str(tmp_path)).returncode == 0
    (tmp_path / "model.py").write_text("# edited\n")
    stale = specc("compile", "--check", "specs/iris.yaml", "-o", str(tmp_path))
    assert stale.returncode == 1
    assert "model.py: differs" in stale.stderr


@pytest.mark.parametrize(
    "args",
    [("schema", "-o", "{blocked}/x.json"), ("compile", "specs/iris.yaml", "-o", "{blocked}")],
)
def test_unwritable_output_exits_2(args: tuple[str, ...], tmp_path: Path) -> None:
    """An output path under a plain file cannot be written: a usage error, not a traceback."""
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    result = specc(*(a.format(blocked=blocked) for a in args))
    assert result.returncode == 2
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
