"""The IR that analysis builds: resolved options, init schemes, names, data and training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from specc.analysis.ir import (
    AdamOptions,
    BatchNormOptions,
    Conv2dOptions,
    CosineScheduleOptions,
    FlipAugmentOptions,
    LayerNormOptions,
    LeakyReluOptions,
    Pool1dOptions,
    Pool2dOptions,
    PReluOptions,
    Program,
    ShiftAugmentOptions,
)
from specc.analysis.naming import class_name, path_of, source_of
from specc.pipeline import check_text

REPO = Path(__file__).resolve().parent.parent


def program(text: str, spec_dir: Path = REPO / "specs") -> Program:
    """The Program of a spec text (which must be free of errors)."""
    checked = check_text(text, "spec.yaml", spec_dir)
    assert checked.program is not None, [d.render() for d in checked.diagnostics]
    return checked.program


DIGITS = "name: digits_net\ndata: {source: 'sklearn:digits'}\n"
OUT10 = "output: {units: 10, activation: softmax}\n"


def test_class_name_and_sources() -> None:
    assert class_name("digits_mlp") == "DigitsMlp"
    assert class_name("mlp_2x") == "Mlp2x"
    path = ("layers", 3, "residual", "layers", 0)
    assert source_of(path) == "layers[3].residual.layers[0]"
    assert path_of(source_of(path)) == path


def test_idents_are_numbered_per_block() -> None:
    prog = program(
        DIGITS + "input: {shape: [1, 8, 8]}\nlayers:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}\n"
        "  - residual:\n      layers:\n"
        "        - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}\n"
        "        - batchnorm:\n"
        "  - maxpool2d:\n  - separable_conv2d: {filters: 4, kernel_size: 3}\n"
        "  - global_avgpool:\n  - dropout: {rate: 0.2}\n  - dense: {units: 8, activation: relu}\n"
        "  - activation: relu\n  - gaussian_noise: {std: 0.1}\n  - layernorm:\n" + OUT10
    )
    layers = prog.model.layers
    assert [x.ident for x in layers] == [
        "conv1", "res1", "pool1", "sepconv1", "gpool1", "drop1", "dense1", "act1", "noise1", "ln1",
    ]  # fmt: skip
    assert [c.ident for c in layers[1].children] == ["conv1", "bn1"]
    assert layers[1].children[1].source == "layers[1].residual.layers[1]"
    assert prog.model.output.ident == "output" and prog.model.output.source == "output"
    assert prog.model.class_name == "DigitsNet"


def test_resolved_options() -> None:
    prog = program(
        DIGITS + "input: {shape: [1, 8, 8]}\nlayers:\n"
        "  - conv2d: {filters: 4, kernel_size: [3, 1], padding: same}\n"
        "  - conv2d: {filters: 4, kernel_size: 3, stride: [2, 1], padding: 1, dilation: 2}\n"
        "  - maxpool2d: {pool_size: [2, 2], padding: 1}\n  - flatten:\n" + OUT10
    )
    same, padded, pool, _ = prog.model.layers
    assert same.options == Conv2dOptions(4, (3, 1), (1, 1), "same", (1, 1), True)
    assert padded.options == Conv2dOptions(4, (3, 3), (2, 1), (1, 1), (2, 2), True)
    # floor((8 + 2 - 2*2 - 1)/2) + 1 = 3 and floor((8 + 2 - 4 - 1)/1) + 1 = 6
    assert padded.out_shape == (4, 3, 6)
    assert pool.options == Pool2dOptions(pool_size=(2, 2), stride=(2, 2), padding=(1, 1))
    assert pool.out_shape == (4, 2, 4)  # floor((3 + 2 - 2)/2) + 1, floor((6 + 2 - 2)/2) + 1


def test_sequence_layers_are_channels_last() -> None:
    prog = program(
        DIGITS + "input: {shape: [8, 8]}\nlayers:\n"
        "  - conv1d: {filters: 6, kernel_size: 3}\n  - batchnorm:\n  - avgpool1d:\n"
        "  - layernorm:\n  - global_maxpool:\n" + OUT10
    )
    conv, bn, pool, ln, gpool = prog.model.layers
    assert conv.out_shape == (6, 6) and conv.params == 8 * 6 * 3 + 6
    assert bn.options == BatchNormOptions(momentum=0.1, eps=1e-5, dims=1) and bn.params == 2 * 6
    assert pool.out_shape == (3, 6) and pool.options == Pool1dOptions(2, stride=2, padding=0)
    assert ln.options == LayerNormOptions(eps=1e-5, normalized_shape=(6,))
    assert gpool.out_shape == (6,)


@pytest.mark.parametrize(
    ("weights", "layers", "expected"),
    [
        ("auto", "  - dense: {units: 8, activation: relu}\n", ["he_normal"]),
        ("auto", "  - dense: {units: 8, activation: tanh}\n", ["xavier_uniform"]),
        (
            "auto",
            "  - dense: {units: 8}\n  - batchnorm:\n  - dropout: {rate: 0.2}\n"
            "  - activation: elu\n",
            ["he_normal", "torch", "torch", "torch"],
        ),
        ("auto", "  - dense: {units: 8}\n  - dense: {units: 8, activation: gelu}\n",
         ["xavier_uniform", "he_normal"]),
        ("auto", "  - maxout: {units: 8}\n  - rbf: {units: 8}\n", ["he_normal", "xavier_uniform"]),
        ("he_uniform", "  - dense: {units: 8, activation: relu}\n  - rbf: {units: 4}\n",
         ["he_uniform", "he_uniform"]),
    ],
)  # fmt: skip
def test_weight_init(weights: str, layers: str, expected: list[str]) -> None:
    prog = program(
        DIGITS + f"input: {{shape: [64]}}\ninit: {{weights: {weights}}}\nlayers:\n{layers}" + OUT10
    )
    assert [x.weight_init for x in prog.model.layers] == expected
    assert prog.model.output.weight_init == ("xavier_uniform" if weights == "auto" else weights)


def test_recurrent_init_and_projection() -> None:
    prog = program(
        DIGITS + "input: {shape: [8, 8]}\nlayers:\n  - lstm: {units: 8, return_sequences: true}\n"
        "  - residual: {projection: true, layers: [{gru: {units: 4, return_sequences: true}}]}\n"
        "  - flatten:\n" + OUT10
    )
    lstm, res, _ = prog.model.layers
    assert lstm.weight_init == "xavier_uniform" and res.weight_init == "xavier_uniform"
    assert res.out_shape == (8, 4) and res.params == res.children[0].params + 8 * 4


def test_loss_inference_and_resolved_spec() -> None:
    prog = program(DIGITS + "input: {shape: [64]}\n" + OUT10)
    assert prog.loss.name == "cross_entropy" and prog.loss.inferred
    assert prog.resolved["loss"] == {"name": "cross_entropy", "label_smoothing": 0.0}
    assert prog.resolved["training"]["epochs"] == 100
    assert prog.task == "multiclass" and prog.metrics == ("loss", "accuracy")
    assert prog.spec_path == "spec.yaml" and prog.onnx_opset is None
    reg = program(
        "name: r\ndata: {source: 'sklearn:linnerud'}\ninput: {shape: [3]}\n"
        "output: {units: 3, activation: linear}\n"
        "training: {batch_size: 8}\n"
    )
    assert reg.loss.name == "mse" and reg.task == "regression"
    assert reg.metrics == ("loss", "mae", "rmse", "r2")
    assert reg.data.stratify is False  # stratify: true (the default) is dropped for regression


def test_training_ir() -> None:
    prog = program(
        DIGITS + "input: {shape: [64]}\n" + OUT10 + "optimizer:\n  name: adam\n  lr: 0.01\n"
        "  schedule: {name: plateau, monitor: val_accuracy}\n"
        "training: {epochs: 40}\nstopping:\n  early: {monitor: val_accuracy, patience: 5}\n"
        "  refit: best_epochs\nexport: {onnx: {opset: 17}}\n"
    )
    tr = prog.training
    assert tr.threads == 1
    assert tr.optimizer.options == AdamOptions(betas=(0.9, 0.999), eps=1e-8)
    assert (tr.schedule.options.metric, tr.schedule.options.mode) == ("accuracy", "max")
    assert tr.early is not None and tr.early.mode == "max" and tr.refit == "best_epochs"
    assert prog.onnx_opset == 17
    cos = program(
        DIGITS + "input: {shape: [64]}\n" + OUT10 + "optimizer: {name: sgd, schedule: cosine}\n"
    )
    assert cos.training.schedule.options == CosineScheduleOptions(min_lr=0.0, epochs=100)
    assert cos.training.early is None


def test_threads_auto_for_large_models() -> None:
    big = program(DIGITS + "input: {shape: [64]}\nlayers:\n  - dense: {units: 40000}\n" + OUT10)
    assert big.model.params >= 2_000_000 and big.training.threads is None
    fixed = program(DIGITS + "input: {shape: [64]}\ntraining: {threads: 3}\n" + OUT10)
    assert fixed.training.threads == 3


def test_data_ir_for_files() -> None:
    csv = program(
        "name: p\ndata:\n  source: data/digit_properties.csv\n  target: [even, large, prime]\n"
        "input: {shape: [64]}\noutput: {units: 3, activation: sigmoid}\n"
    )
    assert csv.data.kind == "csv" and csv.data.path == str(REPO / "specs/data/digit_properties.csv")
    assert csv.data.target == ("even", "large", "prime") and csv.data.features is None
    assert csv.task == "multilabel" and csv.loss.name == "binary_cross_entropy"
    npz = program(
        "name: d\ndata: {source: data/diabetes.npz}\ninput: {shape: [10]}\n"
        "output: {units: 1, activation: linear}\n"
    )
    assert (npz.data.kind, npz.data.target, npz.data.features) == ("npz", ("y",), ("x",))
    pq = program(
        "name: i\ndata: {source: data/iris_string_labels.parquet, target: species}\n"
        "input: {shape: [4]}\noutput: {units: 3, activation: softmax}\n"
    )
    assert pq.data.kind == "parquet" and pq.data.dataset is None


def test_sklearn_data_ir_and_augment() -> None:
    prog = program(
        "name: a\ndata:\n  source: sklearn:digits\n  split: {val: 0.1, test: 0.3, seed: 4}\n"
        "  augment: [{shift: {pixels: 2}}, {flip: {axis: vertical, p: 0.3}}]\n"
        "input: {shape: [1, 8, 8]}\nlayers: [{flatten: }]\n" + OUT10
    )
    data = prog.data
    assert (data.kind, data.dataset, data.path, data.target) == ("sklearn", "digits", None, ())
    assert (data.val, data.test, data.split_seed, data.stratify) == (0.1, 0.3, 4, True)
    assert [(a.kind, a.options) for a in data.augment] == [
        ("shift", ShiftAugmentOptions(pixels=2)),
        ("flip", FlipAugmentOptions(axis="vertical", p=0.3)),
    ]


def test_binary_dataset_accepts_both_output_units() -> None:
    head = "name: b\ndata: {source: 'sklearn:breast_cancer'}\ninput: {shape: [30]}\n"
    assert program(head + "output: {units: 1, activation: sigmoid}\n").task == "binary"
    assert program(head + "output: {units: 2, activation: softmax}\n").task == "multiclass"


def test_activation_ir() -> None:
    prog = program(
        DIGITS + "input: {shape: [64]}\nlayers:\n"
        "  - dense: {units: 8, activation: {name: leaky_relu, slope: 0.2}}\n"
        "  - activation: {name: prelu, per_channel: true}\n" + OUT10
    )
    dense, act = prog.model.layers
    assert dense.activation is not None and dense.activation.options == LeakyReluOptions(0.2)
    assert act.activation is not None and act.activation.name == "prelu"
    assert act.activation.options == PReluOptions(init=0.25, per_channel=True, channels=8)
    assert act.params == 8


def test_override_positions_name_the_override() -> None:
    checked = check_text(DIGITS + "input: {shape: [64]}\n" + OUT10, "spec.yaml", REPO, ["loss=mse"])
    codes = [(d.file, d.code) for d in checked.diagnostics]
    assert codes == [("--set loss=mse", "loss-output-mismatch")]


def test_no_heavy_imports() -> None:
    """check/summary stay light: analysis never imports torch, numpy, pandas or sklearn."""
    code = (
        "import sys, specc.analysis.analyze, specc.analysis.summary\n"
        "from specc.pipeline import check_file\n"
        "check_file('specs/digits_cnn.yaml'); check_file('specs/diabetes.yaml')\n"
        "heavy = {'torch', 'numpy', 'pandas', 'sklearn', 'pyarrow'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- issue 8: every error across stages, and the installed torch, through `specc check` --


def check_json(spec: Path, env: dict[str, str] | None = None) -> tuple[int, list[tuple]]:
    """`specc check --format json SPEC` in a subprocess: exit status, (line, code) pairs."""
    import json
    import os

    done = subprocess.run(
        [sys.executable, "-m", "specc", "check", "--format", "json", str(spec)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    found = [(d["line"], d["code"]) for d in json.loads(done.stdout)["diagnostics"]]
    return done.returncode, found


def test_schema_error_does_not_hide_semantic_errors(tmp_path: Path) -> None:
    """A bad dropout.rate (layers) and a loss that does not suit the output both report."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: case\ndata: {source: 'sklearn:iris'}\ninput: {shape: [4]}\nlayers:\n"
        "  - dropout: {rate: 1.5}\noutput: {units: 3, activation: softmax}\n"
        "loss: binary_cross_entropy\nstopping: {refit: continue}\n"
    )
    status, found = check_json(spec)
    assert status == 1
    assert found == [
        (5, "out-of-range"),
        (7, "loss-output-mismatch"),
        (8, "refit-needs-early-stopping"),
    ]


def test_duplicate_key_does_not_hide_other_errors(tmp_path: Path) -> None:
    """The loader's duplicate key is reported with the schema's and the analysis' errors."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: case\nname: again\ndata: {source: 'sklearn:iris'}\ninput: {shape: [4]}\n"
        "layers:\n  - dense: {units: -1}\noutput: {units: 3, activation: softmax}\nloss: mse\n"
    )
    status, found = check_json(spec)
    assert status == 1
    assert [code for _, code in found] == ["duplicate-key", "out-of-range", "loss-output-mismatch"]


def fake_torch(root: Path, version: str, libraries: list[str]) -> Path:
    """A stand-in torch installation (dist-info and a lib/ folder) to put on PYTHONPATH.

    Its `__init__` raises: `specc check` must find out what torch can do without importing it."""
    (root / "torch" / "lib").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text("raise ImportError('check imported torch')\n")
    for name in libraries:
        (root / "torch" / "lib" / name).write_bytes(b"")
    info = root / f"torch-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
    return root


CUDA_SPEC = (
    "name: case\ndata: {source: 'sklearn:iris'}\ninput: {shape: [4]}\n"
    "output: {units: 3, activation: softmax}\ntraining: {device: cuda}\n"
)


@pytest.mark.parametrize(
    ("version", "libraries", "warned"),
    [
        ("2.13.0+cpu", ["libtorch_cpu.so"], True),
        ("2.13.0", ["libtorch_cpu.so", "libc10.so"], True),
        ("2.13.0", ["libtorch_cpu.so", "libtorch_cuda.so"], False),
        ("2.13.0+rocm6.2", ["libtorch_cpu.so", "libtorch_hip.so"], False),
    ],
    ids=["cpu-suffix", "no-cuda-library", "cuda-build", "rocm-build"],
)
def test_cuda_device_with_a_cpu_only_torch_warns(
    tmp_path: Path, version: str, libraries: list[str], warned: bool
) -> None:
    """`device: cuda` on a CPU-only torch is a check-time warning, found without importing it."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(CUDA_SPEC)
    site = fake_torch(tmp_path / "site", version, libraries)
    status, found = check_json(spec, {"PYTHONPATH": str(site)})
    assert status == 0
    assert found == ([(5, "cuda-unavailable")] if warned else [])


def test_no_torch_no_cuda_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without torch installed `check` says nothing about the device."""
    from specc.analysis import environment

    monkeypatch.setattr(environment.importlib.util, "find_spec", lambda name: None)
    assert environment.torch_has_cuda() is None
    assert check_text(CUDA_SPEC, "spec.yaml", tmp_path).diagnostics == []
