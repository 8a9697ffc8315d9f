"""What users install: the wheel holds everything `specc compile` needs and declares its
license; CI's constraints pin the whole install, inside pyproject's ranges."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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


def test_wheel_declares_the_license(tmp_path: Path) -> None:
    """An SPDX `License-Expression: MIT` in the metadata, and the LICENSE text in the wheel."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("specc-*.whl")
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    assert "License-Expression: MIT" in archive.read(metadata).decode().splitlines()
    (license_file,) = [n for n in archive.namelist() if n.endswith("/licenses/LICENSE")]
    assert archive.read(license_file).decode().startswith("MIT License")


def _pins() -> dict[str, str]:
    """.ci/constraints.txt as {normalized name: version}."""
    pins = {}
    for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _requirements(name: str, extras: set[str], seen: dict[str, Requirement]) -> None:
    """Every requirement reachable from `name[extras]` in this environment, into `seen`."""
    for text in distribution(name).requires or []:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            continue
        key = canonicalize_name(req.name)
        if key not in seen:
            seen[key] = req
            _requirements(key, set(req.extras), seen)


def test_constraints_pin_the_whole_install() -> None:
    """Every package `.[train,dev]` pulls in is pinned in .ci/constraints.txt at the version
    installed here, and the pins satisfy pyproject's ranges: a fresh install resolves to
    exactly this environment, and a user's install with the ranges can resolve to it too."""
    pins = _pins()
    needed: dict[str, Requirement] = {}
    _requirements("specc", {"train", "dev"}, needed)
    assert {"torch", "ruff", "pydantic", "onnxruntime", "pytest"} <= set(needed)
    for key, req in needed.items():
        assert key in pins, f"{key} is not pinned in .ci/constraints.txt"
        installed = Version(distribution(key).version).public
        assert Version(pins[key]) == Version(installed), (key, pins[key], installed)
        assert req.specifier.contains(pins[key], prereleases=True), (key, str(req), pins[key])
    assert {"pip", "setuptools"} <= set(pins)  # the installer and the build backend too
