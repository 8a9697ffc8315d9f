"""The `search:` section: its SearchIR, what `specc check` says about it, and what it leaves alone.

Each diagnostic code has its case folder (tests/cases/search-*); the tests here cover the IR,
the command line, the corner limit and the storage URLs.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, specc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.analysis import search as search_analysis
from specc.analysis.ir import ChoiceIR, FloatRangeIR, IntRangeIR, SearchIR, SearchParamIR
from specc.codegen.render import compile_program
from specc.diagnostics import Diagnostic
from specc.pipeline import Checked, check_file, check_text

SPECS = REPO_ROOT / "specs"
SEARCH_SPEC = SPECS / "digits_search.yaml"

IRIS = """\
name: iris_search
data: {source: 'sklearn:iris'}
input: {shape: [4]}
layers:
  - dense: {units: 16, activation: relu}
  - dropout: {rate: 0.2}
output: {units: 3, activation: softmax}
optimizer: {name: sgd, lr: 0.05, momentum: 0.5}
training: {epochs: 5, batch_size: 16}
"""


def check(text: str, overrides: list[str] | None = None) -> Checked:
    """Check a spec text as if it were specs/spec.yaml."""
    return check_text(text, "spec.yaml", SPECS, overrides)


def codes(checked: Checked) -> list[tuple[int, int, str]]:
    """(line, col, code) of every diagnostic."""
    return [(d.line, d.col, d.code) for d in checked.diagnostics]


def with_space(space: str, head: str = "") -> str:
    """IRIS with a search section: `head` lines, then `space` (indented mapping lines)."""
    return IRIS + "search:\n" + head + "  space:\n" + space


# --- the IR -----------------------------------------------------------------------------------


def test_search_ir_of_the_example_spec() -> None:
    """specs/digits_search.yaml resolves into the SearchIR that `specc tune` reads."""
    checked = check_file(SEARCH_SPEC)
    assert checked.ok, [d.render() for d in checked.diagnostics]
    assert checked.program is not None
    assert checked.program.search == SearchIR(
        metric="val_loss",
        direction="min",
        trials=20,
        sampler="tpe",
        pruner="median",
        seed=0,
        storage=None,
        space=(
            SearchParamIR("optimizer.lr", ("optimizer", "lr"), FloatRangeIR(1e-4, 0.1, True, None)),
            SearchParamIR(
                "regularizers.l2", ("regularizers", "l2"), FloatRangeIR(1e-6, 1e-2, True, None)
            ),
            SearchParamIR(
                "layers.0.dense.units", ("layers", 0, "dense", "units"), ChoiceIR((32, 64, 128))
            ),
            SearchParamIR(
                "layers.1.dropout.rate",
                ("layers", 1, "dropout", "rate"),
                FloatRangeIR(0.0, 0.5, False, None),
            ),
            SearchParamIR(
                "training.batch_size", ("training", "batch_size"), IntRangeIR(16, 128, False, 1)
            ),
        ),
        grid_size=None,
    )


def test_search_ir_of_every_distribution_and_option() -> None:
    """Each distribution as its dataclass, steps and log flags resolved; direction from the
    metric; a discrete space counts its grid."""
    text = with_space(
        "    optimizer.lr: {choice: [0.01, 0.1]}\n"
        "    optimizer.momentum: {uniform: [0.5, 0.9], step: 0.2}\n"
        "    layers.0.dense.units: {log_int_uniform: [4, 8]}\n"
        "    training.batch_size: {int_uniform: [8, 32], step: 8}\n"
        "    layers.0.dense.activation: {choice: [relu, {name: leaky_relu, slope: 0.1}]}\n",
        head="  metric: val_accuracy\n  sampler: grid\n  pruner: hyperband\n  trials: 200\n"
        "  seed: 3\n  storage: postgresql://tune:secret@db.example:5432/studies\n",
    )
    checked = check(text)
    assert checked.program is not None, [d.render() for d in checked.diagnostics]
    ir = checked.program.search
    assert ir is not None
    assert (ir.metric, ir.direction, ir.sampler, ir.pruner, ir.trials, ir.seed) == (
        "val_accuracy",
        "max",
        "grid",
        "hyperband",
        200,
        3,
    )
    assert ir.storage == "postgresql://tune:secret@db.example:5432/studies"
    dists = {p.key: p.distribution for p in ir.space}
    assert dists == {
        "optimizer.lr": ChoiceIR((0.01, 0.1)),
        "optimizer.momentum": FloatRangeIR(0.5, 0.9, False, 0.2),
        "layers.0.dense.units": IntRangeIR(4, 8, True, 1),
        "training.batch_size": IntRangeIR(8, 32, False, 8),
        "layers.0.dense.activation": ChoiceIR(("relu", {"name": "leaky_relu", "slope": 0.1})),
    }
    assert ir.grid_size == 2 * 3 * 5 * 4 * 2


def test_resolved_spec_keeps_search_only_when_there_is_one() -> None:
    """The resolved spec (RUN_DIR/spec.yaml) holds the search with its defaults; a spec
    without one gains no `search: null`."""
    with_search = check_file(SEARCH_SPEC).program
    assert with_search is not None
    assert with_search.resolved["search"]["space"]["optimizer.lr"] == {"log_uniform": [1e-4, 0.1]}
    assert with_search.resolved["search"]["storage"] is None
    plain = check_file(SPECS / "digits_mlp.yaml").program
    assert plain is not None and plain.search is None
    assert "search" not in plain.resolved


def test_train_code_ignores_the_search() -> None:
    """`specc train` trains the base values: the code compiled from a spec with a search is
    the code of the same spec without it."""
    text = SEARCH_SPEC.read_text()
    without = text[: text.index("\nsearch:")] + "\n"
    a, b = check_text(text, "s.yaml", SPECS).program, check_text(without, "s.yaml", SPECS).program
    assert a is not None and b is not None and b.search is None
    out = REPO_ROOT / "generated" / "digits_search"
    assert compile_program(a, out, "s.yaml") == compile_program(b, out, "s.yaml")


# --- the command line ---------------------------------------------------------------------------


def test_check_command_on_the_example_is_ok_and_torch_free() -> None:
    """`specc check` accepts the example, and checking its space never imports torch."""
    result = specc("check", "specs/digits_search.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok: digits_search" in result.stdout
    probe = (
        "import sys\n"
        "from specc.pipeline import check_file\n"
        "assert check_file('specs/digits_search.yaml').ok\n"
        "assert 'torch' not in sys.modules and 'optuna' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_check_command_reports_the_space_in_json(tmp_path: Path) -> None:
    """Search diagnostics are ordinary diagnostics: exit 1, line:col in the JSON output."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(with_space("    layers.1.dropout.rate: {uniform: [0.0, 1.2]}\n"))
    result = specc("check", "--format", "json", str(spec))
    assert result.returncode == 1
    [diag] = json.loads(result.stdout)["diagnostics"]
    assert (diag["line"], diag["col"], diag["code"]) == (12, 44, "search-invalid-value")


def test_overrides_reach_the_space_and_the_base() -> None:
    """`--set` changes the base values the space is checked against, and the search itself."""
    text = with_space("    layers.0.dense.units: {choice: [8, 16]}\n")
    assert check(text, ["search.trials=3"]).program.search.trials == 3  # type: ignore[union-attr]
    # with the dropout layer replaced by a dense one, layers.1.dropout.rate is no path
    text = with_space("    layers.1.dropout.rate: {uniform: [0.1, 0.5]}\n")
    checked = check(text, ["layers.1={dense: {units: 4}}"])
    assert [c for _, _, c in codes(checked)] == ["search-unknown-path"]


def test_a_spec_with_errors_still_gets_its_search_checked() -> None:
    """An error elsewhere does not hide the search's own problems (nor is it blamed on them)."""
    text = with_space(
        "    layers.1.dropout.rate: {uniform: [0.0, 1.2]}\n    optimizer.lr0: {choice: [0.1]}\n"
    ).replace("units: 16, activation: relu", "units: 16, activation: rleu")
    found = [c for _, _, c in codes(check(text))]
    assert sorted(found) == ["search-invalid-value", "search-unknown-path", "unknown-name"]


# --- which points are checked ---------------------------------------------------------------------


def test_every_corner_of_a_small_space_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values fine alone but not together fail at a corner; beyond CORNER_LIMIT corners
    only each value alone is checked (docs/search.md says so)."""
    text = with_space(
        "    optimizer.momentum: {uniform: [0.0, 0.9]}\n"
        "    optimizer.nesterov: {choice: [false, true]}\n"
    )
    assert [c for _, _, c in codes(check(text))] == ["search-corner-fails"]
    monkeypatch.setattr(search_analysis, "CORNER_LIMIT", 3)
    assert check(text).ok


def test_each_value_alone_is_checked_whatever_the_size_of_the_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value is found at its node even where corners are not combined."""
    monkeypatch.setattr(search_analysis, "CORNER_LIMIT", 1)
    text = with_space(
        "    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}\n"
        "    layers.0.dense.units: {choice: [8, 0]}\n"
    )
    assert codes(check(text)) == [(13, 40, "search-invalid-value")]


def test_corner_checks_are_whole_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each point goes through the whole checker: here 2 × 3 values alone (a float range adds
    one drawn value), then 2 × 3 corners."""
    calls: list[int] = []
    real = search_analysis._errors

    def counting(*args: object, **kwargs: object) -> list[Diagnostic]:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(search_analysis, "_errors", counting)
    text = with_space(
        "    optimizer.momentum: {uniform: [0.5, 0.9]}\n"
        "    layers.0.dense.units: {choice: [8, 16, 32]}\n"
    )
    assert check(text).ok
    assert len(calls) == 3 + 3 + 2 * 3


# --- the schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@localhost:5432/tune",
        "postgresql+psycopg2://localhost/tune",
        "postgresql:///tune",
        "mysql://host/db",
        "sqlite:///tune.db",
        "sqlite:////tmp/tune.db",
    ],
)
def test_database_urls_are_accepted(url: str) -> None:
    text = with_space("    optimizer.lr: {log_uniform: [1.0e-3, 0.1]}\n", f"  storage: '{url}'\n")
    checked = check(text)
    assert checked.ok and checked.program is not None and checked.program.search is not None
    assert checked.program.search.storage == url


@pytest.mark.parametrize(
    "url",
    ["mongodb://x/y", "sqlite://tune.db", "sqlite:///:memory:", "postgresql://", "tune.db", ""],
)
def test_other_storage_values_are_refused_at_the_url(url: str) -> None:
    text = with_space("    optimizer.lr: {log_uniform: [1.0e-3, 0.1]}\n", f"  storage: '{url}'\n")
    assert codes(check(text)) == [(11, 12, "invalid-value")]


def test_defaults_of_the_section() -> None:
    """metric val_loss, 20 trials, random sampler, no pruner, seed 0, journal storage."""
    checked = check(with_space("    optimizer.lr: {log_uniform: [1.0e-3, 0.1]}\n"))
    assert checked.program is not None
    ir = checked.program.search
    assert ir is not None
    assert (ir.metric, ir.direction, ir.trials, ir.sampler, ir.pruner, ir.seed, ir.storage) == (
        "val_loss",
        "min",
        20,
        "random",
        "none",
        0,
        None,
    )
    resolved = yaml.safe_load(yaml.safe_dump(checked.program.resolved))["search"]
    assert resolved["metric"] == "val_loss" and resolved["trials"] == 20


# --- robustness -----------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "optimizer.lr",
        "optimizer.momentum",
        "layers.0.dense.units",
        "layers.1.dropout.rate",
        "layers.9.dense.units",
        "layers",
        "training.batch_size",
        "input.shape",
        "output.units",
        "regularizers.l2",
        "stopping.early.patience",
        "search.trials",
        "a..b",
        "0",
    ]
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-3, 70), max_size=3),
    st.dictionaries(st.sampled_from(["units", "name", "dense", "rate"]), st.integers(-2, 9)),
)
DISTRIBUTIONS = st.one_of(
    st.builds(
        lambda kind, ends, step: {kind: ends, **({"step": step} if step is not None else {})},
        st.sampled_from(["uniform", "log_uniform", "int_uniform", "log_int_uniform", "unifrm"]),
        st.lists(st.one_of(st.integers(-5, 200), st.floats(-1e300, 1e300)), max_size=3),
        st.one_of(st.none(), st.integers(-1, 50), st.floats(0, 1e9)),
    ),
    st.builds(lambda values: {"choice": values}, st.lists(VALUES, max_size=4)),
    VALUES,
)


@settings(
    max_examples=int(os.environ.get("SPECC_FUZZ_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    space=st.dictionaries(KEYS, DISTRIBUTIONS, min_size=1, max_size=4),
    sampler=st.sampled_from(["random", "grid", "tpe"]),
    metric=st.sampled_from(["val_loss", "test_loss", "val_acc", "val_accuracy"]),
)
def test_any_search_section_is_diagnosed_without_a_crash(
    space: dict[str, object], sampler: str, metric: str
) -> None:
    """Whatever the space holds, check never raises, and errors ⇔ no Program."""
    section = {"search": {"sampler": sampler, "metric": metric, "space": space}}
    text = IRIS + yaml.safe_dump(section, default_flow_style=True, width=10**6)
    checked = check(text)
    errors = any(d.severity == "error" for d in checked.diagnostics)
    assert (checked.program is None) == errors, [d.render() for d in checked.diagnostics]


# --- why the corners suffice ------------------------------------------------------------------

IMAGE = """\
name: image_search
data: {source: 'sklearn:digits'}
input: {shape: [1, 8, 8]}
layers:
  - conv2d: {filters: 4, kernel_size: 3, padding: 1, stride: 1, dilation: 1, bias: false}
  - batchnorm: {}
  - maxpool2d: {pool_size: 2, padding: 0}
  - residual:
      projection: true
      layers:
        - conv2d: {filters: 6, kernel_size: 3, padding: 1}
        - conv2d: {filters: 6, kernel_size: 1}
  - flatten: {}
  - residual: {layers: [{dense: {units: 96}}]}
output: {units: 10, activation: softmax}
optimizer: {name: sgd, lr: 0.05}
training: {epochs: 5, batch_size: 16}
"""
"""Every integer the shape rules read: sizes that must not collapse, pooling padding at most
half its window, a residual block that must give back its input's spatial size (and a dense
one its width: 6 × 4 × 4 = 96), a batch size of at least 2 with batch norm."""
IMAGE_KEYS = {
    "layers.0.conv2d.filters": (1, 8, 4),
    "layers.0.conv2d.kernel_size": (1, 7, 3),
    "layers.0.conv2d.padding": (0, 3, 1),
    "layers.0.conv2d.stride": (1, 3, 1),
    "layers.0.conv2d.dilation": (1, 3, 1),
    "layers.2.maxpool2d.pool_size": (1, 4, 2),
    "layers.2.maxpool2d.padding": (0, 2, 0),
    "layers.2.maxpool2d.stride": (1, 3, 2),
    "layers.3.residual.layers.0.conv2d.kernel_size": (1, 5, 3),
    "layers.3.residual.layers.0.conv2d.padding": (0, 3, 1),
    "layers.3.residual.layers.0.conv2d.stride": (1, 2, 1),
    "layers.3.residual.layers.1.conv2d.kernel_size": (1, 3, 1),
    "layers.3.residual.layers.1.conv2d.padding": (0, 2, 0),
    "layers.3.residual.layers.1.conv2d.filters": (1, 8, 6),
    "layers.5.residual.layers.0.dense.units": (16, 200, 96),
    "training.batch_size": (1, 4, 16),
}
"""(least, largest, the spec's value) of each key the property below searches."""


@st.composite
def _integer_spaces(draw: st.DrawFn) -> dict[str, tuple[int, int]]:
    """1 to 3 keys of IMAGE_KEYS, each an integer range around the spec's value."""
    keys = draw(st.lists(st.sampled_from(sorted(IMAGE_KEYS)), min_size=1, max_size=3, unique=True))
    space = {}
    for key in keys:
        least, largest, value = IMAGE_KEYS[key]
        lo = draw(st.integers(least, max(least, min(value, largest))))
        space[key] = (lo, draw(st.integers(lo, largest)))
    return space


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(space=_integer_spaces())
def test_a_space_whose_corners_pass_has_no_failing_point_inside(
    space: dict[str, tuple[int, int]],
) -> None:
    """What docs/search.md argues: every size the shape rules compare is monotone in each
    integer (floor((n + 2p − d(k−1) − 1)/s) + 1, products of those), and each rule either fails
    past one end (a threshold) or compares two such sizes (an equality, which holds at every
    corner only where it holds everywhere), so within the corner limit a point inside a space
    that `specc check` accepts never fails: every point of the range is checked here. (The one
    rule that is not monotone, a transformer's width a multiple of its heads, is not in this
    spec: specc check tries every value of a short integer range for it, tests/cases/
    search-int-between.)"""
    lines = "".join(f"    {k}: {{int_uniform: [{lo}, {hi}]}}\n" for k, (lo, hi) in space.items())
    if not check(IMAGE + "search:\n  trials: 5\n  space:\n" + lines).ok:
        return  # a corner (or a value alone) fails: specc check says so before any trial
    points = list(itertools.product(*(range(lo, hi + 1) for lo, hi in space.values())))
    for point in points[:: max(1, len(points) // 60)]:
        overrides = [f"{k}={v}" for k, v in zip(space, point, strict=True)]
        checked = check(IMAGE, overrides)
        assert checked.ok, (overrides, [d.render() for d in checked.diagnostics])
