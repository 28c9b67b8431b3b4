#!/usr/bin/env bash
# Device check for a GPU machine (H100/H200, sm_90): records the card and toolchain, builds libttl (Release,
# CUDA) and lists its kernels' loops (scripts/sass-loops.py, into build.log), runs the CUDA benchmark suite (its
# JSON, chart and the cost model's check), then the whole CTest suite, compute-sanitizer memcheck and racecheck
# on the GPU test binaries, the safetensors round trip, and Nsight Compute counters of the fused kernels. The
# benchmark comes right after the build: it is what a short device session most needs to bring back.
#
# Every stage has its own time limit, clamped to what is left of a global budget (BUDGET_S, default 500 s, so
# that one device command of at most 600 s finishes with its outputs); a stage that no longer fits is skipped.
# A failed stage does not stop the next; summary.txt is written on exit whatever happens (PASS, FAIL, or
# INCOMPLETE when stages were skipped for lack of budget or a signal stopped the script), and the exit status is
# non-zero unless it says PASS.
#
#   scripts/device-check.sh            (from anywhere; works in the repository root)
#   OUT=/path scripts/device-check.sh  (logs go to $OUT, default ./out)
#
# $OUT holds at most 8 files, none in subfolders: env.txt, build.log, ctest.log, sanitizer.log, bench.log,
# bench-cuda.json, bench-cuda.png, summary.txt.
# Knobs: BUILD_DIR (default build-device), JOBS (default 16), CUDA_ARCHS (default 90), BUDGET_S (default 500),
#        SAN_FILTER (gtest filter for the sanitizer runs; default: the small shapes only), PROFILE (0: no ncu).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

OUT="${OUT:-./out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
BUILD_DIR="${BUILD_DIR:-build-device}"
JOBS="${JOBS:-16}"
CUDA_ARCHS="${CUDA_ARCHS:-90}"
SAN_FILTER="${SAN_FILTER:-*-*vgg*:*cifar*:*Vgg*:*Graph*}"
BUDGET_S="${BUDGET_S:-500}"
DEADLINE=$(($(date +%s) + BUDGET_S))
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"

stages=()
statuses=()
seconds=()
failed=0
incomplete=0 # a stage skipped for lack of budget, or the script stopped by a signal

# run_stage NAME LIMIT_SECONDS LOGFILE COMMAND...: runs COMMAND with a time limit (clamped to the budget left),
# appending to LOGFILE; skipped when less than 20 s of the budget are left.
run_stage() {
    local name="$1" limit="$2" log="$3"
    shift 3
    local start end rc status left
    start=$(date +%s)
    left=$((DEADLINE - start - 15))
    if [ "$left" -lt 20 ]; then
        skip_stage "$name" "out of budget"
        incomplete=1
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s)" | tee -a "$log"
    timeout --kill-after=5 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    end=$(date +%s)
    if [ "$rc" -eq 0 ]; then
        status=ok
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status="timeout"
        failed=1
    else
        status="FAIL($rc)"
        failed=1
    fi
    echo "== $name: $status in $((end - start))s" | tee -a "$log"
    stages+=("$name")
    statuses+=("$status")
    seconds+=("$((end - start))")
}

# skip_stage NAME REASON
skip_stage() {
    stages+=("$1")
    statuses+=("skipped: $2")
    seconds+=(0)
}

# ---- environment -----------------------------------------------------------------------------------------------
env_log="$OUT/env.txt"
: >"$env_log"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown) $(git status --porcelain 2>/dev/null | wc -l) changed files"
    echo "host: $(uname -a)"
    echo "cores: $(nproc)"
    echo "--- nvidia-smi"
    nvidia-smi 2>&1 || echo "nvidia-smi not available"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    echo "--- nvcc"
    nvcc --version 2>&1 || echo "nvcc not found"
    echo "--- tools"
    for t in cmake ninja compute-sanitizer gnuplot python3 pkg-config; do
        printf '%-18s %s\n' "$t" "$(command -v "$t" || echo MISSING)"
    done
} >>"$env_log" 2>&1

# Dependencies: report what is missing; cJSON can come from .deps/*.deb (scripts/fetch-device-deps.sh).
missing=()
pkg-config --exists openblas 2>/dev/null || missing+=(openblas)
pkg-config --exists lapacke 2>/dev/null || missing+=(lapacke)
[ -e /usr/include/gtest/gtest.h ] || [ -e /usr/local/include/gtest/gtest.h ] || missing+=(googletest)
if ! pkg-config --exists libcjson 2>/dev/null; then
    if ls .deps/*.deb >/dev/null 2>&1; then
        deps_root=/tmp/ttl-device-deps
        mkdir -p "$deps_root"
        for deb in .deps/*.deb; do dpkg-deb -x "$deb" "$deps_root"; done
        # the packages' pkg-config files name absolute /usr paths (no prefix= line): point them at the unpacked tree
        pcdir="$deps_root/pkgconfig"
        mkdir -p "$pcdir"
        while IFS= read -r pc; do
            sed "s|=/usr|=$deps_root/usr|g" "$pc" >"$pcdir/$(basename "$pc")"
        done < <(find "$deps_root/usr" -name '*.pc')
        export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
        libdir=$(dirname "$(find "$deps_root/usr" -name 'libcjson.so*' | head -n1)")
        export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "cJSON unpacked from .deps into $deps_root" >>"$env_log"
    fi
    pkg-config --exists libcjson 2>/dev/null || missing+=(libcjson)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "MISSING dependencies: ${missing[*]}" | tee -a "$env_log"
else
    echo "dependencies: all found" >>"$env_log"
fi

# ---- summary (also when the script is cut short) ------------------------------------------------------------
# shellcheck disable=SC2317  # called by the EXIT trap
write_summary() {
    local summary="$OUT/summary.txt"
    {
        printf '%-12s %-46s %8s\n' stage status seconds
        for i in "${!stages[@]}"; do printf '%-12s %-46s %8s\n' "${stages[$i]}" "${statuses[$i]}" "${seconds[$i]}"; done
        [ "${#missing[@]}" -gt 0 ] && echo "missing dependencies: ${missing[*]}"
        grep -hE '^(The following tests FAILED|[0-9]+% tests passed)' "$OUT/ctest.log" 2>/dev/null
        grep -hE '^[[:space:]]+[0-9]+ - .*(Failed|Timeout|Exception)' "$OUT/ctest.log" 2>/dev/null | head -n 20
        grep -hE 'ERROR SUMMARY: [1-9]|RACECHECK SUMMARY: [1-9]' "$OUT/sanitizer.log" 2>/dev/null | head -n 10
        grep -hE '^ncu: ' "$OUT/bench.log" 2>/dev/null
        if [ "$failed" -ne 0 ]; then
            echo "device check: FAIL"
        elif [ "$incomplete" -ne 0 ]; then
            echo "device check: INCOMPLETE (stages skipped or stopped; see above)"
        else
            echo "device check: PASS"
        fi
    } >"$summary"
    rm -f "$OUT"/*.tmp # a JSON save cut short
    cat "$summary"
}
trap write_summary EXIT
trap 'incomplete=1; exit 143' TERM INT

# every log starts empty, so the summary never reads an earlier run's
for log in build ctest sanitizer bench; do : >"$OUT/$log.log"; done

# ---- build ------------------------------------------------------------------------------------------------------
build_log="$OUT/build.log"
run_stage configure 120 "$build_log" cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTTL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS"
run_stage build 240 "$build_log" cmake --build "$BUILD_DIR" -j "$JOBS"
# the kernels' loops as this toolchain compiled them: instructions per multiply-add, local memory in a loop
if command -v cuobjdump >/dev/null 2>&1 && [ -f "$BUILD_DIR/libttl.so" ]; then
    run_stage sass 30 "$build_log" bash -c "cuobjdump -sass '$BUILD_DIR/libttl.so' | python3 scripts/sass-loops.py - \
        fc_fused_step_tiles fc_stream_step fc_seq_kernel tt_fused_kernel tt_step_kernel"
else
    skip_stage sass "no cuobjdump or no libttl.so"
fi

# ---- benchmark and chart ----------------------------------------------------------------------------------------
bench_log="$OUT/bench.log"
bench="$BUILD_DIR/bench/ttl-bench"
if [ -x "$bench" ]; then
    run_stage bench 200 "$bench_log" "$bench" --device cuda --suite paper --json "$OUT/bench-cuda.json"
    # the chart is drawn here when jq and gnuplot exist, else later from the committed JSON
    if [ -f "$OUT/bench-cuda.json" ] && command -v jq >/dev/null 2>&1 && command -v gnuplot >/dev/null 2>&1; then
        run_stage plot 30 "$bench_log" scripts/plot-bench.sh "$OUT/bench-cuda.json" "$OUT/bench-cuda.png"
    else
        skip_stage plot "no JSON, or no jq / gnuplot"
    fi
    if [ -f "$OUT/bench-cuda.json" ] && command -v python3 >/dev/null 2>&1; then
        run_stage model 30 "$bench_log" python3 scripts/model-check.py "$OUT/bench-cuda.json"
    else
        skip_stage model "no JSON or no python3"
    fi
else
    skip_stage bench "no ttl-bench binary"
    skip_stage plot "no ttl-bench binary"
    skip_stage model "no ttl-bench binary"
fi

# ---- tests ------------------------------------------------------------------------------------------------------
ctest_log="$OUT/ctest.log"
if [ -f "$BUILD_DIR/CTestTestfile.cmake" ]; then
    run_stage ctest 150 "$ctest_log" ctest --test-dir "$BUILD_DIR" --output-on-failure -j 8 --timeout 200
else
    skip_stage ctest "no build"
fi

# ---- compute-sanitizer on the GPU test binaries -------------------------------------------------------------------
san_log="$OUT/sanitizer.log"
gpu_tests=$(find "$BUILD_DIR/tests" -maxdepth 1 -type f -name 'gpu_*' -perm -u+x 2>/dev/null | sort)
if ! command -v compute-sanitizer >/dev/null 2>&1; then
    skip_stage memcheck "no compute-sanitizer"
    skip_stage racecheck "no compute-sanitizer"
elif [ -z "$gpu_tests" ]; then
    skip_stage memcheck "no GPU test binaries"
    skip_stage racecheck "no GPU test binaries"
else
    # shellcheck disable=SC2317  # called through bash -c below
    sanitize_all() { # TOOL: every GPU test binary under the tool; fails if any does
        local tool="$1" rc=0 t
        for t in $gpu_tests; do
            echo "--- $tool $t (filter $SAN_FILTER)"
            compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 \
                "$t" --gtest_filter="$SAN_FILTER" --gtest_brief=1 || rc=1
        done
        return "$rc"
    }
    export -f sanitize_all
    export gpu_tests SAN_FILTER
    run_stage memcheck 90 "$san_log" bash -c 'sanitize_all memcheck'
    run_stage racecheck 90 "$san_log" bash -c 'sanitize_all racecheck'
fi

# optional: the safetensors round trip (its make-dense step needs torch too), with the ttl tool just built
ttl_tool="$BUILD_DIR/tools/ttl"
if [ -f scripts/check_safetensors.py ] && [ -x "$ttl_tool" ] &&
    python3 -c 'import safetensors, torch' >/dev/null 2>&1; then
    work=$(mktemp -d /tmp/ttl-safetensors.XXXXXX)
    run_stage safetensors 60 "$bench_log" python3 scripts/check_safetensors.py roundtrip --ttl "$ttl_tool" "$work"
    rm -rf "$work"
else
    skip_stage safetensors "no script, ttl tool, or python3 safetensors+torch"
fi

# ---- hardware counters of the kernels the speed targets rest on (Nsight Compute; optional, last) ---------------
# The first launch of: the fused TT-conv kernel, each variant (tt_fused_kernel<0, ...> spatial first, <1, ...>
# channels first), on the 512 -> 512 layers at 14x14, ranks 8 and 4, batch 128, with FFMA steps and (rank 8)
# with 3xTF32 tensor-core steps; the fused TT-FC kernel on VGG FC6 TT4 at batch 1, and at batch 1024 with FFMA and
# with 3xTF32 tensor-core tiles. Each run keeps one libttl row
# (--algo), so the first launch is that row's check. Throughput against the SM's ceilings, FMA and tensor pipe
# use, shared-memory wavefronts and bank conflicts, occupancy, warp stall reasons: what a later change to these
# kernels can be reasoned against without a GPU. Clocks left as they are (--clock-control none). Appended to
# bench.log; informative only, so a failed profile fails nothing and a stage left without budget leaves the check
# complete.
ncu_bin=$(command -v ncu || find /opt/nvidia/nsight-compute -maxdepth 2 -name ncu -type f 2>/dev/null | sort |
    tail -n1)
if [ "${PROFILE:-1}" = 0 ]; then
    skip_stage profile "PROFILE=0"
elif [ -z "$ncu_bin" ] || [ ! -x "$bench" ]; then
    skip_stage profile "no ncu or no ttl-bench binary"
elif [ $((DEADLINE - $(date +%s) - 15)) -lt 60 ]; then
    skip_stage profile "out of budget (optional)"
else
    # shellcheck disable=SC2317  # called through bash -c below
    profile_all() {
        local failures=0 count=0 spec case batch algo kernel
        for spec in 'vgg_conv5_512_r8:128:spatial_first:tt_fused_kernel<0' \
            'vgg_conv5_512_r8:128:channels_first:tt_fused_kernel<1' \
            'vgg_conv5_512_r8:128:spatial_first_3xtf32:tt_fused_kernel<0' \
            'vgg_conv5_512_r8:128:channels_first_3xtf32:tt_fused_kernel<1' \
            'vgg_conv5_512_r4:128:spatial_first:tt_fused_kernel<0' \
            'vgg_conv5_512_r4:128:channels_first:tt_fused_kernel<1' 'vgg_fc6_tt4:1:fused:fc_fused_kernel' \
            'vgg_fc6_tt4:1024:fused:fc_fused_kernel' 'vgg_fc6_tt4:1024:fused_3xtf32:fc_fused_kernel'; do
            IFS=: read -r case batch algo kernel <<<"$spec"
            count=$((count + 1))
            echo "--- ncu $case batch $batch $algo: the first launch of $kernel"
            "$ncu_bin" --clock-control none --kernel-name-base demangled --kernel-name "regex:$kernel" \
                --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis \
                --section InstructionStats --section MemoryWorkloadAnalysis \
                --section MemoryWorkloadAnalysis_Tables --section Occupancy --section LaunchStats \
                --section SchedulerStats --section WarpStateStats \
                "$bench" --device cuda --case "$case" --batch "$batch" --algo "$algo" --repeats 3 ||
                failures=$((failures + 1))
        done
        echo "ncu: $failures of $count profiles failed"
    }
    export -f profile_all
    export ncu_bin bench
    run_stage profile 150 "$bench_log" bash -c profile_all
fi

if [ "$failed" -eq 0 ] && [ "$incomplete" -eq 0 ]; then exit 0; fi
exit 1 # FAIL or INCOMPLETE
