#!/usr/bin/env bash
# Does `pip install .` give a working `rockjax` command and `import rockjax`, away from this checkout?
#
#   scripts/check_install.sh          # a fresh venv; the dependencies reused from the running venv
#   scripts/check_install.sh --full   # a fresh venv that downloads every dependency (minutes)
#
# It builds the wheel, installs it into a new virtual environment, and from an empty folder runs
# `rockjax --config=configs/residual.py` (the shipped recipe, found inside the package) for one short
# epoch, then `rockjax --mode=export --workdir=...` and rockjax.load(...).predict in Python.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
if [[ "${1:-}" == "--full" ]]; then
  "$tmp/venv/bin/pip" install -q .
else
  # The running environment's packages (requirements.txt, already installed) by a .pth file.
  deps=$("$python" -c 'import jax, os; print(os.path.dirname(os.path.dirname(jax.__file__)))')
  site=$("$tmp/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  echo "$deps" > "$site/rockjax_check_deps.pth"
  "$python" -m pip wheel -q . --no-deps --no-build-isolation -w "$tmp/wheel"
  "$tmp/venv/bin/pip" install -q --no-deps "$tmp"/wheel/rockjax-*.whl
fi
rm -rf build rockjax.egg-info  # setuptools' build folders, not part of the checkout
mkdir "$tmp/elsewhere" && cd "$tmp/elsewhere"
"$tmp/venv/bin/rockjax" --config=configs/residual.py --config.num_epochs=1 \
    --config.data.synthetic.num_per_class=24 --config.data.repeats=1 --workdir=run
"$tmp/venv/bin/rockjax" --mode=export --workdir=run --config.export.report=False
REPO="$repo" "$tmp/venv/bin/python" - <<'PY'
import os
import numpy as np
import rockjax
assert not rockjax.__file__.startswith(os.environ['REPO']), rockjax.__file__  # the installed copy
print('installed at', os.path.dirname(rockjax.__file__))
print('predict:', rockjax.load('run').predict(np.zeros((40, 40, 3), np.uint8)).classes)
PY
echo "install check passed (wheel from $repo)"
