"""How the PSNR residual (``analysis.complexity``) and the OOD score each follow PSNR: Spearman
correlations, overall and per kind, on the built-in OOD benchmark and on image folders.

    python -m scripts.residual_vs_ood [FOLDER ...]

Kinds in a folder come from file names ``<kind>_<n>`` or ``<kind>__<name>``. Prints aggregate
numbers only (a markdown table), never per-image values, so private sets stay private.
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from analysis.complexity import expectation
from analysis.ood_images import ood_images
from analysis.reference import load_reference
from qkvae.cli import run_cli
from qkvae.pipeline import FittedImages, load_fitted, reconstruct_set
from qkvae.weights import load_qkvae, weights_fingerprint


MIN_KIND = 8  # kinds with fewer images count only in "all"


def kind(name: str) -> str:
    stem = Path(name).stem
    return stem.split("__")[0] if "__" in stem else re.sub(r"_\d+$", "", stem)


def rows(model, reference, label: str, fitted: FittedImages, kinds: list[str]) -> list[str]:
    rec = reconstruct_set(model, fitted)
    residual = np.array([expectation(a, p).psnr_residual for a, p in zip(rec.originals, rec.psnr, strict=True)])
    score = np.array([reference.score(a, ids).score for a, ids in zip(rec.originals, rec.indices, strict=True)])
    out = []
    for k in ["all", *(k for k in dict.fromkeys(kinds) if kinds.count(k) >= MIN_KIND)]:
        keep = np.ones(len(kinds), bool) if k == "all" else np.array([c == k for c in kinds])
        p = rec.psnr[keep]
        rho = lambda v: spearmanr(v[keep], p).statistic  # noqa: E731
        out.append(f"| {label} | {k} | {keep.sum()} | {np.median(p):.2f} | {np.median(residual[keep]):+.2f} | "
                   f"{rho(residual):+.2f} | {rho(score):+.2f} |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.residual_vs_ood", description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="*", help="folders of images named <kind>_<n> or <kind>__<name>")
    folders = p.parse_args(argv).folders
    return run_cli(lambda: print(table(folders)))


def table(folders: list[str]) -> str:
    """The markdown table: the built-in benchmark's kinds, then each folder's."""
    model = load_qkvae(device="cpu")
    reference = load_reference(None, weights_fingerprint(model)[1])
    builtin = ood_images(model.config.image_size)
    lines = ["| set | kind | images | median PSNR (dB) | median residual (dB) | Spearman residual/PSNR "
             "| Spearman OOD score/PSNR |", "|---|---|---|---|---|---|---|"]
    unlabelled = FittedImages(builtin.names, builtin.images, [None] * len(builtin.names), [])
    lines += rows(model, reference, "built-in", unlabelled, builtin.categories)
    for folder in folders:
        fitted = load_fitted(folder)
        lines += rows(model, reference, Path(folder).name, fitted, [kind(n) for n in fitted.names])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
