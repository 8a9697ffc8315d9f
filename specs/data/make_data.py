"""Regenerate the small data files in specs/data/ byte-identically from scikit-learn's datasets.

Usage (from the repository root)::

    python specs/data/make_data.py            # (re)write every file next to this script
    python specs/data/make_data.py --check    # exit 1 if any shipped file differs from a rebuild
    python specs/data/make_data.py --out DIR  # write into another directory

Every file is a deterministic function of scikit-learn's bundled copies of the UCI data. The
CSV and NPZ outputs carry no timestamps or library versions. The Parquet file stores no pandas
metadata and uses fixed writer options, so it is byte-identical for the same pyarrow version
(its footer names the writer, e.g. ``parquet-cpp-arrow version 26.0.1``).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn import datasets

HERE = Path(__file__).resolve().parent

XOR_ROWS = [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)]
PRIME_DIGITS = (2, 3, 5, 7)
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# A fixed date keeps the .npz (a zip archive) free of the time it was written.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as UTF-8 CSV with '\\n' line endings and no index column."""
    path.write_bytes(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def write_xor(out: Path) -> Path:
    """Write the XOR truth table (columns x1, x2, y)."""
    path = out / "xor.csv"
    _write_csv(pd.DataFrame(XOR_ROWS, columns=["x1", "x2", "y"]), path)
    return path


def digit_properties_frame() -> pd.DataFrame:
    """Return sklearn digits as 64 integer pixel columns plus even/large/prime 0/1 labels."""
    digits = datasets.load_digits()
    pixels = digits.data.astype(np.int64)
    target = digits.target.astype(np.int64)
    frame = pd.DataFrame(pixels, columns=[f"p{i}" for i in range(pixels.shape[1])])
    frame["even"] = (target % 2 == 0).astype(np.int64)
    frame["large"] = (target >= 5).astype(np.int64)
    frame["prime"] = np.isin(target, PRIME_DIGITS).astype(np.int64)
    return frame


def write_digit_properties(out: Path) -> Path:
    """Write the multi-label digit-properties table (1797 rows, sklearn's order)."""
    path = out / "digit_properties.csv"
    _write_csv(digit_properties_frame(), path)
    return path


def digit_tasks_frame() -> pd.DataFrame:
    """Return sklearn digits as 64 integer pixel columns, the digit, and two properties of
    each image: `even` (0/1) and `ink` (the mean pixel intensity, 0 to 16)."""
    digits = datasets.load_digits()
    pixels = digits.data.astype(np.int64)
    target = digits.target.astype(np.int64)
    frame = pd.DataFrame(pixels, columns=[f"p{i}" for i in range(pixels.shape[1])])
    frame["digit"] = target
    frame["even"] = (target % 2 == 0).astype(np.int64)
    frame["ink"] = np.round(pixels.mean(axis=1), 4)
    return frame


def write_digit_tasks(out: Path) -> Path:
    """Write the several-target digits table of the multitask example (1797 rows)."""
    path = out / "digit_tasks.csv"
    _write_csv(digit_tasks_frame(), path)
    return path


def iris_string_frame() -> pd.DataFrame:
    """Return sklearn iris with readable feature names and a string species column."""
    iris = datasets.load_iris()
    frame = pd.DataFrame(iris.data, columns=IRIS_FEATURES)
    frame["species"] = np.asarray(iris.target_names)[iris.target].astype(str)
    return frame


def write_iris_csv(out: Path) -> Path:
    """Write iris with string labels as CSV."""
    path = out / "iris_string_labels.csv"
    _write_csv(iris_string_frame(), path)
    return path


def write_iris_parquet(out: Path) -> Path:
    """Write iris with string labels as Parquet (no pandas metadata, fixed writer options)."""
    path = out / "iris_string_labels.parquet"
    frame = iris_string_frame()
    schema = pa.schema(
        [(name, pa.float64()) for name in IRIS_FEATURES] + [("species", pa.string())]
    )
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(None)
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=False,
        write_statistics=True,
        version="2.6",
    )
    return path


def write_diabetes(out: Path) -> Path:
    """Write sklearn diabetes as an .npz with float32 x [442, 10], y [442] and feature_names."""
    path = out / "diabetes.npz"
    diabetes = datasets.load_diabetes()
    arrays = {
        "x": diabetes.data.astype(np.float32),
        "y": diabetes.target.astype(np.float32),
        "feature_names": np.asarray(diabetes.feature_names, dtype=str),
    }
    # np.savez stamps each member with the current time; write the same layout with a fixed one.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
    return path


WRITERS: list[Callable[[Path], Path]] = [
    write_xor,
    write_digit_properties,
    write_digit_tasks,
    write_iris_csv,
    write_iris_parquet,
    write_diabetes,
]


def write_all(out: Path) -> list[Path]:
    """Write every data file into ``out`` and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    return [writer(out) for writer in WRITERS]


def check(shipped: Path) -> list[str]:
    """Rebuild into a temporary directory; return the names of files that differ or are missing."""
    with tempfile.TemporaryDirectory() as tmp:
        return [
            fresh.name
            for fresh in write_all(Path(tmp))
            if not (shipped / fresh.name).is_file()
            or (shipped / fresh.name).read_bytes() != fresh.read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="compare with a fresh rebuild instead of writing"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.out)
        for name in stale:
            print(f"{args.out / name}: differs from a fresh rebuild", file=sys.stderr)
        if not stale:
            print(f"all {len(WRITERS)} data files in {args.out} are up to date")
        return 1 if stale else 0
    for path in write_all(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
