"""Export lints: warnings (code prefix `onnx-`) for specs that `specc export` cannot export.

Each row was found by exporting, not by guessing. specc exports with PyTorch's TorchScript
exporter and pins Conv's `padding: same` to explicit pads (specc/runtime/export.py); with that,
every layer kind and option of the vocabulary, with a dynamic batch, exported and matched
PyTorch within 1e-4 in ONNX Runtime at every allowed opset 13-23 (tests/export_zoo/, the
example specs; docs/deployment.md, "What does not export"). So there is no layer/opset row:
the one failure found is size. Nothing here imports torch or onnx.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from specc.analysis.ir import Program
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


EXPORT_LINTS: tuple[ExportLint, ...] = (
    ExportLint(
        "onnx-too-large",
        "weights over 2 GiB: one self-contained .onnx file cannot hold them",
        _too_large,
    ),
)
"""Every export lint, in the order they run."""


def export_lints(program: Program) -> list[Finding]:
    """Export warnings for a spec that asks for ONNX (export.onnx present); else none."""
    if program.onnx_opset is None:
        return []
    return [finding for lint in EXPORT_LINTS for finding in lint.check(program)]
