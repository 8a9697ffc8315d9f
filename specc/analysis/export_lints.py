"""Export lints: warnings (code prefix `onnx-`) for specs that `specc export` cannot export.

Each row was found by exporting, not by guessing. specc exports with PyTorch's TorchScript
exporter and pins Conv's `padding: same` to explicit pads (specc/runtime/export.py); with that,
every layer kind and option of the vocabulary, with a dynamic batch, exported and matched
PyTorch within 1e-4 in ONNX Runtime at every allowed opset 13-23 (tests/export_zoo/, the
example specs; docs/deployment.md, "What does not export"), except one layer/opset pair:
`transformer_encoder`'s F.scaled_dot_product_attention has no ONNX form before opset 14 (the
exporter refuses it at 13; tests/export_zoo/zoo_transformer.yaml exports at 14-23). The other
failure found is size. Nothing here imports torch or onnx.

A transformer's time axis is not dynamic in the graph: the input is [batch, *input.shape]
(contract §6), T fixed by input.shape, and learned positions are a table of exactly T rows;
only the batch axis is dynamic, at every opset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from specc.analysis.ir import LayerIR, Program
from specc.analysis.report import Finding, warning

PROTOBUF_LIMIT = 2**31
"""Bytes a serialized ONNX model may take in one file (protobuf's 2 GiB message limit)."""
FLOAT32 = 4
ONNX_PATH = ("export", "onnx")


class ExportLint(NamedTuple):
    """One export lint: stable code, one-sentence purpose, handler."""

    code: str
    purpose: str
    check: Callable[[Program], list[Finding]]


def weight_bytes(program: Program) -> int:
    """Bytes of float32 weights and of the normaliser's two statistics, as exported."""
    normaliser = 0 if program.model.normalize == "none" else 2
    return FLOAT32 * (program.model.params + normaliser * math.prod(program.model.input_shape))


def _too_large(program: Program) -> list[Finding]:
    """Weights beyond 2 GiB do not fit one self-contained ONNX file."""
    size = weight_bytes(program)
    if size < PROTOBUF_LIMIT:
        return []
    most = PROTOBUF_LIMIT // FLOAT32
    msg = (
        f"the model's weights take {size / 1e9:.2f} GB ({program.model.params:,} parameters of 4"
        " bytes), more than the 2 GiB one self-contained ONNX file can hold: specc export will"
        " fail"
    )
    hint = f"keep the model under about {most:,} parameters, or remove export.onnx"
    return [warning(ONNX_PATH, "onnx-too-large", msg, hint)]


ATTENTION_OPSET = 14
"""The first opset with an ONNX form of F.scaled_dot_product_attention (transformer_encoder)."""


def _kinds(layers: tuple[LayerIR, ...]) -> list[LayerIR]:
    """Every layer, residual blocks' inner layers included."""
    return [x for layer in layers for x in (layer, *_kinds(layer.children))]


def _attention_opset(program: Program) -> list[Finding]:
    """Self-attention exports from opset 14 on; at 13 the exporter refuses it."""
    opset = program.onnx_opset
    attention = [x for x in _kinds(program.model.layers) if x.kind == "transformer_encoder"]
    if opset is None or opset >= ATTENTION_OPSET or not attention:
        return []
    msg = (
        f"{attention[0].source} (transformer_encoder) uses scaled dot-product attention, which"
        f" ONNX has only from opset {ATTENTION_OPSET} on: specc export at opset {opset} will fail"
    )
    hint = f"use export.onnx.opset: {ATTENTION_OPSET} or later (the default is 18)"
    return [warning((*ONNX_PATH, "opset"), "onnx-attention-opset", msg, hint)]


EXPORT_LINTS: tuple[ExportLint, ...] = (
    ExportLint(
        "onnx-too-large",
        "weights over 2 GiB: one self-contained .onnx file cannot hold them",
        _too_large,
    ),
    ExportLint(
        "onnx-attention-opset",
        "a transformer_encoder exports from opset 14 on (scaled dot-product attention)",
        _attention_opset,
    ),
)
"""Every export lint, in the order they run."""


def export_lints(program: Program) -> list[Finding]:
    """Export warnings for a spec that asks for ONNX (export.onnx present); else none."""
    if program.onnx_opset is None:
        return []
    return [finding for lint in EXPORT_LINTS for finding in lint.check(program)]
