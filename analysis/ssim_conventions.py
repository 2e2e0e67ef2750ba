"""The same reconstructions' SSIM under the conventions published figures use, to compare with them.

    python -m analysis.ssim_conventions [--data PATH] [--weights W] [--json FILE]

Our SSIM (``qkvae.metrics.ssim``) is fixed. A published SSIM rarely says how it was
computed, and on 96x96 images the common conventions differ by more than the gaps papers
argue about. The sharpest trap: scikit-image before 0.20 guessed ``data_range`` from the
dtype, and for floats that range is [-1, 1], so images in [0, 1] were scored with
``data_range=2``, which quadruples SSIM's stabilising constants and raises every score
(scikit-image PRs #6595, #6612). For scale, the report adds Gaussian blurs of the originals:
what a plain loss of detail scores at each PSNR.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from qkvae.cli import common_options, run_cli
from qkvae.sources import open_source
from qkvae.atomic import atomic_write
from qkvae.metrics import SSIM_SIGMA, psnr, ssim
from qkvae.pipeline import reconstruct_set
from qkvae.weights import load_qkvae

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601
BLUR_SIGMAS = (0.5, 0.6)
WANG_SSIM = {"gaussian_weights": True, "sigma": SSIM_SIGMA, "use_sample_covariance": False}  # ours, in skimage's words


def _unit(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) / 255.0


def _luma(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) @ LUMA


CONVENTIONS = {
    "ours: uint8, data_range 255, Gaussian sigma 1.5, mean of R, G, B": ssim,
    "uint8, data_range 255, 7x7 uniform window (scikit-image default), R, G, B":
        lambda a, b: structural_similarity(a, b, data_range=255, channel_axis=-1),
    "luma (BT.601), data_range 255, Gaussian sigma 1.5":
        lambda a, b: structural_similarity(_luma(a), _luma(b), data_range=255, **WANG_SSIM),
    "floats in [0, 1], data_range 2 (scikit-image < 0.20 default), 7x7 uniform, R, G, B":
        lambda a, b: structural_similarity(_unit(a), _unit(b), data_range=2, channel_axis=-1),
    "floats in [0, 1], data_range 2, Gaussian sigma 1.5, R, G, B":
        lambda a, b: structural_similarity(_unit(a), _unit(b), data_range=2, channel_axis=-1, **WANG_SSIM),
}


def by_convention(originals: np.ndarray, outputs: np.ndarray) -> dict:
    """Mean PSNR and mean SSIM under each convention of uint8 (N, H, W, 3) image pairs."""
    return {
        "psnr": float(np.mean([psnr(a, b) for a, b in zip(originals, outputs, strict=True)])),
        "ssim": {name: float(np.mean([f(a, b) for a, b in zip(originals, outputs, strict=True)]))
                 for name, f in CONVENTIONS.items()},
    }


def blurred(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 (N, H, W, 3) images blurred with a Gaussian of ``sigma`` pixels, each channel alone."""
    out = gaussian_filter(rgb.astype(np.float64), (0, sigma, sigma, 0))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def report(originals: np.ndarray, reconstructions: np.ndarray, sigmas=BLUR_SIGMAS) -> dict:
    """The reconstructions and each blur of the originals, by convention."""
    return {"reconstruction": by_convention(originals, reconstructions),
            **{f"gaussian blur sigma {s}": by_convention(originals, blurred(originals, s)) for s in sigmas}}


def format_report(result: dict) -> str:
    rows = list(result)
    lines = ["SSIM convention | " + " | ".join(rows),
             "PSNR (dB) | " + " | ".join(f"{result[r]['psnr']:.2f}" for r in rows)]
    for name in CONVENTIONS:
        lines.append(f"{name} | " + " | ".join(f"{result[r]['ssim'][name]:.4f}" for r in rows))
    return "\n".join(lines)


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.ssim_conventions", description=__doc__.split("\n")[0],
                                parents=[common_options()])
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: compare(args))


def compare(args) -> None:
    model = load_qkvae(args.weights, device=args.device)
    images = reconstruct_set(model, open_source(args.data, args.split), args.batch_size)
    result = report(images.originals, images.reconstructions)
    print(f"{len(images.names)} images from {args.data}\n{format_report(result)}")
    if args.json:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
