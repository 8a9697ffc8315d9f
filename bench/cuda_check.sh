#!/usr/bin/env bash
# Install a venv for bench/cuda_check.py, then run it (docs/cuda.md). Usage:
#
#   bash bench/cuda_check.sh [--skip-install] [--wheels DIR] [ARGS of bench/cuda_check.py...]
#   bash bench/cuda_check.sh --download-wheels DIR [--python-version 3.12]
#
# Two ways to install .venv, chosen by what $PYTHON (default python3) already holds:
#
# - $PYTHON imports torch (a GPU machine's image with its CUDA build of torch, and no package
#   registry to reach): .venv is made by that interpreter and sees its site-packages through a .pth
#   file (torch, numpy, scikit-learn, onnx, ... stay the image's); what the image lacks (pydantic,
#   ruff, optuna, ...) is installed from the wheels in DIR (--wheels, default .whl/) with
#   --no-index, then specc itself as an editable install without build isolation. Make DIR on a
#   machine that reaches the registry with --download-wheels (about 20 MB for Python 3.12).
# - $PYTHON has no torch: the steps of .ci/install (every version from .ci/constraints.txt,
#   torch==2.13.0 first). Where pip resolves torch==2.13.0 from the plain registry, on Linux x86-64
#   that is the CUDA build; a pip configured with a CPU wheel folder (as on the project's CPU
#   machines) gets the CPU build. The script prints which one it got.
#
# --skip-install uses the .venv that is there. Every other argument goes to cuda_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=.whl
SKIP=0
ARGS=()

# The packages specc needs that a CUDA image with torch, numpy, scikit-learn, pandas, pyarrow,
# matplotlib, onnx, onnxscript, onnxruntime, PyYAML and Jinja2 lacks (docs/cuda.md); their versions
# are .ci/constraints.txt's.
MISSING_ON_IMAGE="pydantic pydantic_core annotated-types typing-inspection typing_extensions ruff
  optuna alembic SQLAlchemy Mako colorlog tensorboardX setuptools"

pinned() { # the NAME==VERSION line of .ci/constraints.txt for a package name
  local name=${1//[-_]/[-_]}
  grep -i -m1 -E "^${name}==" .ci/constraints.txt || { echo "$1: not in .ci/constraints.txt" >&2; exit 2; }
}

download_wheels() { # DIR PYTHON_VERSION: the wheels of MISSING_ON_IMAGE for that Python
  local dir=$1 version=$2 platforms=()
  for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${p}_x86_64")
  done
  mkdir -p "$dir"
  for name in $MISSING_ON_IMAGE; do
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$version" \
      --implementation cp "${platforms[@]}" -d "$dir" "$(pinned "$name")"
  done
  du -sh "$dir"
}

install_over_interpreter() { # .venv on top of $PYTHON's own packages (its torch)
  # --without-pip: an interpreter that is itself a venv's may have no ensurepip; pip then comes
  # from $PYTHON's packages, and installs into the environment that runs it (.venv).
  [ -x .venv/bin/python ] || "$PYTHON" -m venv --without-pip .venv
  local venv_site
  venv_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # site.addsitedir, not a bare path: the interpreter's own .pth files are read too
  "$PYTHON" -c 'import site
for d in site.getsitepackages(): print(f"import site; site.addsitedir({d!r})")' \
    >"$venv_site/_interpreter_site.pth"
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    .venv/bin/python -m pip install --quiet --no-index --no-deps --no-compile "$WHEELS"/*.whl
  else
    echo "no wheels in $WHEELS/: installing specc over $PYTHON's packages alone" >&2
  fi
  .venv/bin/python -m pip install --quiet --no-index --no-deps --no-build-isolation -e .
}

install_from_constraints() { # .ci/install's steps, without the test-only services
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet -c .ci/constraints.txt --upgrade pip setuptools
  .venv/bin/python -m pip install --quiet -c .ci/constraints.txt torch==2.13.0
  .venv/bin/python -m pip install --quiet -c .ci/constraints.txt -e '.[train,tune]'
}

while [ $# -gt 0 ]; do
  case $1 in
    --download-wheels)
      version=3.12
      [ "${3:-}" = --python-version ] && version=$4
      download_wheels "$2" "$version"
      exit 0 ;;
    --skip-install) SKIP=1; shift ;;
    --wheels) WHEELS=$2; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

if [ "$SKIP" = 0 ]; then
  if "$PYTHON" -c 'import torch' 2>/dev/null; then
    install_over_interpreter
  else
    install_from_constraints
  fi
fi
.venv/bin/python - <<'EOF'
import importlib, sys
needed = "pydantic yaml jinja2 ruff torch numpy sklearn pandas pyarrow matplotlib onnx onnxscript onnxruntime optuna specc.cli".split()
missing = []
for name in needed:
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
import torch
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available {torch.cuda.is_available()}")
if missing:
    sys.exit("missing in .venv: " + "; ".join(missing))
EOF
exec env PYTHONUNBUFFERED=1 .venv/bin/python bench/cuda_check.py "${ARGS[@]}"
