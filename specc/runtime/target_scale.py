"""data.normalize_target in exported models: the target scale travels in the ONNX metadata.

The graph itself outputs the targets' units (predict() un-standardises, z * std + mean, inside
it); `specc.target_scale` records the training split's mean and std as well, so that `specc
evaluate` computes `loss` on the standardised scale, as train.py's loss and summary.json's are.
mae, rmse and r2 never need it: they are in the targets' units everywhere. No torch here.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

META_TARGET_SCALE = "specc.target_scale"
"""Metadata key: JSON {"mean": [...], "std": [...]}, one value per output unit."""


def metadata(model: Any) -> dict[str, str]:
    """`specc.target_scale` for a model with a target scaler (model.normalize_target), else {}."""
    scaler = getattr(model, "normalize_target", None)
    mean, std = getattr(scaler, "mean", None), getattr(scaler, "std", None)
    if mean is None or std is None:
        return {}
    scale = {"mean": mean.detach().cpu().tolist(), "std": std.detach().cpu().tolist()}
    return {META_TARGET_SCALE: json.dumps(scale)}


def read(meta: dict[str, str], units: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) from a model's metadata; None when absent or not `units` finite values each
    (std > 0), so a malformed entry falls back to the loss in the targets' units."""
    try:
        raw = json.loads(meta[META_TARGET_SCALE])
        mean = np.asarray(raw["mean"], dtype=np.float64)
        std = np.asarray(raw["std"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    ok = mean.shape == std.shape == (units,) and all(map(math.isfinite, [*mean, *std]))
    return (mean, std) if ok and bool((std > 0).all()) else None


def standardise(
    scale: tuple[np.ndarray, np.ndarray] | None, *arrays: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Each array [N, units] as (a - mean) / std; unchanged without a scale."""
    if scale is None:
        return arrays
    mean, std = scale
    return tuple((a - mean) / std for a in arrays)
