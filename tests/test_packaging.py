"""The wheel users install holds everything `specc compile` needs: every template."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from specc.codegen.render import OUTPUT_FILES

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("specc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"specc/templates/{name}.j2" for name in OUTPUT_FILES} <= names
    assert "specc/cli.py" in names
    assert not any(name.startswith(("tests/", "generated/")) for name in names)
