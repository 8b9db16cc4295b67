#!/usr/bin/env bash
# Developer build: compiles into build/dev with the .venv of scripts/setup.sh and links the results
# into python/mace_deploy in the layout `pip install` gives, so that
#   PYTHONPATH=$PWD/python .venv/bin/python -m pytest ...
# tests the working tree without reinstalling. (The console scripts and the lammps.plugins entry
# point exist only after `pip install`; the tests that need them say so.)
# PYTHON and BUILD choose another interpreter (its torch) and build folder, e.g. a CUDA torch's.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
BUILD=${BUILD:-build/dev}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$PYTHON" > /dev/null
ninja -C "$BUILD"
cd python/mace_deploy
for built in _C.cpython-*.so _mace_openmm.cpython-*.so mace_openmm.py openmm_plugins lammps_plugin; do
  for path in ../../$BUILD/$built; do
    [ -e "$path" ] && ln -sfn "$path" "$(basename "$path")"
  done
done
