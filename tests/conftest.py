"""Shared fixtures: training run directories (trained by `specc train`, or built untrained).

A run directory is what `specc train` leaves behind (contract §5): spec.yaml, code/model.py,
code/data.py, model.pt and summary.json. `trained` makes one with a real `specc train`
subprocess with the spec's own settings, once per session, for every test about that run;
`untrained` compiles a spec in-process and saves freshly initialised weights (normaliser
fitted, batch-norm statistics moved off their defaults) in well under a second, for tests
about the export itself rather than about training.

Under pytest-xdist (`.ci/check` runs the suite on every core) the workers share the cache: the
first to ask for a run makes it under a file lock while the others wait, so each example
trains once per run of the suite whichever worker its tests land on. Tests that use
`runs.trained` are marked slow.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS = REPO_ROOT / "specs"
EXPORT_ZOO = Path(__file__).resolve().parent / "export_zoo"
pytest_plugins = ["pg"]  # postgres_url: a throwaway PostgreSQL server (tests/pg.py)


def specc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m specc ARGS...` in a subprocess from the repository root."""
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "specc", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=timeout,
    )


def train_run(spec: Path, run_dir: Path, *overrides: str) -> Path:
    """`specc train SPEC -o RUN_DIR [--set ...]`, which must succeed; the run directory."""
    sets = [arg for o in overrides for arg in ("--set", o)]
    done = specc("train", str(spec), "-o", str(run_dir), *sets, timeout=600)
    assert done.returncode == 0, f"specc train {spec} failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    return run_dir


def build_untrained_run(spec: Path, run_dir: Path, *overrides: str, seed: int = 0) -> Path:
    """A run directory with initial weights, made in-process without training."""
    import torch
    import yaml

    from specc.codegen.render import compile_program, write_files
    from specc.diagnostics import render_text
    from specc.pipeline import load_program
    from specc.runtime.export import import_file

    program, diagnostics = load_program(spec, list(overrides))
    assert program is not None, render_text(diagnostics)
    write_files(compile_program(program, run_dir / "code"), run_dir / "code")
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(program.resolved, sort_keys=False))
    module = import_file(run_dir / "code" / "model.py", "model")
    splits = import_file(run_dir / "code" / "data.py", "data").load()
    torch.manual_seed(seed)
    model = module.build_model()
    if hasattr(model, "normalize") and hasattr(model.normalize, "fit"):
        model.normalize.fit(torch.from_numpy(splits.x_train))
    if hasattr(model, "normalize_target"):  # data.normalize_target: the training split's scale
        model.normalize_target.fit(torch.from_numpy(splits.y_train))
    for layer in model.modules():  # statistics a trained model would have, not 0 and 1
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
    torch.save(model.state_dict(), run_dir / "model.pt")
    summary = {
        "task": program.task,
        "labels": splits.labels,
        "features": splits.features,
        "input_shape": list(module.INPUT_SHAPE),
        "output_units": module.OUTPUT_UNITS,
        "output_activation": program.model.output_activation,
        "class_name": program.model.class_name,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing), across processes."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RunCache:
    """Run directories made once per test session and shared by the test files and by the
    xdist workers (a run is made under a lock and marked done; a failed one is made again)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _get(self, kind: str, spec: Path, overrides: tuple[str, ...], make: Callable) -> Path:
        """The cached run for (kind, spec, overrides), made on first use."""
        key = hashlib.sha256(repr((str(spec), overrides)).encode()).hexdigest()[:12]
        run_dir = self.root / f"{kind}-{spec.stem}-{key}"
        done = self.root / f"{run_dir.name}.done"
        with _locked(self.root / f"{run_dir.name}.lock"):
            if not done.exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # what a failed attempt left
                make(spec, run_dir, *overrides)
                done.touch()
        return run_dir

    def trained(self, spec: str | Path, *overrides: str) -> Path:
        """A run of `specc train` with the spec's own settings (a spec name in specs/, or a
        path); a test that uses it is marked slow."""
        return self._get("trained", _spec_path(spec), overrides, train_run)

    def untrained(self, spec: str | Path, *overrides: str) -> Path:
        """A run with initial weights (a spec name in specs/ or tests/export_zoo/, or a path)."""
        return self._get("untrained", _spec_path(spec), overrides, build_untrained_run)


def _spec_path(spec: str | Path) -> Path:
    """A spec given by name (specs/ first, then tests/export_zoo/) or by path."""
    if isinstance(spec, Path):
        return spec
    for folder in (SPECS, EXPORT_ZOO):
        if (folder / f"{spec}.yaml").is_file():
            return folder / f"{spec}.yaml"
    return Path(spec)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> RunCache:
    """Run directories, trained or untrained, shared across the session (and its workers)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # a worker's basetemp is SESSION/popen-gwN; SESSION is theirs alone
    return RunCache(base / "runs")
