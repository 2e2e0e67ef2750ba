"""Per kind of image: how well the shipped OOD score tells it from in-distribution photos, and how
often it labels it; the model card's per-kind table.

    python -m scripts.ood_kinds --in-distribution ../shared/data/stl10-samples
        [--photos ../shared/data/val] [FOLDER ...]

Kinds: the built-in benchmark's categories; in each FOLDER, the file names' ``<kind>_<n>`` or
``<kind>__<name>``; from ``--photos`` (those not calibrated on: names not starting with the
reference's calibration prefix), the photos themselves and photo-like kinds made from them: the
stress suite's zooms (the centre enlarged, the card's "very large structures"), 0.5x tiles
("very small structures") and low light (a tenth of the exposure with photon noise, brightened).
Prints aggregate numbers only (a markdown table), so private sets stay private.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from analysis.ood import OUT_OF_DISTRIBUTION, UNUSUAL, auroc
from analysis.ood_images import ood_images
from analysis.reference import CALIBRATION_PREFIX, load_reference
from analysis.stress import rescale, rng
from qkvae.cli import run_cli
from qkvae.pipeline import encode_images, load_fitted
from qkvae.weights import load_qkvae, weights_fingerprint
from scripts.residual_vs_ood import MIN_KIND, kind

ZOOMS = (1.5, 2.0, 3.0)
EXPOSURE, WHITE_PHOTONS, GAIN = 0.1, 1000, 3.5  # low light: a tenth of the light, amplified 3.5x (still dark)


def low_light(rgb: np.ndarray, name: str) -> np.ndarray:
    """A photo taken with ``EXPOSURE`` of the light (photon noise, ``WHITE_PHOTONS`` for white at full
    exposure), amplified by ``GAIN``."""
    photons = rng(name, "low light").poisson(rgb / 255 * EXPOSURE * WHITE_PHOTONS)
    return np.clip(255 * GAIN * photons / WHITE_PHOTONS, 0, 255).astype(np.uint8)


def made_kinds(names: list[str], photos: np.ndarray) -> dict[str, np.ndarray]:
    """The photos and the photo-like kinds made from them, uint8 (n, S, S, 3) each."""
    out = {"photos": photos}
    out.update({f"{z:g}x zoom": np.stack([rescale(a, z) for a in photos]) for z in ZOOMS})
    out["0.5x tiled"] = np.stack([rescale(a, 0.5) for a in photos])
    out["low light"] = np.stack([low_light(a, n) for a, n in zip(photos, names, strict=True)])
    return out


def scores(model, reference, rgb: np.ndarray) -> tuple[np.ndarray, list[str]]:
    ids = encode_images(model, rgb, desc="scoring")
    results = [reference.score(a, i) for a, i in zip(rgb, ids, strict=True)]
    return np.array([r.score for r in results]), [r.verdict.label for r in results]


def row(label: str, k: str, inside: np.ndarray, score: np.ndarray, labels: list[str]) -> str:
    flagged = np.mean([lab in (UNUSUAL, OUT_OF_DISTRIBUTION) for lab in labels])
    outside = np.mean([lab == OUT_OF_DISTRIBUTION for lab in labels])
    return (f"| {label} | {k} | {len(score)} | {auroc(inside, score):.3f} | {100 * flagged:.0f} % | {100 * outside:.0f} % "
            f"| {100 * np.mean(score > np.percentile(inside, 99)):.0f} % |")


def kind_rows(model, reference, label: str, inside: np.ndarray, rgb: np.ndarray, kinds: list[str]) -> list[str]:
    score, labels = scores(model, reference, rgb)
    out = []
    for k in ["all", *(k for k in dict.fromkeys(kinds) if kinds.count(k) >= MIN_KIND)]:
        keep = np.ones(len(kinds), bool) if k == "all" else np.array([c == k for c in kinds])
        out.append(row(label, k, inside, score[keep], [lab for lab, m in zip(labels, keep, strict=True) if m]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.ood_kinds", description=__doc__.split("\n")[0])
    p.add_argument("--in-distribution", required=True, help="in-distribution images, e.g. the STL-10 samples")
    p.add_argument("--photos", help="photos to make photo-like kinds from (calibration photos are left out)")
    p.add_argument("folders", nargs="*", help="folders of images named <kind>_<n>")
    args = p.parse_args(argv)
    return run_cli(lambda: print(table(args.in_distribution, args.photos, args.folders)))


def table(in_distribution: str, photos: str | None, folders: list[str]) -> str:
    """The markdown table: the built-in benchmark's kinds, each folder's, then those made from ``photos``."""
    model = load_qkvae(device="cpu")
    reference = load_reference(None, weights_fingerprint(model)[1])
    inside, _ = scores(model, reference, load_fitted(in_distribution).images)
    lines = ["| set | kind | images | AUROC | unusual or more | out of distribution | above the 99th pct |",
             "|---|---|---|---|---|---|---|"]
    builtin = ood_images(model.config.image_size)
    lines += kind_rows(model, reference, "built-in", inside, builtin.images, builtin.categories)
    for folder in folders:
        fitted = load_fitted(folder)
        lines += kind_rows(model, reference, Path(folder).name, inside, fitted.images, [kind(n) for n in fitted.names])
    if photos:
        fitted = load_fitted(photos)
        keep = [i for i, n in enumerate(fitted.names) if not Path(n).name.startswith(CALIBRATION_PREFIX)]
        for k, rgb in made_kinds([fitted.names[i] for i in keep], fitted.images[keep]).items():
            lines.append(row(f"made from {Path(photos).name}", k, inside, *scores(model, reference, rgb)))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
