#!/usr/bin/env bash
# Runs the safetensors loader fuzzer for SECONDS (default 60) over a copy of the seed corpus, with libttl itself
# built with coverage, AddressSanitizer and UndefinedBehaviorSanitizer (clang). Exits non-zero on a finding;
# the crashing input is left in build-fuzz/ as crash-*, leak-*, timeout-* or oom-*.
#
#   scripts/fuzz.sh [SECONDS]          JOBS=N sets the build parallelism (default 2)
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTTL_CUDA=OFF \
    -DTTL_BUILD_FUZZ=ON -DTTL_BUILD_TESTS=OFF -DTTL_BUILD_BENCH=OFF -DTTL_BUILD_TOOLS=OFF \
    -DCMAKE_C_FLAGS="$sanitize" -DCMAKE_CXX_FLAGS="$sanitize" >/dev/null
ninja -C "$build" -j"${JOBS:-2}" fuzz_safetensors

corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
cp "$root"/fuzz/corpus/safetensors/* "$corpus"/
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
echo "fuzzing the safetensors loader for ${seconds}s" >&2
"$build/fuzz/fuzz_safetensors" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/" "$corpus"
echo "fuzz: no finding in ${seconds}s" >&2
