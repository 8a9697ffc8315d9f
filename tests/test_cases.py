"""Error cases as folders (style.md §14): each `tests/cases/<case>/spec.yaml` is checked by the
full front end and its diagnostics compared with `expected.txt`.

`(line, col, code)` must match exactly; the whole rendering is compared as a snapshot, so
rewording a message is a one-file change: `SPECC_UPDATE_CASES=1 pytest tests/test_cases.py`
rewrites every expected.txt (review the diff). An `overrides.txt` beside the spec holds one
`--set KEY=VALUE` override per line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from specc.diagnostics import render_text
from specc.pipeline import check_file

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if (p / "spec.yaml").is_file())
UPDATE = os.environ.get("SPECC_UPDATE_CASES") == "1"
HEAD = re.compile(r"^(.+?):(\d+):(\d+): (error|warning)\[([a-z0-9-]+)\]: ", re.MULTILINE)
DOCS = Path(__file__).parent.parent / "docs" / "diagnostics.md"
MACHINE_CODES = {"cuda-unavailable"}
"""Codes whose output depends on the installed torch: tested in test_analysis.py instead."""


def run_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bool]:
    """The rendered diagnostics of a case (file shown as `spec.yaml`) and whether it is valid."""
    monkeypatch.chdir(case)
    overrides_file = case / "overrides.txt"
    overrides = overrides_file.read_text().splitlines() if overrides_file.is_file() else []
    checked = check_file("spec.yaml", overrides)
    text = render_text(checked.diagnostics)
    return (text + "\n" if text else ""), checked.ok


def heads(text: str) -> list[tuple[str, int, int, str]]:
    """(file, line, col, code) of every diagnostic in a rendering."""
    return [(f, int(line), int(col), code) for f, line, col, _, code in HEAD.findall(text)]


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The case's diagnostics: positions and codes exactly, then the full text."""
    rendered, ok = run_case(case, monkeypatch)
    expected_file = case / "expected.txt"
    if UPDATE:
        expected_file.write_text(rendered)
        return
    expected = expected_file.read_text()
    assert heads(rendered) == heads(expected)
    assert rendered == expected
    has_error = any(code for code in re.findall(r": error\[", rendered))
    assert ok == (not has_error), "a Program exactly when there is no error"


def test_every_code_has_a_case_and_docs() -> None:
    """Each code in the cases is documented, and each documented code has a case."""
    seen = {h[3] for case in CASES for h in heads((case / "expected.txt").read_text())}
    documented = set(re.findall(r"^### `([a-z0-9-]+)`", DOCS.read_text(), re.MULTILINE))
    assert seen - documented == set(), "codes without a section in docs/diagnostics.md"
    assert documented - seen == MACHINE_CODES, "documented codes without a case folder"
    indexed = re.findall(r"^\| \[`([a-z0-9-]+)`\]\(#\1\)", DOCS.read_text(), re.MULTILINE)
    assert sorted(indexed) == sorted(documented), "the index table lists every section once"


def test_case_names_are_unique_specs() -> None:
    """Every case folder holds a spec (a stray folder is a forgotten case)."""
    folders = {p for p in CASES_DIR.iterdir() if p.is_dir()}
    assert folders == set(CASES)
