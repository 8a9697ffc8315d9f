"""The `specc` command line: parse arguments, call a stage, render diagnostics, pick the exit code.

Exit codes (contract §3): 0 success (warnings allowed), 1 spec errors (or warnings with --strict),
2 usage error, unreadable or unwritable file, missing training extras. `train` relays the
training process's status (3 non-finite loss, 130 interrupted); every verb's --help lists its own.
`check`, `summary` and `schema` never import torch.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from specc import __version__
from specc.diagnostics import Diagnostic, did_you_mean, has_errors, render_json, render_text
from specc.exitcodes import (
    EXIT_ERRORS,
    EXIT_INTERRUPTED,
    EXIT_NON_FINITE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
)

# The modules of the [train] extra that each verb imports. They are looked up (not imported)
# before the verb runs, so an install without the extra gets one line, not a traceback.
EXTRA_MODULES = {
    "train": ("torch", "numpy", "sklearn", "pyarrow", "onnx", "onnxruntime"),
    "export": ("torch", "numpy", "onnx", "onnxruntime"),
    "predict": ("numpy", "pandas", "onnxruntime"),
    "evaluate": ("numpy", "pandas", "onnxruntime"),
    "tune": ("torch", "numpy", "sklearn", "optuna"),
}
EXTRA_OF = {"optuna": "tune"}
"""The extra a module comes from, when it is not [train]."""


def _check_extras(command: str) -> None:
    """UsageError naming the first module of the [train] extra that `command` lacks."""
    for module in EXTRA_MODULES.get(command, ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken install of it counts as missing
            found = False
        if not found:
            extra = EXTRA_OF.get(module, "train")
            what = "training extras" if extra == "train" else f"{extra} extras"
            raise UsageError(
                f"the {what} are not installed (no module named '{module}'): "
                f"pip install 'specc[{extra}]'"
            )


def _os_error(exc: OSError) -> str:
    """One line for an OSError: the path it concerns (when known) and the system's reason."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _read_checked(path: str, overrides: list[str] | None = None):
    """Check one spec file, turning an unreadable file into a UsageError."""
    from specc.pipeline import check_file

    try:
        return check_file(path, overrides)
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _emit(diags: list[Diagnostic], stream=None) -> None:
    """Print diagnostics as text (sorted) when there are any."""
    if diags:
        print(render_text(diags), file=stream or sys.stderr)


def _status(diags: list[Diagnostic], strict: bool = False) -> int:
    """The exit status diagnostics call for."""
    return EXIT_ERRORS if has_errors(diags, strict) else EXIT_OK


def _one_line(checked) -> str:
    """The one-line summary of a valid spec."""
    p = checked.program
    warnings = sum(d.severity == "warning" for d in checked.diagnostics)
    shape = "x".join(map(str, p.model.input_shape))
    tail = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
    return (
        f"{checked.path}: ok: {p.name}: {p.task}, input [{shape}], "
        f"{len(p.model.layers)} hidden layer{'s' * (len(p.model.layers) != 1)}, "
        f"{p.model.params:,} parameters, "
        f"loss {p.loss.name}{tail}"
    )


def cmd_check(args: argparse.Namespace) -> int:
    """specc check SPEC... [--format text|json] [--strict]."""
    results = [_read_checked(path, args.set) for path in args.specs]
    diags = [d for r in results for d in r.diagnostics]
    status = _status(diags, args.strict)
    if args.format == "json":
        files = [
            {
                "file": r.path,
                "valid": r.ok and not (args.strict and r.diagnostics),
                "name": r.program.name if r.program else None,
                "task": r.program.task if r.program else None,
                "params": r.program.model.params if r.program else None,
                "errors": sum(d.severity == "error" for d in r.diagnostics),
                "warnings": sum(d.severity == "warning" for d in r.diagnostics),
            }
            for r in results
        ]
        doc = {"files": files, "diagnostics": json.loads(render_json(diags))}
        print(json.dumps(doc, indent=2))
        return status
    _emit(diags, sys.stdout)
    for r in results:
        if r.ok:
            print(_one_line(r))
    return status


def _single_program(spec: str, overrides: list[str] | None):
    """Check one spec for commands that need its Program; None (diagnostics printed) on errors."""
    checked = _read_checked(spec, overrides)
    _emit(checked.diagnostics)
    return checked.program if checked.ok else None


def cmd_summary(args: argparse.Namespace) -> int:
    """specc summary SPEC: the layer table."""
    from specc.analysis.summary import render_summary

    program = _single_program(args.spec, args.set)
    if program is None:
        return EXIT_ERRORS
    print(render_summary(program))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    """specc compile SPEC... [-o DIR] [--check]: write (or compare) the generated code."""
    from specc.codegen.golden import compile_spec, diff, write
    from specc.codegen.render import write_files

    if args.output and len(args.specs) > 1:
        raise UsageError("-o/--output takes a single SPEC")
    status = EXIT_OK
    files: dict[Path, str] = {}
    for spec in args.specs:
        program = _single_program(spec, args.set)
        if program is None:
            status = EXIT_ERRORS
            continue
        # the golden test's compile step, relative to the working directory
        folder = Path(args.output) if args.output else None
        files.update(compile_spec(program, spec, Path.cwd(), folder))
    if args.check:
        if args.output:  # a folder of the user's: compare only the files specc writes
            stale = [f"{p}: {d}" for p, text in files.items() if (d := _difference(p, text))]
        else:
            stale = diff(files, Path("."))
        for line in stale:
            print(line, file=sys.stderr)
        if stale:
            again = " ".join([*args.specs, *(["-o", args.output] if args.output else [])])
            print(f"stale; regenerate with: specc compile {again}", file=sys.stderr)
        return EXIT_ERRORS if stale else status
    if not files:  # no spec compiled: create no folder
        return status
    try:
        if args.output:  # a folder of the user's: write our files, never remove theirs
            written = write_files(
                {path.name: text for path, text in files.items()}, Path(args.output)
            )
        else:  # generated/<name>/ is specc's own: stale files there are removed
            written = write(files, Path("."))
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or args.output}: {exc.strerror}") from None
    for path in written:
        print(path)
    return status


def _difference(path: Path, text: str) -> str:
    """'missing', 'differs', or '' when the file on disk holds exactly text."""
    if not path.is_file():
        return "missing"
    return "" if path.read_text(encoding="utf-8") == text else "differs"


def cmd_train(args: argparse.Namespace) -> int:
    """specc train SPEC [-o RUN_DIR] [--set K=V]... [--resume] [--quiet]."""
    from specc.runtime.train import SIGNALS, run_train

    SIGNALS.install()  # before the heavy imports: Ctrl-C, SIGTERM, SIGHUP are exit 130 from here
    if not Path(args.spec).is_file():
        raise UsageError(f"cannot read {args.spec}: no such file")
    return run_train(args.spec, args.output, args.set or [], args.resume, args.quiet)


def cmd_export(args: argparse.Namespace) -> int:
    """specc export RUN_DIR [-o FILE.onnx] [--opset N]."""
    from specc.runtime.export import run_export

    return run_export(args.run_dir, args.output, args.opset)


def cmd_predict(args: argparse.Namespace) -> int:
    """specc predict MODEL.onnx DATA [-o OUT.csv]."""
    from specc.runtime.predict import run_predict

    return run_predict(args.model, args.data, args.output, args.batch_size)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """specc evaluate RUN_DIR_OR_MODEL.onnx DATA [--format text|json]."""
    from specc.runtime.evaluate import run_evaluate

    return run_evaluate(args.model, args.data, args.format)


def cmd_tune(args: argparse.Namespace) -> int:
    """specc tune SPEC [-o RUN_DIR] [--trials N] [--workers N] [--storage URL] [--resume]."""
    from specc.runtime.tune import run_tune

    if not Path(args.spec).is_file():
        raise UsageError(f"cannot read {args.spec}: no such file")
    return run_tune(
        args.spec, args.output, args.trials, args.workers, args.storage, args.resume,
        args.worker, args.quiet,
    )  # fmt: skip


def cmd_schema(args: argparse.Namespace) -> int:
    """specc schema [-o FILE]: the JSON Schema of the spec language."""
    from specc.schema.jsonschema import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    return EXIT_OK


EXIT_STATUS: dict[str, list[tuple[int, str]]] = {
    "specc": [
        (EXIT_OK, "success (warnings allowed)"),
        (EXIT_ERRORS, "spec errors (with check --strict: warnings too)"),
        (EXIT_USAGE, "usage error, unreadable or unwritable file, bad data"),
        (EXIT_NON_FINITE, "train: the loss became NaN or infinite"),
        (EXIT_INTERRUPTED, "interrupted (a train run continues with --resume)"),
    ],
    "check": [
        (EXIT_OK, "no errors (warnings allowed)"),
        (EXIT_ERRORS, "errors (with --strict: warnings too)"),
        (EXIT_USAGE, "usage error or unreadable file"),
    ],
    "summary": [
        (EXIT_OK, "table printed (warnings allowed)"),
        (EXIT_ERRORS, "spec errors"),
        (EXIT_USAGE, "usage error or unreadable file"),
    ],
    "compile": [
        (EXIT_OK, "written (with --check: already current)"),
        (EXIT_ERRORS, "spec errors (with --check: stale or missing files)"),
        (EXIT_USAGE, "usage error, unreadable spec or unwritable output"),
    ],
    "train": [
        (EXIT_OK, "trained (and exported when the spec asks for it)"),
        (EXIT_ERRORS, "spec errors, or the ONNX export failed after training"),
        (EXIT_USAGE, "usage error, bad data, an unusable RUN_DIR, no training extras"),
        (EXIT_NON_FINITE, "the loss became NaN or infinite"),
        (EXIT_INTERRUPTED, "interrupted; continue with --resume"),
    ],
    "export": [
        (EXIT_OK, "written and verified against PyTorch"),
        (EXIT_ERRORS, "the export or its verification failed"),
        (EXIT_USAGE, "unusable RUN_DIR or argument, unwritable output, no training extras"),
    ],
    "predict": [
        (EXIT_OK, "predictions written"),
        (EXIT_ERRORS, "ONNX Runtime failed while running a batch"),
        (EXIT_USAGE, "bad model or data file, unwritable output, no training extras"),
    ],
    "evaluate": [
        (EXIT_OK, "evaluated"),
        (EXIT_ERRORS, "ONNX Runtime failed while running a batch"),
        (EXIT_USAGE, "bad model or data file, missing or unknown targets, no training extras"),
    ],
    "tune": [
        (EXIT_OK, "searched, best.yaml written and final/ trained"),
        (EXIT_ERRORS, "spec errors (or the checker refused every trial)"),
        (EXIT_USAGE, "usage error, bad data, an unusable RUN_DIR or storage, no tune extras"),
        (EXIT_INTERRUPTED, "interrupted; continue with --resume"),
    ],
    "schema": [(EXIT_OK, "written"), (EXIT_USAGE, "unwritable output")],
}
"""The exit statuses each verb's --help lists (docs/training.md and docs/deployment.md have
the details)."""


def _epilog(command: str) -> str:
    """The 'exit status' block at the end of a --help."""
    rows = "\n".join(f"  {code:<5}{meaning}" for code, meaning in EXIT_STATUS[command])
    return f"exit status:\n{rows}"


class _Parser(argparse.ArgumentParser):
    """argparse with specc's usage errors: one line on standard error, exit status 2."""

    def __init__(self, **kwargs) -> None:
        self.option_names: list[str] = []  # before argparse adds -h/--help through add_argument
        self.verbs: dict[str, _Parser] = {}
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.option_names += action.option_strings
        return action

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _unknown(parser: _Parser, verb: _Parser, word: str) -> NoReturn:
    """The usage error for an argument the verb does not take, with a did-you-mean for a
    misspelt option (`--stirct` -> `--strict`)."""
    if not word.startswith("-") or word == "-":
        verb.error(f"unexpected argument '{word}'")
    options = {o.lstrip("-"): o for o in [*parser.option_names, *verb.option_names]}
    name = word.partition("=")[0]
    close = difflib.get_close_matches(name.lstrip("-").lower(), list(options), n=1, cutoff=0.6)
    hint = f"; did you mean '{options[close[0]]}'?" if close else ""
    verb.error(f"unknown option '{name}'{hint}")


def build_parser() -> _Parser:
    """The argument parser with one sub-command per verb."""
    parser = _Parser(
        prog="specc",
        description="Compile declarative YAML model specs into checked PyTorch code and ONNX.\n"
        "Run 'specc COMMAND --help' for the arguments of each command.",
        epilog=_epilog("specc"),
    )
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, summary: str) -> _Parser:
        return sub.add_parser(
            name, help=summary, description=f"specc {name}: {summary}.", epilog=_epilog(name)
        )

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set", action="append", metavar="KEY=VALUE",
            help="override a spec value by dotted path, e.g. optimizer.lr=0.01 (repeatable)",
        )  # fmt: skip

    p = verb("check", "validate specs and report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML) to check")
    p.add_argument(
        "--format", choices=["text", "json"], default="text",
        help="text: compiler-style lines (default); json: one machine-readable document",
    )  # fmt: skip
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    overrides(p)
    p.set_defaults(func=cmd_check)

    p = verb("summary", "print the layer table and parameter counts")
    p.add_argument("spec", metavar="SPEC", help="the spec file (YAML)")
    overrides(p)
    p.set_defaults(func=cmd_summary)

    p = verb("compile", "write standalone PyTorch code for specs")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML) to compile")
    p.add_argument("-o", "--output", metavar="DIR", help="default: generated/<name>/")
    p.add_argument("--check", action="store_true", help="exit 1 if DIR differs from the output")
    overrides(p)
    p.set_defaults(func=cmd_compile)

    p = verb("train", "compile, then train with the generated code")
    p.add_argument("spec", metavar="SPEC", help="the spec file (YAML)")
    p.add_argument("-o", "--output", metavar="RUN_DIR", help="default: a new runs/<name>-<time>/")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in RUN_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress output while training")
    overrides(p)
    p.set_defaults(func=cmd_train)

    p = verb("export", "export a trained run to a verified ONNX file")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by specc train")
    p.add_argument(
        "-o", "--output", metavar="FILE.onnx",
        help="the ONNX file, or a directory for DIR/model.onnx (default: RUN_DIR/model.onnx)",
    )  # fmt: skip
    p.add_argument("--opset", type=int, help="default: the spec's export.onnx.opset or 18")
    p.set_defaults(func=cmd_export)

    p = verb("predict", "run an exported ONNX model on a data file")
    p.add_argument("model", metavar="MODEL.onnx", help="a model written by specc export")
    p.add_argument("data", metavar="DATA", help="the rows to predict: .csv, .parquet or .npz")
    p.add_argument(
        "-o", "--output", metavar="OUT.csv",
        help="a CSV file, or a directory for DIR/predictions.csv (default: standard output)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=4096, help="rows per ONNX Runtime call")
    p.set_defaults(func=cmd_predict)

    p = verb("evaluate", "the task's metrics of an exported model on a labelled data file")
    p.add_argument(
        "model", metavar="RUN_DIR_OR_MODEL.onnx",
        help="a model written by specc export, or a run directory (its model.onnx)",
    )  # fmt: skip
    p.add_argument(
        "data", metavar="DATA", help="labelled rows: .csv, .parquet or .npz with the target(s)"
    )
    p.add_argument(
        "--format", choices=["text", "json"], default="text",
        help="text: readable tables (default); json: one machine-readable document",
    )  # fmt: skip
    p.set_defaults(func=cmd_evaluate)

    p = verb("tune", "search the spec's search: space with Optuna, then train the best spec")
    p.add_argument("spec", metavar="SPEC", help="the spec file (YAML), with a search: section")
    p.add_argument("-o", "--output", metavar="RUN_DIR", help="default: runs/<name>-tune-<time>/")
    p.add_argument("--trials", type=int, metavar="N", help="default: search.trials")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="local worker processes on the study, one thread each (default 1)",
    )  # fmt: skip
    p.add_argument(
        "--storage", metavar="URL",
        help="a database shared by workers on many machines: postgresql://..., sqlite:///... "
        "(default: search.storage, else RUN_DIR/study.journal)",
    )  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue an interrupted search")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # a process of --workers N
    p.set_defaults(func=cmd_tune)

    p = verb("schema", "print the JSON Schema of the spec language")
    p.add_argument("-o", "--output", metavar="FILE", help="write it to FILE, not standard output")
    p.set_defaults(func=cmd_schema)
    parser.verbs = sub.choices
    return parser


def _stdout_works() -> bool:
    """Whether standard output still takes writes; when not, point it at /dev/null, so that the
    interpreter's final flush has nothing left to complain about."""
    try:
        sys.stdout.flush()
        return True
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `specc` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is not None and command not in parser.verbs:
        hint = did_you_mean(command, parser.verbs) or f"the commands are {', '.join(parser.verbs)}"
        parser.error(f"unknown command '{command}'; {hint}")
    if command is None:  # only options: a misspelt --version or --help says so
        for arg in argv:
            if not any(name.startswith(arg.partition("=")[0]) for name in parser.option_names):
                _unknown(parser, parser, arg)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _unknown(parser, parser.verbs[args.command], unknown[0])
    try:
        _check_extras(args.command)
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return status
    except UsageError as exc:
        print(f"specc {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the exit
        print(f"specc {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `specc check ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERRORS
    except OSError as exc:  # a full disk, a vanished folder...: one line, never a traceback
        if exc.filename is None and not _stdout_works():
            message = f"cannot write standard output: {exc.strerror or exc}"
        else:
            message = _os_error(exc)
        print(f"specc {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
