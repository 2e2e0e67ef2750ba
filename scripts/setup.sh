#!/usr/bin/env bash
# Create .venv and install the project's requirements, plus any extra requirement files given.
# Usage: bash scripts/setup.sh [requirements-dev.txt]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch==2.13.0 is pinned: that CPU build is on the machine's disk, a looser pin pulls CUDA.
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt "${@/#/-r}"
