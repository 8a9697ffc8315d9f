"""The `specc` command line: parse arguments, call a stage, render diagnostics, pick the exit code.

Exit codes (contract §3): 0 success (warnings allowed), 1 spec errors (or warnings with --strict),
2 usage error or unreadable file. `train` relays the training process's status.
`check`, `summary` and `schema` never import torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from specc import __version__
from specc.diagnostics import Diagnostic, has_errors, render_json, render_text

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with the command line or an unreadable file: exit status 2."""


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
    from specc.codegen.golden import GENERATED, diff, write
    from specc.codegen.render import compile_program, write_files

    if args.output and len(args.specs) > 1:
        raise UsageError("-o/--output takes a single SPEC")
    status = EXIT_OK
    files: dict[Path, str] = {}
    for spec in args.specs:
        program = _single_program(spec, args.set)
        if program is None:
            status = EXIT_ERRORS
            continue
        folder = Path(args.output) if args.output else GENERATED / program.name
        rendered = compile_program(program, folder.resolve())
        files.update({folder / name: text for name, text in rendered.items()})
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
    """specc train SPEC [-o RUN_DIR] [--set K=V]... [--resume]."""
    if not Path(args.spec).is_file():
        raise UsageError(f"cannot read {args.spec}: no such file")
    from specc.runtime.train import run_train

    return run_train(args.spec, args.output, args.set or [], args.resume)


def cmd_export(args: argparse.Namespace) -> int:
    """specc export RUN_DIR [-o FILE.onnx] [--opset N]."""
    from specc.runtime.export import run_export

    return run_export(args.run_dir, args.output, args.opset)


def cmd_predict(args: argparse.Namespace) -> int:
    """specc predict MODEL.onnx DATA [-o OUT.csv]."""
    from specc.runtime.predict import run_predict

    return run_predict(args.model, args.data, args.output, args.batch_size)


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per verb."""
    parser = argparse.ArgumentParser(
        prog="specc",
        description="Compile declarative YAML model specs into checked PyTorch code and ONNX.",
    )
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set", action="append", metavar="KEY=VALUE",
            help="override a spec value by dotted path, e.g. optimizer.lr=0.01 (repeatable)",
        )  # fmt: skip

    p = sub.add_parser("check", help="validate specs and report every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    overrides(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("summary", help="print the layer table and parameter counts")
    p.add_argument("spec", metavar="SPEC")
    overrides(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compile", help="write standalone PyTorch code for specs")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("-o", "--output", metavar="DIR", help="default: generated/<name>/")
    p.add_argument("--check", action="store_true", help="exit 1 if DIR differs from the output")
    overrides(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("train", help="compile, then train with the generated code")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", metavar="RUN_DIR", help="default: a new runs/<name>-<time>/")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in RUN_DIR")
    overrides(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a trained run to a verified ONNX file")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", metavar="FILE.onnx", help="default: RUN_DIR/model.onnx")
    p.add_argument("--opset", type=int, help="default: the spec's export.onnx.opset or 18")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="run an exported ONNX model on a data file")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("data", metavar="DATA")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="default: standard output")
    p.add_argument("--batch-size", type=int, default=4096, help="rows per ONNX Runtime call")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `specc` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return status
    except UsageError as exc:
        print(f"specc {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"specc {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `specc check ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERRORS


if __name__ == "__main__":
    sys.exit(main())
