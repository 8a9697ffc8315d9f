"""`specc train` when things go wrong: signals at any moment, two runs on one directory, runs that
never reached a checkpoint, --resume with another spec or a crafted checkpoint, no CUDA, an
unwritable run directory, a one-row last minibatch under batch norm; and the output a person
reads (progress numbers, the live line's width, curves.png)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train_codegen import REPO, TINY, compile_to, generated, import_generated, write_spec
from test_train_run import interrupt_at, rows, script, specc, without_seconds

LONG = TINY.replace("epochs: 3", "epochs: 5000")
"""A run that lasts until it is interrupted."""


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """`specc ARGS` in a session of its own, with SIGHUP's default action as in a terminal (a
    suite run under nohup ignores it, and specc keeps an ignored SIGHUP ignored)."""
    return subprocess.Popen([sys.executable, "-m", "specc", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_default_sighup)  # fmt: skip


def _default_sighup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has installed a SIGTERM handler yet (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.parametrize(
    ("delay", "sig", "group"),
    [(0.2, signal.SIGINT, True), (0.2, signal.SIGTERM, False), (1.0, signal.SIGINT, True),
     (1.0, signal.SIGHUP, False), (2.5, signal.SIGTERM, False)],
)  # fmt: skip
@pytest.mark.slow
def test_a_signal_at_any_moment_is_exit_130_without_a_traceback(tmp_path, delay, sig, group):
    """Ctrl-C (SIGINT to the process group) or kill (SIGTERM/SIGHUP to specc only) while pydantic,
    torch or scikit-learn import, or while training starts: exit 130, one-line messages, and
    either a resumable run or a directory the same command reuses."""
    spec = write_spec(tmp_path, LONG)
    proc = start("train", str(spec), "-o", "r", cwd=tmp_path)
    began = time.monotonic()
    try:
        if Path("/proc").is_dir():  # the interpreter's own start comes before specc's handler
            while not catches_sigterm(proc.pid) and proc.poll() is None:
                time.sleep(0.01)
        time.sleep(max(0.0, delay - (time.monotonic() - began)))
        (os.killpg if group else os.kill)(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err, err
    run = tmp_path / "r"
    if (run / "last.pt").is_file():
        assert "resume with: specc train" in err
        resumed = specc("train", str(spec), "-o", "r", "--resume", "--set", "training.epochs=2",
                        cwd=tmp_path)  # fmt: skip
        assert resumed.returncode == 2 and "training.epochs (5000 -> 2)" in resumed.stderr
    else:
        assert "nothing to resume" in err or "interrupted" in err
    # nothing was lost: the same command (a short run here) or --resume goes on from there
    again = ["--resume"] if (run / "last.pt").is_file() else []
    sets = [] if again else ["--set", "training.epochs=2"]
    if again:  # a 5000-epoch resume: cut it by Ctrl-C again, it must still be consistent
        status, err = interrupt_at([sys.executable, "-m", "specc", "train", str(spec), "-o", "r",
                                    *again], 1 + len(rows(run)), tmp_path)  # fmt: skip
        assert status == 130 and "Traceback" not in err, err[-2000:]
    else:
        done = specc("train", str(spec), "-o", "r", *sets, cwd=tmp_path)
        assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_second_run_on_the_same_directory_is_refused_while_the_first_runs(tmp_path):
    spec = write_spec(tmp_path, LONG)
    first = start("train", str(spec), "-o", "r", cwd=tmp_path)
    try:
        for line in first.stderr:
            if line.startswith("epoch 2/"):
                break
        for extra in ([], ["--resume"]):
            second = specc("train", str(spec), "-o", "r", *extra, cwd=tmp_path)
            assert second.returncode == 2, second.stderr
            assert "is in use by another specc train" in second.stderr
            assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first run went on
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130


@pytest.mark.slow
def test_a_run_directory_without_a_checkpoint_is_reused(tmp_path):
    """A data error leaves code/ and spec.yaml but no last.pt: the same command (after fixing the
    data) starts again in it; a leftover temporary file from a kill is removed."""
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n1,2,0\n3,x,1\n")
    text = TINY.replace("sklearn:iris", "d.csv").replace("seed: 0}", "seed: 0}\n  target: y")
    text = text.replace("shape: [4]", "shape: [2]").replace(
        "units: 3, activation: softmax", "units: 1, activation: sigmoid"
    )
    text = text.replace("{val: 0.2, test: 0.2, seed: 0}", "{val: 0.0, test: 0.0, seed: 0}")
    spec = write_spec(tmp_path, text)
    bad = specc("train", str(spec), "-o", "r", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert not (tmp_path / "r" / "last.pt").exists()
    (tmp_path / "r" / ".last.pt.123.tmp").write_bytes(b"torn")
    resume = specc("train", str(spec), "-o", "r", "--resume", cwd=tmp_path)
    assert resume.returncode == 2 and "run it without --resume" in resume.stderr
    data.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    good = specc("train", str(spec), "-o", "r", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert not list((tmp_path / "r").glob(".*.tmp"))
    # a directory that is someone's own (a file specc does not write) is never taken over
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    other = specc("train", str(spec), "-o", "mine", cwd=tmp_path)
    assert other.returncode == 2 and "not empty" in other.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_resume_refuses_a_changed_spec_and_lets_epochs_grow(tmp_path):
    spec = write_spec(tmp_path)
    assert specc("train", str(spec), "-o", "r", cwd=tmp_path).returncode == 0
    changed = specc("train", str(spec), "-o", "r", "--resume", "--set", "optimizer.lr=0.1",
                    "--set", "layers.0.dense.units=9", cwd=tmp_path)  # fmt: skip
    assert changed.returncode == 2, changed.stderr
    line = changed.stderr.strip()
    assert "\n" not in line and "optimizer.lr (0.01 -> 0.1)" in line
    assert "layers.0.dense.units (8 -> 9)" in line and "only training.epochs may grow" in line
    write_spec(tmp_path, TINY.replace("adam", "sgd"))  # an edited spec file: refused the same way
    edited = specc("train", str(spec), "-o", "r", "--resume", cwd=tmp_path)
    assert edited.returncode == 2 and "optimizer.name ('adam' -> 'sgd')" in edited.stderr
    write_spec(tmp_path)
    grown = specc("train", str(spec), "-o", "r", "--resume", "--set", "training.epochs=5",
                  cwd=tmp_path)  # fmt: skip
    assert grown.returncode == 0, grown.stderr
    assert specc("train", str(spec), "-o", "five", "--set", "training.epochs=5",
                 cwd=tmp_path).returncode == 0  # fmt: skip
    assert without_seconds(tmp_path / "r") == without_seconds(tmp_path / "five")
    assert "epochs: 5" in (tmp_path / "r" / "spec.yaml").read_text()
    assert "EPOCHS = 5 " in (tmp_path / "r" / "code" / "train.py").read_text()


class Evil:
    """Pickles to a call of os.system: what a crafted last.pt would run under weights_only=False."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.slow
def test_resume_never_runs_code_from_a_crafted_or_corrupt_checkpoint(tmp_path):
    spec = write_spec(tmp_path)
    assert specc("train", str(spec), "-o", "r", cwd=tmp_path).returncode == 0
    pwned = tmp_path / "PWNED"
    last = tmp_path / "r" / "last.pt"
    state = torch.load(last, weights_only=True)
    torch.save({**state, "epoch": Evil(pwned)}, last)
    for content in (None, b"not a checkpoint", b""):
        if content is not None:
            last.write_bytes(content)
        proc = specc("train", str(spec), "-o", "r", "--resume", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "is not a checkpoint of this train.py" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not pwned.exists()
    torch.save({"model": state["model"]}, last)  # a foreign checkpoint (a bare state dict)
    proc = script(tmp_path / "r" / "code", "--out", "r", "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "(KeyError)" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_device_cuda_without_cuda_is_exit_2(tmp_path):
    spec = write_spec(tmp_path, TINY.replace("batch_size: 16", "batch_size: 16, device: cuda"))
    proc = specc("train", str(spec), "-o", "r", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "error: training.device is cuda, but this torch sees no CUDA device" in proc.stderr
    assert "Traceback" not in proc.stderr


BIG = TINY.replace("units: 8", "units: 1024")
"""last.pt of about 60 KB (weights, theta*, Adam's moments)."""


@pytest.mark.slow
def test_a_write_that_fails_is_one_line_and_exit_2(tmp_path):
    """RLIMIT_FSIZE makes writes past 24 KiB fail (EFBIG), as a full disk fails them (ENOSPC)."""
    spec = write_spec(tmp_path, BIG)
    code = compile_to(spec, tmp_path / "code")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (24 * 1024, 24 * 1024))

    proc = subprocess.run([sys.executable, str(code / "train.py"), "--out", "r", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.strip().splitlines()
        == [f"error: cannot write {Path('r') / 'best.pt'}: File too large"]
        or "last.pt: File too large" in proc.stderr
    ), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "r").glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_run_directory_keeps_its_checkpoints(tmp_path):
    spec = write_spec(tmp_path, LONG)
    status, err = interrupt_at([sys.executable, "-m", "specc", "train", str(spec), "-o", "r"],
                               3, tmp_path)  # fmt: skip
    assert status == 130, err
    run = tmp_path / "r"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    run.chmod(0o555)
    try:
        status, err = interrupt_at(
            [sys.executable, str(run / "code" / "train.py"), "--out", str(run), "--resume"],
            len(rows(run)) + 1, tmp_path)  # fmt: skip
    finally:
        run.chmod(0o755)
    assert status == 2 and "cannot write" in err and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_batch_norm_never_gets_a_one_row_minibatch(tmp_path):
    """diabetes: 266 training rows; batch_size 5 leaves one row over, which joins the batch
    before (batch norm cannot normalise a single row in training mode)."""
    code = compile_to(REPO / "specs" / "diabetes.yaml", tmp_path / "code",
                      ["training.batch_size=5"])  # fmt: skip
    train = import_generated(code)
    x, y = torch.zeros(266, 10), torch.arange(266.0).unsqueeze(1)
    sizes = [len(xb) for xb, _ in train.batches(x, y, torch.Generator().manual_seed(0))]
    assert sizes == [5] * 52 + [6]
    seen = torch.cat([yb for _, yb in train.batches(x, y, torch.Generator().manual_seed(0))])
    assert sorted(seen.flatten().tolist()) == y.flatten().tolist()  # every row, once
    assert [len(b) for b, _ in train.batches(x[:265], y[:265], torch.Generator())] == [5] * 53
    proc = specc("train", str(REPO / "specs" / "diabetes.yaml"), "-o", "r", "--quiet",
                 "--set", "training.batch_size=5", "--set", "training.epochs=1",
                 cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "epoch 1/" not in proc.stderr  # --quiet
    assert [r["epoch"] for r in rows(tmp_path / "r")] == ["1", "2"]  # an epoch, its refit


def test_progress_numbers_are_short_and_the_live_line_fits_the_terminal(tmp_path, monkeypatch,
                                                                       capsys):  # fmt: skip
    train = generated(tmp_path)
    row = {"epoch": 7, "train_loss": 3.6e35, "val_loss": 0.000123456, "val_accuracy": 0.5,
           "lr": 0.01, "seconds": 0.5}  # fmt: skip
    shown = ("loss", "accuracy")
    train.harness.progress(row, 100, [row], shown, quiet=False)
    line = capsys.readouterr().err.strip()
    assert "train_loss 3.6e+35" in line and "val_loss 0.0001235" in line
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(train.harness.shutil, "get_terminal_size",
                        lambda: os.terminal_size((80, 24)))  # fmt: skip
    train.harness.progress(row, 100, [row], shown, quiet=False)
    live = capsys.readouterr().err
    assert live.startswith("\r") and live.endswith("\033[K")
    assert len(live[1 : -len("\033[K")]) <= 79


def test_curves_mark_the_best_epoch_and_the_refit_and_plot_train_loss(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    train = generated(tmp_path, "stopping={early: {patience: 2}, refit: best_epochs}")
    history = [
        {"epoch": e, "train_loss": 10.0**-e, "val_loss": 2.0 * 10.0**-e, "val_accuracy": 0.1 * e,
         "lr": 0.01, "seconds": 0.1}
        for e in range(1, 7)
    ]  # fmt: skip
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    train.harness.plot_curves(tmp_path / "curves.png", history, "accuracy", 3, 4, "tiny")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    loss, metric, lr = figures[0].axes
    assert [line.get_label() for line in loss.lines[:2]] == ["train_loss", "val_loss"]
    assert list(loss.lines[0].get_ydata()) == [r["train_loss"] for r in history]
    assert loss.get_yscale() == "log" and metric.get_yscale() == "linear"
    assert lr.get_ylabel() == "lr"
    marks = {line.get_label(): line.get_xdata()[0] for line in loss.lines[2:]}
    assert marks == {"best epoch 3": 3, "refit on train + val": 4.5}
