#!/usr/bin/env bash
# Installs libttl's build and test dependencies from Debian/Ubuntu packages, only those that are missing.
# CUDA (nvcc, cuBLAS, cuDNN) is not installed here: the CUDA paths are built when a toolkit is already present.
set -euo pipefail
pkgs=(cmake ninja-build pkg-config g++ libopenblas-dev liblapacke-dev libcjson-dev libgtest-dev gnuplot-nox jq)
[ "${TTL_WITH_CLANG:-0}" = 1 ] && pkgs+=(clang libclang-rt-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
