"""`specc train`: compile a spec into a run directory, then train with the generated code.

The training itself runs in a child process, `python RUN_DIR/code/train.py --out RUN_DIR`, the
exact standalone script a user could run without specc; this module only prepares the run
directory (code/, spec.yaml), relays the child's exit status and, when the spec asks for it and
training succeeded, exports model.onnx.

Exit statuses (docs/training.md): 0 trained, 1 spec errors, 2 bad data or run-directory problems,
3 the loss became nan/inf, 130 interrupted; anything else is the child's own status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


def default_run_dir(name: str, root: Path = Path("runs"), now: float | None = None) -> Path:
    """`runs/<name>-<YYYYMMDD-HHMMSS>`, with -2, -3, ... appended when that already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = root / f"{name}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    return candidate


def _error(message: str) -> None:
    print(f"specc train: error: {message}", file=sys.stderr)


def _run_child(command: list[str]) -> int:
    """Run the training script with inherited stdio; on Ctrl-C let it save and exit by itself."""
    child = subprocess.Popen(command)
    # The terminal sends SIGINT to the whole process group: the child saves last.pt and exits
    # 130; this process only waits for it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def _export(run_dir: Path, opset: int) -> int:
    """Write run_dir/model.onnx with the export engineer's export_run, when it exists."""
    try:
        from specc.runtime.export import export_run
    except ImportError:
        print("note: ONNX export is not available in this build; no model.onnx", file=sys.stderr)
        return EXIT_OK
    try:
        report = export_run(run_dir, run_dir / "model.onnx", opset)
    except Exception as exc:  # report any export failure as one line, never a traceback
        _error(f"training succeeded but the ONNX export failed: {exc}")
        return EXIT_SPEC
    print(report.line())
    return EXIT_OK


def run_train(spec_path: str, run_dir: str | None, overrides: list[str], resume: bool) -> int:
    """Compile `spec_path` (with --set overrides) into a run directory and train; exit status."""
    import yaml

    from specc.codegen.render import compile_program, write_files
    from specc.diagnostics import has_errors, render_text
    from specc.pipeline import load_program

    program, diagnostics = load_program(spec_path, overrides)
    if diagnostics:
        print(render_text(diagnostics), file=sys.stderr)
    if program is None or has_errors(diagnostics):
        return EXIT_SPEC

    if resume:
        if run_dir is None:
            _error("--resume needs the run directory: specc train SPEC -o RUN_DIR --resume")
            return EXIT_USAGE
        out = Path(run_dir)
        if not (out / "last.pt").is_file():
            _error(f"{out / 'last.pt'} does not exist; nothing to resume")
            return EXIT_USAGE
    elif run_dir is None:
        out = default_run_dir(program.name)
    else:
        out = Path(run_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            _error(f"{out} already exists and is not empty; pick another -o, or add --resume")
            return EXIT_USAGE

    code = out / "code"
    if not (resume and (code / "train.py").is_file()):  # a resumed run keeps the code that ran
        files = compile_program(program, code)
        write_files(files, code)
        spec_text = yaml.safe_dump(program.resolved, sort_keys=False, allow_unicode=True)
        tmp = out / "spec.yaml.tmp"
        tmp.write_text(spec_text, encoding="utf-8")
        os.replace(tmp, out / "spec.yaml")
    print(f"run directory: {out}", file=sys.stderr)

    command = [sys.executable, str(code / "train.py"), "--out", str(out)]
    if resume:
        command.append("--resume")
    status = _run_child(command)
    if status < 0:  # killed by a signal (SIGINT while Python was still starting: 130)
        status = 128 - status
    if status == 130 and (out / "last.pt").is_file():
        print(
            f"resume with: specc train {spec_path} -o {out} --resume"
            + "".join(f" --set {o}" for o in overrides),
            file=sys.stderr,
        )
    elif status == 130:
        print(
            "specc train: interrupted before the first checkpoint; nothing to resume",
            file=sys.stderr,
        )
    if status == EXIT_OK and program.onnx_opset is not None:
        return _export(out, program.onnx_opset)
    return status
