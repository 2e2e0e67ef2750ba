#!/usr/bin/env bash
# Continue the QKVAE-1m training run kept in train_state/ (card recipe; bf16 where the hardware has it), in the
# background so that it outlives the shell. Extra arguments go to `python -m qkvae.train`,
# e.g. `--device cuda` to finish the same run on a GPU.
# Afterwards: commit train_state/qkvae-1m/ and run `python -m qkvae.publish train_state/qkvae-1m`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
setsid nohup nice -n 5 .venv/bin/python -m qkvae.train --out train_state/qkvae-1m --resume "$@" \
    > train_state/stdout.log 2> train_state/progress.log &
echo "training in the background (pid $!); follow it with: tail -f train_state/progress.log"
