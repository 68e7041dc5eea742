#!/bin/sh
# gpu-check.sh - the checks that need a GPU, as one short prepared run:
# show the GPU, build in build-gpu/ (CUDA on), run the CUDA suites (the
# real-GPU one must not skip), the conformance suite (every built-in on
# every device against the CPU) and the engine overhead benchmark.
# Usage, from the repository root:  bench/gpu-check.sh [build-dir]
# Needs cmake, a C compiler, nvcc and libxxhash-dev; exits non-zero on the
# first failure.
set -eu
B=${1:-build-gpu}
T="timeout 300"

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,persistence_mode \
	--format=csv || echo "nvidia-smi not found"

echo "== build ($B)"
mkdir -p "$B"
cmake -S . -B "$B" -DGFN_WITH_CUDA=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	>"$B/gpu-check-cmake.log" 2>&1 ||
	{ cat "$B/gpu-check-cmake.log"; exit 1; }
cmake --build "$B" -j"$(nproc)" --target test_cuda_gpu test_cuda_fake \
	test_conformance gfn-bench >"$B/gpu-check-build.log" 2>&1 ||
	{ tail -40 "$B/gpu-check-build.log"; exit 1; }

echo "== test_cuda_gpu (real GPU; 77 = no device found: a failure here)"
rc=0
GFN_LOG=info $T "$B/tests/test_cuda_gpu" || rc=$?
[ "$rc" -eq 0 ] || { echo "test_cuda_gpu: exit $rc"; exit 1; }

echo "== test_cuda_fake, test_conformance"
$T ctest --test-dir "$B" --output-on-failure -R 'test_cuda_fake|test_conformance'

echo "== gfn-bench overhead"
$T "$B/bench/gfn-bench" overhead --seconds 0.5 --repeats 3
echo "== gpu-check: all passed"
