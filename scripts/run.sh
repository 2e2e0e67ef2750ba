#!/usr/bin/env bash
# Install what the app needs, then start it: bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# In a checkout beside ../shared/data, the Dataset tab shows the local STL-10 samples; elsewhere
# (a Space) its default is STL-10 on the Hub. QKVAE_DATA, when set, wins.
if [ -z "${QKVAE_DATA:-}" ] && [ -d ../shared/data/stl10-samples ]; then
    export QKVAE_DATA=../shared/data/stl10-samples
fi
exec .venv/bin/python app.py "$@"
