#!/usr/bin/env bash
# Developer build: compiles into build/dev with the .venv of scripts/setup.sh and links the results
# into python/mace_deploy in the layout `pip install` gives, so that
#   PYTHONPATH=$PWD/python .venv/bin/python -m pytest ...
# tests the working tree without reinstalling. (The console scripts and the lammps.plugins entry
# point exist only after `pip install`; the tests that need them say so.)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$PWD/.venv/bin/python" > /dev/null
ninja -C build/dev
cd python/mace_deploy
for built in _C.cpython-*.so _mace_openmm.cpython-*.so mace_openmm.py openmm_plugins lammps_plugin; do
  for path in ../../build/dev/$built; do
    [ -e "$path" ] && ln -sfn "$path" "$(basename "$path")"
  done
done
