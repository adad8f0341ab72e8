#!/usr/bin/env bash
# Install what is missing, build, and run every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh chromium    # the report test renders report.html in headless Chromium
bash scripts/build.sh
cd build
ctest --output-on-failure --parallel "$(nproc)"
