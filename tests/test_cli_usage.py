"""The command line's own surface through the real `specc` command: one-line usage errors with
a did-you-mean, a --help that documents every argument and the exit statuses, and OS errors at
the edge (a full disk, a directory as -o) as one line with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERBS = ["check", "summary", "compile", "train", "export", "predict", "evaluate", "tune", "schema"]
FULL = Path("/dev/full")


def specc(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """The real command line in a subprocess, help wrapped at 100 columns."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *args],
        cwd=ROOT, env={**os.environ, "COLUMNS": "100"}, stdout=stdout, stderr=subprocess.PIPE,
        text=True, timeout=120,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess, prefix: str) -> str:
    """The single stderr line of a usage error (exit 2), checked for its prefix."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "word", "hint"),
    [
        (("trian", "specs/iris.yaml"), "trian", "train"),
        (("chek", "specs/iris.yaml"), "chek", "check"),
        (("Summary", "specs/iris.yaml"), "Summary", "summary"),
        (("check", "--stirct", "specs/iris.yaml"), "--stirct", "--strict"),
        (("check", "--fromat=json", "specs/iris.yaml"), "--fromat", "--format"),
        (("export", "runs/x", "--opste", "13"), "--opste", "--opset"),
        (("predict", "m.onnx", "d.csv", "--batchsize", "8"), "--batchsize", "--batch-size"),
        (("--verison",), "--verison", "--version"),
    ],
)
def test_misspelt_command_or_option_gets_did_you_mean(
    args: tuple[str, ...], word: str, hint: str
) -> None:
    kind = "option" if word.startswith("-") else "command"
    prog = f"specc {args[0]}" if args[0] in VERBS else "specc"
    line = one_error_line(specc(*args), f"{prog}: error: unknown {kind} '{word}'")
    assert line.endswith(f"; did you mean '{hint}'? (see {prog} --help)")


def test_unknown_command_lists_the_commands() -> None:
    line = one_error_line(specc("frobnicate"), "specc: error: unknown command 'frobnicate'")
    assert "the commands are " + ", ".join(VERBS) in line


@pytest.mark.parametrize(
    ("args", "prefix"),
    [
        ((), "specc: error: the following arguments are required: COMMAND"),
        (("check",), "specc check: error: the following arguments are required: SPEC"),
        (("summary", "a.yaml", "b.yaml"), "specc summary: error: unexpected argument 'b.yaml'"),
        (("check", "--format", "xml", "specs/iris.yaml"), "specc check: error: argument --format"),
        (("export", "runs/x", "--opset", "many"), "specc export: error: argument --opset"),
    ],
)
def test_argparse_errors_are_one_line(args: tuple[str, ...], prefix: str) -> None:
    line = one_error_line(specc(*args), prefix)
    assert line.endswith("--help)")  # where to look next


def test_an_abbreviated_option_still_works() -> None:
    result = specc("--vers")
    assert result.returncode == 0
    assert result.stdout.startswith("specc ")


@pytest.mark.parametrize("verb", [None, *VERBS])
def test_help_documents_every_argument_and_the_exit_statuses(verb: str | None) -> None:
    result = specc(*([verb] if verb else []), "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    sections = text.split("\n\n")
    listed = [s for s in sections if s.startswith(("positional arguments:", "options:"))]
    assert listed, text
    for section in listed:
        lines = section.splitlines()[1:]
        for i, line in enumerate(lines):
            entry = line[2:]
            if line.startswith("  ") and not entry.startswith(" ") and entry != "COMMAND":
                # an argument: its help follows on the same line or on the next, indented
                has_help = "  " in entry.strip() or (
                    i + 1 < len(lines) and lines[i + 1].startswith(" " * 6)
                )
                assert has_help, f"no help for {entry!r} in specc {verb or ''} --help"
    assert "exit status:" in text
    statuses = text.split("exit status:")[1].split()
    assert "0" in statuses
    if verb not in ("schema",):
        assert {"1", "2"} <= set(statuses)
    if verb in (None, "train"):
        assert {"3", "130"} <= set(statuses)


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args", [("check", "specs/iris.yaml"), ("summary", "specs/iris.yaml"), ("schema",)]
)
def test_a_full_standard_output_is_one_line(args: tuple[str, ...]) -> None:
    with FULL.open("w") as full:
        result = specc(*args, stdout=full)
    line = one_error_line(result, f"specc {args[0]}: error: ")
    assert "No space left on device" in line


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
def test_schema_to_a_full_disk_is_one_line() -> None:
    line = one_error_line(specc("schema", "-o", str(FULL)), "specc schema: error: ")
    assert line == f"specc schema: error: cannot write {FULL}: No space left on device"


def test_schema_to_a_directory_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(specc("schema", "-o", str(tmp_path)), "specc schema: error: ")
    assert line == f"specc schema: error: cannot write {tmp_path}: Is a directory"


def test_ctrl_c_while_the_cli_imports_is_exit_130_without_a_traceback():
    """The console script's first instant: a SIGINT during `import specc.cli` (delivered here
    exactly then, by a hook on the import) ends the process quietly with the interrupted status."""
    script = (
        "import builtins, os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal\n"
        "import specc.entry\n"
        "real = builtins.__import__\n"
        "def hooked(name, *args, **kwargs):\n"
        "    if name == 'specc.cli':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hooked\n"
        "sys.argv = ['specc', '--version']\n"
        "sys.exit(specc.entry.main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""


def test_an_ignored_sigint_stays_ignored_after_the_cli_imports():
    """A `specc` started with SIGINT ignored (nohup, a worker process) keeps it ignored."""
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "import specc.entry, specc.cli\n"
        "specc.cli.main = lambda: print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN) or 0\n"
        "sys.exit(specc.entry.main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
