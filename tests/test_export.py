"""`specc export`: ONNX files that match PyTorch in ONNX Runtime, or no file at all.

Differential tests (ONNX Runtime vs PyTorch) on real training runs of the example specs (the
session's `runs.trained`, shared with test_examples_train.py) and on untrained runs of the
export zoo (tests/export_zoo/: every layer kind and option), plus the graph's interface (names,
dynamic batch, metadata) and every way an export must refuse. Tests that train, or that run
`specc export` in a subprocess (a torch import each), are marked slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from conftest import EXPORT_ZOO, SPECS, specc

from specc.analysis.export_lints import ATTENTION_OPSET
from specc.pipeline import check_file
from specc.runtime import onnx_common as oc
from specc.runtime.export import (
    TOLERANCE,
    ExportError,
    export_run,
    import_file,
    load_model,
    read_run,
    run_export,
)

ALL_SPECS = sorted(p.stem for p in SPECS.glob("*.yaml"))
ZOO = sorted(p.stem for p in EXPORT_ZOO.glob("*.yaml"))
OPSETS = list(range(13, 24))


def torch_predict(run_dir: Path, x: np.ndarray) -> np.ndarray:
    """The run's model.predict on x, in PyTorch."""
    model, _, _ = load_model(read_run(run_dir))
    with torch.no_grad():
        return model.predict(torch.from_numpy(x)).numpy()


def data_rows(run_dir: Path, n: int = 300) -> np.ndarray:
    """Up to n rows of the run's test split (train split when the test split is empty)."""
    splits = import_file(run_dir / "code" / "data.py", "data").load()
    x = splits.x_test if len(splits.x_test) else splits.x_train
    return np.ascontiguousarray(x[:n], dtype=np.float32)


def assert_parity(run_dir: Path, onnx_path: Path) -> None:
    """ONNX Runtime on the file agrees with PyTorch on the run's data within TOLERANCE."""
    x = data_rows(run_dir)
    got = oc.session(str(onnx_path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, torch_predict(run_dir, x), rtol=0, atol=TOLERANCE)


# --- parity on real runs ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SPECS)
def test_trained_example_spec_exports_and_matches_torch(runs, tmp_path, name):
    """Every example spec, trained by `specc train`, exports and matches PyTorch."""
    run_dir = runs.trained(name)
    out = tmp_path / f"{name}.onnx"
    report = export_run(run_dir, out)
    assert report.max_diff <= TOLERANCE
    assert [c.size for c in report.checks][:2] == [1, 7] and len(report.checks) == 3
    assert_parity(run_dir, out)


@pytest.mark.parametrize("name", ZOO)
def test_every_layer_kind_exports_at_default_opset(runs, tmp_path, name):
    """The zoo (every layer kind and option) exports with a dynamic batch and matches."""
    run_dir = runs.untrained(name)
    out = tmp_path / "model.onnx"
    report = export_run(run_dir, out)
    assert report.opset == 18 and report.samples in ("test split", "train split")
    assert_parity(run_dir, out)


@pytest.mark.slow
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", [*ZOO, "digits_cnn", "digits_lstm"])
def test_every_layer_kind_exports_at_every_opset(runs, tmp_path, name, opset):
    """No layer kind fails at any allowed opset but attention at 13 (onnx-attention-opset)."""
    out = tmp_path / "model.onnx"
    if name == "zoo_transformer" and opset < ATTENTION_OPSET:
        with pytest.raises(ExportError, match="scaled_dot_product_attention"):
            export_run(runs.untrained(name), out, opset)
        assert not out.exists()
        return
    report = export_run(runs.untrained(name), out, opset)
    assert _opset_of(out) == opset and report.max_diff <= TOLERANCE


def test_lowest_and_highest_opsets_export_recurrent_and_conv_layers(runs, tmp_path):
    """The fast stand-in for the full sweep: opsets 13 and 23 on the sequence zoo."""
    run_dir = runs.untrained("zoo_seq")
    for opset in (13, 23):
        export_run(run_dir, tmp_path / f"{opset}.onnx", opset)
        assert _opset_of(tmp_path / f"{opset}.onnx") == opset


def _opset_of(path: Path) -> int:
    """The default-domain opset a file imports."""
    model = onnx.load(str(path))
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def test_same_padding_is_pinned_to_explicit_pads(runs, tmp_path):
    """Conv nodes carry explicit pads, never the legacy auto_pad (dilated 'same' needs it)."""
    out = tmp_path / "model.onnx"
    export_run(runs.untrained("zoo_image"), out)
    convs = [n for n in onnx.load(str(out)).graph.node if n.op_type == "Conv"]
    assert convs
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in convs]
    assert all(a.get("auto_pad", b"NOTSET") == b"NOTSET" for a in attrs)
    # conv2d 3x3 dilation 2: 4 in total per axis; conv2d 2x3: 1 and 2, the odd one at the end
    assert attrs[0]["dilations"] == [2, 2] and attrs[0]["pads"] == [2, 2, 2, 2]
    assert attrs[1]["kernel_shape"] == [2, 3] and attrs[1]["pads"] == [0, 1, 1, 1]


# --- the graph's interface ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_export(runs, tmp_path_factory) -> tuple[Path, Path]:
    """(run directory, exported file) of the trained digits MLP."""
    run_dir = runs.trained("digits_mlp")
    out = tmp_path_factory.mktemp("mlp") / "digits_mlp.onnx"
    export_run(run_dir, out)
    return run_dir, out


@pytest.mark.slow
def test_graph_has_one_input_and_output_with_a_dynamic_batch(mlp_export):
    """input float32 [batch, 64] -> output float32 [batch, 10]; one self-contained file."""
    _, out = mlp_export
    model = onnx.load(str(out), load_external_data=False)
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert (inp.name, outp.name) == ("input", "output")
    for value, rest in ((inp, [64]), (outp, [10])):
        tensor = value.type.tensor_type
        assert tensor.elem_type == onnx.TensorProto.FLOAT
        batch, *dims = tensor.shape.dim
        assert batch.dim_param and not batch.dim_value
        assert [d.dim_value for d in dims] == rest
    assert not list(out.parent.glob("*.data"))
    assert all(not t.external_data for t in model.graph.initializer)


@pytest.mark.slow
def test_outputs_are_probabilities_and_do_not_depend_on_the_batch(mlp_export):
    """Row i's output is the same alone and inside batches of other sizes; rows sum to 1."""
    run_dir, out = mlp_export
    sess = oc.session(str(out))
    x = data_rows(run_dir, 256)
    whole = sess.run(None, {"input": x})[0]
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, atol=1e-5)
    for i in (0, 5, 255):
        alone = sess.run(None, {"input": x[i : i + 1]})[0]
        np.testing.assert_allclose(alone[0], whole[i], rtol=0, atol=1e-6)
    odd = sess.run(None, {"input": x[3:10]})[0]
    np.testing.assert_allclose(odd, whole[3:10], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_metadata_round_trip(mlp_export):
    """specc.name/spec/labels/features/task/version, as ONNX Runtime reads them back."""
    run_dir, out = mlp_export
    meta = oc.specc_metadata(oc.session(str(out)))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["specc.name"] == "digits_mlp"
    assert json.loads(meta["specc.spec"]) == yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert json.loads(meta["specc.labels"]) == [str(i) for i in range(10)] == summary["labels"]
    assert json.loads(meta["specc.features"]) == summary["features"]
    assert len(summary["features"]) == 64
    assert meta["specc.task"] == "multiclass"
    assert meta["specc.version"]


def test_regression_models_have_no_labels(runs, tmp_path):
    """A linear output unit exports values, task regression, no specc.labels."""
    out = tmp_path / "model.onnx"
    export_run(runs.untrained("zoo_rnn"), out)
    meta = oc.specc_metadata(oc.session(str(out)))
    assert meta["specc.task"] == "regression" and "specc.labels" not in meta


# --- the command ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_writes_the_default_file_at_the_spec_opset(runs, tmp_path):
    """`specc export RUN_DIR` writes RUN_DIR/model.onnx at export.onnx.opset, prints a summary."""
    run_dir = shutil.copytree(runs.untrained("iris", "export.onnx.opset=17"), tmp_path / "run")
    (run_dir / "model.onnx").unlink(missing_ok=True)
    done = specc("export", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert f"wrote {run_dir / 'model.onnx'} (" in done.stdout
    assert "opset 17); max |onnx - torch| = " in done.stdout and "over 3 batches" in done.stdout
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    assert _opset_of(run_dir / "model.onnx") == 17
    assert_parity(run_dir, run_dir / "model.onnx")


def test_cli_opset_option_overrides_the_spec(runs, tmp_path, capsys):
    """--opset N wins over the spec's export.onnx.opset."""
    out = tmp_path / "sub" / "m.onnx"
    assert run_export(str(runs.untrained("iris")), str(out), 21) == 0
    assert _opset_of(out) == 21
    assert capsys.readouterr().out.startswith(f"wrote {out} (")


@pytest.mark.parametrize("opset", [12, 24])
def test_opsets_outside_13_to_23_are_refused(runs, tmp_path, capsys, opset):
    """An opset the spec language does not allow: exit 2, no file."""
    out = tmp_path / "m.onnx"
    assert run_export(str(runs.untrained("iris")), str(out), opset) == 2
    assert f"opset {opset} is outside 13..23" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_missing_run_directory(tmp_path):
    """A run directory that does not exist: exit 2, one line, no traceback (subprocess)."""
    done = specc("export", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"specc export: error: {tmp_path / 'nope'}: no such run directory"


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        ("model.pt", "model.pt is missing; training has not finished"),
        ("spec.yaml", "spec.yaml is missing"),
        ("code", "code/model.py is missing"),
    ],
)
def test_incomplete_run_directory(runs, tmp_path, capsys, remove, expected):
    """A run without its final weights, spec or code: exit 2 and what is missing."""
    run_dir = shutil.copytree(runs.untrained("iris"), tmp_path / "run")
    shutil.copy(run_dir / "model.pt", run_dir / "last.pt")
    target = run_dir / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert run_export(str(run_dir), None, None) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (run_dir / "model.onnx").exists()


def test_weights_that_do_not_fit_the_code(runs, tmp_path, capsys):
    """model.pt from another model: a clear message, not a state-dict traceback."""
    run_dir = shutil.copytree(runs.untrained("iris"), tmp_path / "run")
    shutil.copy(runs.untrained("digits_mlp") / "model.pt", run_dir / "model.pt")
    assert run_export(str(run_dir), None, None) == 1
    assert "model.pt: does not fit code/model.py" in capsys.readouterr().err


# --- refusing to write a model that disagrees with PyTorch ------------------------------------

BRANCHY_PREDICT = '''
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities, computed differently when the batch sums to more than zero (a bug)."""
        if x.sum() > 0:
            return torch.softmax(self(x), dim=-1)
        return torch.softmax(self(x) / 2, dim=-1)
'''


def _branchy_run(runs, tmp_path: Path) -> Path:
    """A copy of the iris run whose predict branches on the data: tracing records one branch."""
    run_dir = shutil.copytree(runs.untrained("iris"), tmp_path / "run")
    model_py = run_dir / "code" / "model.py"
    text = model_py.read_text()
    start = text.index("    def predict(")
    end = text.index("\n\n", text.index('"""', text.index('"""', start) + 3))
    model_py.write_text(text[:start] + BRANCHY_PREDICT.strip("\n") + text[end:])
    return run_dir


@pytest.mark.slow
def test_export_refuses_when_onnx_runtime_disagrees_with_torch(runs, tmp_path):
    """A data-dependent branch is traced as one path: parity fails, exit 1, nothing written."""
    run_dir = _branchy_run(runs, tmp_path)
    out = tmp_path / "out.onnx"
    out.write_bytes(b"an earlier file")
    done = specc("export", str(run_dir), "-o", str(out))
    assert done.returncode == 1
    assert "ONNX Runtime and PyTorch disagree on a batch of 1 rows: max |onnx - torch| = " in (
        done.stderr
    )
    assert "nothing was written" in done.stderr and "hint: the tracer warned" in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_bytes() == b"an earlier file"
    assert not list(tmp_path.glob(".out.onnx*"))


def test_export_error_names_the_figure_and_the_batch(runs, tmp_path):
    """export_run raises ExportError carrying the difference and the batch size."""
    with pytest.raises(ExportError, match=r"batch of 1 rows: max \|onnx - torch\| = [0-9.e-]+ >"):
        export_run(_branchy_run(runs, tmp_path), tmp_path / "m.onnx")


def test_runs_without_data_are_verified_on_random_inputs(runs, tmp_path, capsys):
    """When code/data.py cannot load, export still verifies (on random rows) and says so."""
    run_dir = shutil.copytree(runs.untrained("iris"), tmp_path / "run")
    (run_dir / "code" / "data.py").write_text("def load(path=None):\n    raise OSError('gone')\n")
    assert run_export(str(run_dir), None, None) == 0
    captured = capsys.readouterr()
    assert "verified on random inputs" in captured.err and "gone" in captured.err
    assert "rows of the random inputs" in captured.out


# --- export lints ---------------------------------------------------------------------------

HUGE = """\
name: huge
data: {source: sklearn:digits}
input: {shape: [64]}
layers:
  - dense: {units: 100000, activation: relu}
  - dense: {units: 6000, activation: relu}
output: {units: 10, activation: softmax}
export:
  onnx: {opset: 18}
"""


def _lint(path: Path):
    """The export lints `specc check` reports for a spec file."""
    checked = check_file(path)
    assert checked.ok
    return [d for d in checked.diagnostics if d.code.startswith("onnx-")]


def test_lint_warns_when_the_weights_exceed_one_onnx_file(tmp_path):
    """606M float32 parameters do not fit protobuf's 2 GiB: onnx-too-large at export.onnx."""
    (tmp_path / "huge.yaml").write_text(HUGE)
    (diag,) = _lint(tmp_path / "huge.yaml")
    assert (diag.line, diag.col, diag.severity, diag.code) == (9, 9, "warning", "onnx-too-large")
    assert "606,566,010 parameters" in diag.message


def test_lint_is_silent_for_exportable_and_non_exporting_specs(tmp_path):
    """The example specs export, so no warnings; nor for a huge spec without export.onnx."""
    for spec in SPECS.glob("*.yaml"):
        assert _lint(spec) == []
    (tmp_path / "huge.yaml").write_text(HUGE.replace("export:\n  onnx: {opset: 18}\n", ""))
    assert _lint(tmp_path / "huge.yaml") == []
