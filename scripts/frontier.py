"""Measure the size frontier and write it into the model card (a maintainer's tool).

    nice -n 5 python -m scripts.frontier [--variants assets/variants] [--card assets/MODEL_CARD.md]
        [--figure assets/frontier.png] [--repeats 5]

Loads QKVAE-1m (``assets/``) and every shipped variant (``assets/variants/NAME/``), scores them
on the same fitted images of each source (PSNR/SSIM, ``analysis.frontier.measure_quality``),
times their fp32 encode at batch 64 in interleaved rounds (medians, ``bench.inference``), and
writes ``frontier.png`` (PSNR and SSIM against parameters and against encode GFLOP per image),
``frontier.json`` (the points), the table into the card's marked section, and each variant's
``variant.json`` and card with its new numbers (``scripts.variant_card``).
"""

import argparse
import json
import sys
from pathlib import Path

from analysis.compare import SHIPPED_NAME
from analysis.frontier import Point, frontier_figure, frontier_table, measure_quality, point, replace_section
from bench.inference import encode_images_per_s
from qkvae.atomic import atomic_path, atomic_write
from qkvae.cli import common_options, positive, run_cli
from qkvae.model import QKVAE
from qkvae.weights import ASSETS, load_qkvae
from scripts.variant_card import read_training, write_variant

VARIANTS = ASSETS / "variants"
SOURCES = {"stl10-samples": "../shared/data/stl10-samples", "val": "../shared/data/val"}


def measure(models: dict[str, QKVAE], sources: dict[str, str], repeats: int) -> list[Point]:
    """Every model's frontier point: quality on ``sources`` and encode images/s, timed together."""
    quality = measure_quality(models, sources)
    rates = encode_images_per_s(models, repeats)
    return [point(name, model, quality[name], rates[name]) for name, model in models.items()]


def shipped_checkpoints(variants: Path) -> dict[str, Path]:
    """QKVAE-1m and every variant folder holding weights, by name."""
    found = sorted(p.parent for p in variants.glob("*/model.safetensors"))
    return {SHIPPED_NAME: ASSETS} | {p.name: p for p in found}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.frontier", description=__doc__.split("\n")[0],
                                parents=[common_options(data=False, split=False, batch_size=None, weights=False)])
    p.add_argument("--variants", type=Path, default=VARIANTS)
    p.add_argument("--card", type=Path, default=ASSETS / "MODEL_CARD.md")
    p.add_argument("--figure", type=Path, default=ASSETS / "frontier.png")
    p.add_argument("--repeats", type=positive, default=5, help="timed encode rounds, after one warm-up round")
    p.set_defaults(device="cpu")
    args = p.parse_args(argv)
    return run_cli(lambda: redraw(args))


def redraw(args: argparse.Namespace) -> None:
    checkpoints = shipped_checkpoints(args.variants)
    models = {name: load_qkvae(path, args.device) for name, path in checkpoints.items()}
    points = measure(models, SOURCES, args.repeats)
    for q in points:
        if q.name != SHIPPED_NAME:
            write_variant(checkpoints[q.name], q, read_training(checkpoints[q.name]))
    with atomic_path(args.figure) as staging:
        frontier_figure(points, list(SOURCES)).savefig(staging, format="png", dpi=100)
    atomic_write(args.figure.with_suffix(".json"), json.dumps([q.to_json() for q in points], indent=1) + "\n")
    atomic_write(args.card, replace_section(args.card.read_text(), frontier_table(points, list(SOURCES))))
    for q in points:
        s = q.on("stl10-samples")
        print(f"{q.name}: {q.parameters:,} parameters, {q.encode_gflop:.3f} GFLOP, {s.psnr:.2f} dB / {s.ssim:.4f}, "
              f"{q.encode_images_per_s:,.0f} images/s")
    print(f"-> {args.figure}, {args.card}")


if __name__ == "__main__":
    sys.exit(main())
