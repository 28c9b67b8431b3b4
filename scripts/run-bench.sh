#!/usr/bin/env bash
# The main job: builds libttl (Release) and runs ttl-bench on the paper's suite, on the GPU when one is usable,
# otherwise on the CPU. Results go to out/ (table on stdout, JSON, and a PNG chart when gnuplot is there).
#   scripts/run-bench.sh [extra ttl-bench arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTTL_BUILD_TESTS=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" >/dev/null
cmake --build build-release -j "$(nproc)" --target ttl-bench
mkdir -p out
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# --device auto: the GPU suite when libttl was built with CUDA and a device answers, else the CPU suite.
./build-release/bench/ttl-bench --device auto --suite paper --commit "$commit" --json out/bench.json "$@"
if [ -x scripts/plot-bench.sh ] && command -v gnuplot >/dev/null 2>&1; then
  scripts/plot-bench.sh out/bench.json out/bench.png
fi
