#!/usr/bin/env bash
# Downloads (does not install) Debian packages that the GPU machine may lack and cannot fetch itself, into
# .deps/ (git-ignored), to be carried there; scripts/device-check.sh unpacks them under /tmp when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
cd .deps
apt-get download libcjson1 libcjson-dev >/dev/null
ls -1 ./*.deb
