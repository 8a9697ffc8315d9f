"""Parameter counts and the summary table, against hand arithmetic and (when present) torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from specc.analysis.ir import Program, RecurrentOptions
from specc.analysis.summary import render_summary
from specc.pipeline import check_text

HAS_TORCH = importlib.util.find_spec("torch") is not None


def program(body: str, tmp_path: Path, source: str = "sklearn:digits") -> Program:
    """The Program of a small spec (data, name and output filled in when absent)."""
    text = f"name: t\ndata: {{source: '{source}'}}\n{body}"
    if "output:" not in body:
        text += "output: {units: 10, activation: softmax}\n"
    checked = check_text(text, "spec.yaml", tmp_path)
    assert checked.program is not None, [d.render() for d in checked.diagnostics]
    return checked.program


def counts(prog: Program) -> list[int]:
    """Per-layer parameter counts, top level, output last."""
    return [layer.params for layer in prog.model.layers] + [prog.model.output.params]


def test_mlp(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [64]}\nlayers:\n"
        "  - dense: {units: 128, activation: relu}\n  - dropout: {rate: 0.2}\n"
        "  - dense: {units: 64, activation: relu}\n",
        tmp_path,
    )
    assert counts(prog) == [64 * 128 + 128, 0, 128 * 64 + 64, 64 * 10 + 10]
    assert prog.model.params == 8320 + 8256 + 650 == 17226


def test_cnn(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [1, 8, 8]}\nlayers:\n"
        "  - conv2d: {filters: 8, kernel_size: 3, activation: relu}\n"  # [8, 6, 6]
        "  - maxpool2d: {pool_size: 2}\n"  # [8, 3, 3]
        "  - conv2d: {filters: 16, kernel_size: 3, padding: 1, activation: relu}\n"  # [16, 3, 3]
        "  - batchnorm:\n  - flatten:\n",  # [144]
        tmp_path,
    )
    shapes = [layer.out_shape for layer in prog.model.layers]
    assert shapes == [(8, 6, 6), (8, 3, 3), (16, 3, 3), (16, 3, 3), (144,)]
    assert counts(prog) == [1 * 8 * 9 + 8, 0, 8 * 16 * 9 + 16, 2 * 16, 0, 144 * 10 + 10]
    assert prog.model.params == 80 + 1168 + 32 + 1450 == 2730


def test_bidirectional_two_layer_lstm(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [8, 8]}\nlayers:\n"
        "  - lstm: {units: 16, bidirectional: true, num_layers: 2, dropout: 0.1}\n",
        tmp_path,
    )
    first = 2 * 4 * (16 * (8 + 16) + 2 * 16)  # in = 8 features
    second = 2 * 4 * (16 * (32 + 16) + 2 * 16)  # in = 16 units x 2 directions
    assert (first, second) == (3328, 6400)
    assert counts(prog) == [first + second, 32 * 10 + 10]
    assert prog.model.layers[0].out_shape == (32,)


def test_gru_and_rnn(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [8, 8]}\nlayers:\n"
        "  - gru: {units: 20, return_sequences: true}\n"
        "  - rnn: {units: 6, activation: relu}\n",
        tmp_path,
    )
    assert counts(prog) == [3 * (20 * (8 + 20) + 40), 1 * (6 * (20 + 6) + 12), 6 * 10 + 10]
    assert [layer.out_shape for layer in prog.model.layers] == [(8, 20), (6,)]
    assert prog.model.layers[1].options == RecurrentOptions(6, False, False, 1, 0.0, "relu")


def test_residual_with_projection(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [64]}\nlayers:\n"
        "  - residual:\n      projection: true\n      layers:\n"
        "        - dense: {units: 32, activation: relu}\n        - dense: {units: 48}\n",
        tmp_path,
    )
    block = prog.model.layers[0]
    inner = [64 * 32 + 32, 32 * 48 + 48]
    assert [c.params for c in block.children] == inner
    assert block.params == sum(inner) + 64 * 48  # bias-free projection 64 -> 48
    assert prog.model.params == 2080 + 1584 + 3072 + 48 * 10 + 10 == 7226


def test_residual_conv_projection(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [1, 8, 8]}\nlayers:\n"
        "  - residual:\n      projection: true\n      layers:\n"
        "        - conv2d: {filters: 8, kernel_size: 3, padding: same, activation: relu}\n"
        "  - flatten:\n",
        tmp_path,
    )
    assert prog.model.layers[0].params == (1 * 8 * 9 + 8) + 1 * 8  # conv + 1x1 projection
    assert prog.model.layers[0].out_shape == (8, 8, 8)


def test_maxout(tmp_path: Path) -> None:
    prog = program("input: {shape: [64]}\nlayers:\n  - maxout: {units: 16, pieces: 3}\n", tmp_path)
    assert counts(prog) == [64 * 16 * 3 + 16 * 3, 16 * 10 + 10]


def test_rbf(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [4]}\nlayers:\n  - rbf: {units: 10}\n"
        "output: {units: 3, activation: softmax}\n",
        tmp_path,
        "sklearn:iris",
    )
    assert counts(prog) == [10 * 4 + 10, 10 * 3 + 3]  # centres + one width per unit


def test_separable_conv(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [1, 8, 8]}\nlayers:\n"
        "  - separable_conv2d: {filters: 8, kernel_size: 3, depth_multiplier: 2}\n"
        "  - global_avgpool:\n",
        tmp_path,
    )
    depthwise = 1 * 2 * 3 * 3  # no bias
    pointwise = 1 * 2 * 8 + 8
    assert counts(prog) == [depthwise + pointwise, 0, 8 * 10 + 10]


def test_norms_and_prelu(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [2, 4, 8]}\nlayers:\n"
        "  - conv2d: {filters: 3, kernel_size: 1, activation: {name: prelu, per_channel: true}}\n"
        "  - layernorm:\n  - batchnorm:\n  - flatten:\n"
        "  - dense: {units: 5, activation: prelu}\n",
        tmp_path,
    )
    assert counts(prog) == [2 * 3 + 3 + 3, 2 * 3 * 4 * 8, 2 * 3, 0, 96 * 5 + 5 + 1, 5 * 10 + 10]


def test_summary_table(tmp_path: Path) -> None:
    prog = program(
        "input: {shape: [64]}\nlayers:\n"
        "  - dense: {units: 32, activation: relu}\n"
        "  - residual:\n      layers:\n"
        "        - dense: {units: 32, activation: relu}\n        - dropout: {rate: 0.2}\n",
        tmp_path,
    )
    assert render_summary(prog) == (
        "layer     type      output shape  params\n"
        "----------------------------------------\n"
        "dense1    dense     [32]            2080\n"
        "res1      residual  [32]            1056\n"
        "  dense1  dense     [32]            1056\n"
        "  drop1   dropout   [32]               0\n"
        "output    output    [10]             330\n"
        "----------------------------------------\n"
        "total params: 3466"
    )


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize(
    ("layer", "module"),
    [
        (
            "lstm: {units: 16, bidirectional: true, num_layers: 2}",
            "LSTM(8, 16, 2, bidirectional=True)",
        ),
        ("gru: {units: 20, num_layers: 3}", "GRU(8, 20, 3)"),
        ("rnn: {units: 7, bidirectional: true}", "RNN(8, 7, bidirectional=True)"),
        ("conv1d: {filters: 5, kernel_size: 3}", "Conv1d(8, 5, 3)"),
    ],
)
def test_recurrent_counts_match_torch(layer: str, module: str, tmp_path: Path) -> None:
    """Our arithmetic against PyTorch's own parameter count."""
    import torch.nn as nn

    tail = "  - flatten:\n" if layer.startswith("conv1d") else ""
    prog = program(f"input: {{shape: [8, 8]}}\nlayers:\n  - {layer}\n{tail}", tmp_path)
    built = eval(f"nn.{module}", {"nn": nn})
    assert prog.model.layers[0].params == sum(p.numel() for p in built.parameters())


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
def test_separable_and_maxout_match_torch(tmp_path: Path) -> None:
    """Depthwise (groups=Cin, no bias) + pointwise conv, and maxout as one Linear(in, u·k)."""
    import torch.nn as nn

    prog = program(
        "input: {shape: [2, 8, 4]}\nlayers:\n"
        "  - separable_conv2d: {filters: 4, kernel_size: [3, 2], depth_multiplier: 2}\n"
        "  - flatten:\n  - maxout: {units: 6, pieces: 2}\n",
        tmp_path,
    )
    separable = [nn.Conv2d(2, 4, (3, 2), groups=2, bias=False), nn.Conv2d(4, 4, 1)]
    flat = 4 * 6 * 3
    maxout = nn.Linear(flat, 6 * 2)
    expected = [
        sum(p.numel() for m in separable for p in m.parameters()),
        0,
        maxout.weight.numel() + 12,
    ]
    assert [layer.params for layer in prog.model.layers] == expected
