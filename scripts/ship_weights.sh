#!/usr/bin/env bash
# Ship a training run as the default weights: publish its weights, log and loss curve into
# assets/, refit the OOD reference (context prior and calibration) for them, and evaluate them on the STL-10 samples
# (with the bf16 check on all 80) into runs/evaluate-stl10/. Afterwards update the numbers in
# assets/MODEL_CARD.md, README.md and the OOD figures quoted in the docs (the code reads the thresholds from the reference file).
#   bash scripts/ship_weights.sh [runs/qkvae-1m]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/qkvae-1m}
.venv/bin/python -m scripts.publish "$run"
.venv/bin/python -m analysis.reference --data ../shared/data/train --calibration ../shared/data/val \
    --out assets/ood_reference.npz
.venv/bin/python -m analysis.evaluate --data ../shared/data/stl10-samples --out runs/evaluate-stl10 \
    --precision-images 80 --ood builtin
