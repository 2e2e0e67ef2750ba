"""Ship a training run as a variant of the frontier (a maintainer's tool).

    nice -n 5 python -m scripts.ship_variant runs/qkvae-0.1m [--name qkvae-0.1m] [--out assets/variants]

Copies the run's ``config.json`` and ``model.safetensors`` (which ``qkvae.train`` writes when a
run finishes) into ``OUT/NAME/``; a run that has not finished its recipe is refused. It measures the variant as ``scripts.frontier`` does (parameters,
encode GFLOP per image, PSNR/SSIM on the STL-10 samples and val, encode images/s) and writes
``variant.json`` and a short card, ``README.md``: the recipe (from the run's checkpoint), the
steps, and the training wall time, the sum of the train log's step times. Every file must stay
under 5 MB. Afterwards run ``python -m scripts.frontier`` to redraw the frontier.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from qkvae.atomic import atomic_write
from qkvae.cli import run_cli
from qkvae.train import CHECKPOINT_NAME, LOG_NAME
from qkvae.weights import CONFIG_NAME, WEIGHTS_NAME, load_qkvae
from scripts.frontier import SOURCES, VARIANTS, measure
from scripts.variant_card import Training, write_variant

MAX_FILE_BYTES = 5 * 1024 * 1024


class ShipError(ValueError):
    """A run that cannot be shipped: unfinished, or too large."""


def training_from_log(records: list[dict], recipe: dict, step: int) -> Training:
    """Summed step time and precisions of the first ``step`` steps from ``train_log.jsonl``'s
    records. Each record holds the mean step time of the steps since the previous record; steps
    lost to a kill before a resume are counted at the resumed record's mean, and the steps after
    the last record before ``step`` are not counted."""
    records = sorted((r for r in records if r["step"] < step), key=lambda r: r["step"])
    seconds, precisions, previous = 0.0, {}, -1
    for r in records:
        steps = r["step"] - previous
        seconds += steps * r["mean_step_s"]
        precisions[r["precision"]] = precisions.get(r["precision"], 0) + steps
        previous = r["step"]
    return Training(recipe, step, seconds, precisions)


def ship(run: Path, name: str, out: Path, repeats: int, sources: dict[str, str] = SOURCES) -> str:
    missing = [f for f in (CHECKPOINT_NAME, LOG_NAME) if not (run / f).is_file()]
    if missing:
        raise ShipError(f"{run} is not a training run: no {', '.join(missing)}")
    ckpt = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    recipe, step = ckpt["recipe"], ckpt["step"]
    finished = step >= recipe["steps"] and (run / WEIGHTS_NAME).is_file()
    if not finished:
        raise ShipError(f"{run} is not finished (checkpoint at step {step:,} of {recipe['steps']:,}); "
                        "a variant is shipped from a finished run of the card's recipe")
    training = training_from_log([json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()], recipe, step)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for f in (CONFIG_NAME, WEIGHTS_NAME):
        atomic_write(folder / f, (run / f).read_bytes())
    p = measure({name: load_qkvae(folder, "cpu")}, sources, repeats)[0]
    write_variant(folder, p, training)
    too_big = [f"{f.name} ({f.stat().st_size:,} bytes)" for f in folder.iterdir() if f.stat().st_size >= MAX_FILE_BYTES]
    if too_big:
        raise ShipError(f"{folder}: over 5 MB: {', '.join(too_big)}")
    return f"shipped {run} as {folder}: {p.parameters:,} parameters, " + ", ".join(
        f"{q.source} {q.psnr:.2f} dB / {q.ssim:.4f}" for q in p.quality)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.ship_variant", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a training run's folder (runs/NAME)")
    p.add_argument("--name", default=None, help="the variant's name (default: the run folder's name)")
    p.add_argument("--out", type=Path, default=VARIANTS)
    p.add_argument("--repeats", type=int, default=5, help="timed encode rounds, after one warm-up round")
    args = p.parse_args(argv)
    return run_cli(lambda: print(ship(args.run, args.name or args.run.resolve().name, args.out, args.repeats)),
                   ShipError)


if __name__ == "__main__":
    sys.exit(main())
