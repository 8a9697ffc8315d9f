"""transformer_encoder: the generated pre-norm blocks against PyTorch's own encoder layers.

Differential tests (style §13): a spec compiled by specc, its model.py imported, and each
generated TransformerBlock given the weights of an nn.TransformerEncoderLayer(batch_first=True,
norm_first=True, activation="gelu") (and the attention those of an nn.MultiheadAttention):
outputs agree to 1e-5 in eval mode. Parameter counts of `specc summary` against PyTorch's, the
sinusoidal table against its formula, and the layer through the real `specc` command.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
import yaml
from conftest import specc

from specc.codegen.render import compile_program
from specc.pipeline import check_text

nn = torch.nn

BASE = {
    "name": "tf",
    "data": {"source": "sklearn:digits", "normalize": "standard"},
    "input": {"shape": [8, 8]},
    "output": {"units": 10, "activation": "softmax"},
    "training": {"epochs": 1},
}


def spec_with(*layers: dict, input_shape: tuple[int, ...] = (8, 8)) -> dict:
    """The base spec with these hidden layers."""
    return {**BASE, "input": {"shape": list(input_shape)}, "layers": list(layers)}


def compiled(spec: dict, tmp_path: Path) -> tuple[ModuleType, int]:
    """The generated model.py of a spec, imported, and the parameter count specc infers."""
    checked = check_text(yaml.safe_dump(spec, sort_keys=False), "spec.yaml", tmp_path)
    assert checked.program is not None, [d.message for d in checked.diagnostics]
    files = compile_program(checked.program, tmp_path, "spec.yaml")
    name = f"tf_model_{abs(hash(files['model.py']))}"
    path = tmp_path / f"{name}.py"
    path.write_text(files["model.py"])
    loader = importlib.util.spec_from_file_location(name, path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module, checked.program.model.params


def torch_layer(block: nn.Module, width: int, heads: int, ff: int) -> nn.TransformerEncoderLayer:
    """PyTorch's pre-norm encoder layer holding the weights of one generated TransformerBlock."""
    ref = nn.TransformerEncoderLayer(
        width, heads, ff, dropout=0.1, activation="gelu", batch_first=True, norm_first=True
    )
    with torch.no_grad():
        attn = ref.self_attn
        attn.in_proj_weight.copy_(
            torch.cat([block.query.weight, block.key.weight, block.value.weight])
        )
        attn.in_proj_bias.copy_(torch.cat([block.query.bias, block.key.bias, block.value.bias]))
        attn.out_proj.weight.copy_(block.out.weight)
        attn.out_proj.bias.copy_(block.out.bias)
        for mine, theirs in (
            (block.norm1, ref.norm1),
            (block.norm2, ref.norm2),
            (block.ff1, ref.linear1),
            (block.ff2, ref.linear2),
        ):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    return ref.eval()


def randomise(module: nn.Module) -> None:
    """Non-trivial values in every parameter (LayerNorm's 1/0 and zero biases hide mistakes)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


CONFIGS = [
    # width, heads, ff_units, layers, positional, reduce
    (32, 4, 64, 2, "learned", "mean"),
    (8, 2, 16, 1, "sinusoidal", "last"),  # F == width: no projection
    (15, 3, 24, 3, "none", "none"),
]


@pytest.mark.parametrize(("width", "heads", "ff", "blocks", "positional", "reduce"), CONFIGS)
def test_generated_blocks_match_torch_encoder_layers(
    tmp_path, width, heads, ff, blocks, positional, reduce
):
    """Each TransformerBlock equals nn.TransformerEncoderLayer(norm_first) with its weights, and
    the whole encoder equals projection + positions + nn.TransformerEncoder + final norm."""
    params = {"width": width, "heads": heads, "ff_units": ff, "layers": blocks}
    params |= {"positional": positional, "reduce": reduce, "dropout": 0.1}
    layers: list[dict] = [{"transformer_encoder": params}]
    if reduce == "none":
        layers.append({"flatten": None})
    module, _ = compiled(spec_with(*layers), tmp_path)
    model = module.build_model().eval()
    randomise(model)
    encoder = model.transformer1
    x = torch.randn(5, 8, 8, generator=torch.Generator().manual_seed(1))
    h = encoder.projection(x) if width != 8 else x
    assert hasattr(encoder, "projection") == (width != 8)
    if positional != "none":
        h = h + encoder.positions
    refs = []
    with torch.no_grad():
        for n in range(1, blocks + 1):
            block = getattr(encoder, f"block{n}")
            ref = torch_layer(block, width, heads, ff)
            torch.testing.assert_close(block(h), ref(h), rtol=0, atol=1e-5)
            refs.append(ref)
            h = ref(h)
        stack = nn.TransformerEncoder(
            refs[0], blocks, norm=nn.LayerNorm(width), enable_nested_tensor=False
        ).eval()
        for i, ref in enumerate(refs):  # TransformerEncoder deep-copies its layer: set each
            stack.layers[i].load_state_dict(ref.state_dict())
        stack.norm.load_state_dict(encoder.norm.state_dict())
        start = encoder.projection(x) if width != 8 else x
        if positional != "none":
            start = start + encoder.positions
        want = stack(start)
        want = {"mean": want.mean(dim=1), "last": want[:, -1], "none": want}[reduce]
        torch.testing.assert_close(encoder(x), want, rtol=0, atol=1e-5)


def test_attention_matches_multihead_attention(tmp_path):
    """The q/k/v split into heads and F.scaled_dot_product_attention is nn.MultiheadAttention."""
    module, _ = compiled(
        spec_with({"transformer_encoder": {"width": 12, "heads": 3, "dropout": 0.0}}), tmp_path
    )
    block = module.build_model().eval().transformer1.block1
    randomise(block)
    mha = nn.MultiheadAttention(12, 3, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(
            torch.cat([block.query.weight, block.key.weight, block.value.weight])
        )
        mha.in_proj_bias.copy_(torch.cat([block.query.bias, block.key.bias, block.value.bias]))
        mha.out_proj.load_state_dict(block.out.state_dict())
        x = torch.randn(4, 8, 12, generator=torch.Generator().manual_seed(2))
        want, _ = mha(x, x, x, need_weights=False)
        torch.testing.assert_close(block.attention(x), want, rtol=0, atol=1e-5)
        # the notes' formula, head by head: softmax(Q Kᵀ / sqrt(d_k)) V, concatenated, W_o
        heads = []
        for h in range(3):
            cols = slice(4 * h, 4 * h + 4)
            q, k, v = (lin(x)[..., cols] for lin in (block.query, block.key, block.value))
            heads.append(torch.softmax(q @ k.transpose(1, 2) / math.sqrt(4), dim=-1) @ v)
        by_hand = block.out(torch.cat(heads, dim=-1))
        torch.testing.assert_close(block.attention(x), by_hand, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        {"width": 32, "heads": 4, "ff_units": 64, "layers": 2},
        {"width": 8, "heads": 1, "positional": "sinusoidal", "reduce": "none"},  # ff 4·width
        {"width": 6, "heads": 2, "layers": 3, "positional": "none", "reduce": "last"},
    ],
)
def test_parameter_counts_are_pytorchs(tmp_path, params):
    """specc's count (summary's total) is sum(p.numel()) of the generated model."""
    layers: list[dict] = [{"transformer_encoder": params}]
    if params.get("reduce") == "none":
        layers.append({"global_avgpool": None})
    module, count = compiled(spec_with(*layers), tmp_path)
    assert sum(p.numel() for p in module.build_model().parameters()) == count


def test_parameter_count_formula_by_hand():
    """d = 32, ff = 64, F = T = 8, two blocks, learned positions, then a 10-unit output."""
    from specc.analysis.ir import TransformerOptions
    from specc.analysis.shapes import transformer_params

    d, ff = 32, 64
    projection, positions = 8 * d + d, 8 * d
    block = 2 * d + 3 * (d * d + d) + (d * d + d) + 2 * d + (d * ff + ff) + (ff * d + d)
    options = TransformerOptions(d, 4, ff, 2, 0.1, "learned", "mean")
    assert transformer_params(8, 8, options) == projection + positions + 2 * block + 2 * d == 17696


def test_sinusoidal_table_is_the_formula(tmp_path):
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(t / 10000^(2i/d)), odd d included."""
    module, _ = compiled(
        spec_with({"transformer_encoder": {"width": 15, "heads": 3, "positional": "sinusoidal"}}),
        tmp_path,
    )
    table = module.sinusoidal_positions(8, 15)
    for t in (0, 3, 7):
        for j in range(15):
            angle = t / 10000 ** ((j - j % 2) / 15)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(table[t, j].item() - want) < 1e-6
    model = module.build_model()
    assert "positions" not in model.state_dict()  # a fixed table: rebuilt, not saved
    torch.testing.assert_close(model.transformer1.positions, table)


def test_dropout_acts_in_training_only(tmp_path):
    """Training mode samples dropout masks (in attention too); eval mode is deterministic."""
    module, _ = compiled(
        spec_with({"transformer_encoder": {"width": 16, "heads": 2, "dropout": 0.3}}), tmp_path
    )
    model = module.build_model()
    x = torch.randn(4, 8, 8)
    with torch.no_grad():
        model.train()
        assert not torch.allclose(model(x), model(x))
        model.eval()
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_penalised_weights_and_no_positions_among_them(tmp_path):
    """weights(): the projection and each block's six matrices; positions, norms, biases not."""
    module, _ = compiled(
        spec_with({"transformer_encoder": {"width": 16, "heads": 2, "layers": 2}}), tmp_path
    )
    model = module.build_model()
    ids = {id(w) for w in model.weights()}
    enc = model.transformer1
    assert len(ids) == 1 + 2 * 6 + 1  # projection, 2 blocks x (q, k, v, out, ff1, ff2), output
    assert id(enc.positions) not in ids and id(enc.norm.weight) not in ids
    assert id(enc.block1.query.weight) in ids and id(enc.block1.query.bias) not in ids


def test_summary_reports_the_exact_count():
    """`specc summary` on the example spec: the encoder's row and the total PyTorch counts."""
    result = specc("summary", "specs/digits_transformer.yaml")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "transformer_encoder" in line)
    # projection 8·32 + 32, positions 8·32, one block, the final norm 2·32:
    d, ff = 32, 64
    block = 4 * d + 4 * (d * d + d) + (d * ff + ff) + (ff * d + d)
    assert row.split()[-1] == str(8 * d + d + 8 * d + block + 2 * d)
    assert row.split()[2] == "[32]"


@pytest.mark.slow
def test_reduce_none_trains_and_exports_through_specc(tmp_path):
    """Through the real command: reduce none then a pooling layer trains, and exports."""
    spec = spec_with(
        {"transformer_encoder": {"width": 16, "heads": 2, "ff_units": 32, "reduce": "none"}},
        {"global_maxpool": None},
    )
    spec["training"] = {"epochs": 2, "batch_size": 128}
    spec["export"] = {"onnx": {"opset": 14}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = specc("train", str(path), "-o", str(tmp_path / "run"), timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "model.onnx").is_file()
    assert "max |onnx - torch|" in result.stdout + result.stderr
