#!/usr/bin/env bash
# Install graftkit and everything its tests use. One place, used by quickstart.sh and .ci/run.
# CPU torch goes first, so that pip does not pull a multi-GB CUDA build for the `torch>=` range.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,ray]"
# headless Chromium for the playground browser test (tests/test_serve_browser.py), and redis-server for
# the shared rate-limit test (tests/test_serve_security.py starts its own server)
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium chromium-driver"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if [ -n "$missing" ]; then
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing) >/dev/null
fi
