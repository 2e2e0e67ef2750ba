"""Expected PSNR for an image's complexity, and the residual: how much worse (or better) the
tokenizer does on an image than on a photo as detailed.

    python -m analysis.complexity --data ../shared/data/val [--out assets/expected_psnr.json]

Two measures of detail, both of the 96x96 model input: ``png_bpp``, the bits per pixel of its
lossless PNG code (Pillow, compression level 6), and ``gradient_energy``, the mean squared
difference between neighbouring pixels of its luma (8-bit units squared). A straight line in
the logarithm of one or both gives the expected PSNR, the logarithms clipped to the range of the
fit's photos. The CLI reconstructs the photos of
``--data``, splits them by a hash of the name (70 % to fit, 30 % held out), fits every candidate
by least squares on the fit part, keeps the one with the lowest held-out mean absolute error and
writes its coefficients, with how it was made and how well each candidate did, to ``--out``.
``assets/expected_psnr.json`` ships such a fit; ``expectation`` reads it.
"""

import argparse
import io
import json
import sys
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

from qkvae.cli import common_options, run_cli
from qkvae.pipeline import reconstruct_set
from qkvae.sources import open_source
from qkvae.weights import ASSETS, load_qkvae, weights_fingerprint

FIT_PATH = ASSETS / "expected_psnr.json"
CANDIDATES = {"png": ("png_bpp",), "gradient": ("gradient_energy",), "png+gradient": ("png_bpp", "gradient_energy")}
HELD_OUT = 3  # names whose hash modulo 10 is below this are held out
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Detail:
    png_bpp: float  # bits per pixel of the lossless PNG code
    gradient_energy: float  # mean squared neighbour difference of the luma, 8-bit units squared


@dataclass(frozen=True)
class ExpectedFit:
    """PSNR = intercept + sum(slope_k * log10(feature_k + 1)), fit on photos. Each log feature is
    clipped to the range the fit's photos span: an image flatter or busier than any of them is
    expected to do as the flattest or busiest photo did, not what the line extrapolates to."""

    features: tuple[str, ...]
    intercept: float
    slopes: tuple[float, ...]
    ranges: tuple[tuple[float, float], ...]  # (min, max) of each log feature over the fit photos

    def predict(self, detail: Detail) -> float:
        logs = [np.clip(np.log10(getattr(detail, f) + 1), *r) for f, r in zip(self.features, self.ranges, strict=True)]
        return float(self.intercept + np.dot(self.slopes, logs))


@dataclass(frozen=True)
class Expectation:
    expected_psnr: float  # dB, for a photo this detailed
    psnr_residual: float  # actual - expected, dB: negative when the image does worse than such a photo


def detail(rgb: np.ndarray) -> Detail:
    """The two detail measures of a uint8 (H, W, 3) image."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", compress_level=6)
    luma = np.asarray(rgb, dtype=np.float64) @ LUMA
    energy = (np.diff(luma, axis=0) ** 2).mean() + (np.diff(luma, axis=1) ** 2).mean()
    return Detail(8 * buffer.tell() / (rgb.shape[0] * rgb.shape[1]), float(energy))


@lru_cache(maxsize=4)
def load_fit(path: Path = FIT_PATH) -> ExpectedFit:
    d = json.loads(Path(path).read_text())["fit"]
    return ExpectedFit(tuple(d["features"]), d["intercept"], tuple(d["slopes"]), tuple(map(tuple, d["ranges"])))


def expectation(rgb: np.ndarray, psnr: float, fit: ExpectedFit | None = None) -> Expectation:
    """Expected PSNR of a uint8 (H, W, 3) model input for its detail, and ``psnr`` minus it."""
    expected = (fit or load_fit()).predict(detail(rgb))
    return Expectation(float(expected), float(psnr - expected))


def expectation_fields(rgb: np.ndarray, psnr: float) -> dict:
    """``expected_psnr`` and ``psnr_residual`` for an image's entry in ``results.json``."""
    return asdict(expectation(rgb, psnr))


def _design(details: list[Detail], features) -> np.ndarray:
    return np.column_stack([np.ones(len(details))] + [[np.log10(getattr(d, f) + 1) for d in details] for f in features])


def fit_candidate(details: list[Detail], psnrs, features) -> ExpectedFit:
    design = _design(details, features)
    coef, *_ = np.linalg.lstsq(design, np.asarray(psnrs, dtype=np.float64), rcond=None)
    ranges = tuple((float(c.min()), float(c.max())) for c in design[:, 1:].T)
    return ExpectedFit(tuple(features), float(coef[0]), tuple(float(c) for c in coef[1:]), ranges)


def quality(fit: ExpectedFit, details: list[Detail], psnrs) -> dict:
    """Mean absolute error, R^2 and Spearman correlation of a fit's predictions."""
    predicted = np.array([fit.predict(d) for d in details])
    actual = np.asarray(psnrs, dtype=np.float64)
    residual = actual - predicted
    return {"mae_db": float(np.abs(residual).mean()), "r2": float(1 - residual.var() / actual.var()),
            "spearman": float(spearmanr(predicted, actual).statistic), "images": len(actual)}


def held_out(name: str) -> bool:
    return zlib.crc32(Path(name).name.encode()) % 10 < HELD_OUT


def fit_expected(names, originals, psnrs) -> dict:
    """Fit every candidate on the non-held-out images; the best by held-out MAE, and all scores."""
    details = [detail(a) for a in originals]
    test = np.array([held_out(n) for n in names])
    pick = lambda seq, mask: [v for v, m in zip(seq, mask, strict=True) if m]  # noqa: E731
    scores, fits = {}, {}
    for key, features in CANDIDATES.items():
        fits[key] = fit_candidate(pick(details, ~test), pick(psnrs, ~test), features)
        scores[key] = {"fit": quality(fits[key], pick(details, ~test), pick(psnrs, ~test)),
                       "held_out": quality(fits[key], pick(details, test), pick(psnrs, test))}
    best = min(scores, key=lambda k: scores[k]["held_out"]["mae_db"])
    return {"fit": asdict(fits[best]), "chosen": best, "candidates": scores}


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.complexity", description=__doc__.split("\n")[0],
                                parents=[common_options(split=False, batch_size=None,
                                                        data_help="photos to fit on (an image source)")])
    p.add_argument("--out", default=str(FIT_PATH), help="where to write the fit")
    return p.parse_args(argv)


def run_fit(args: argparse.Namespace) -> None:
    model = load_qkvae(args.weights, device=args.device)
    images = reconstruct_set(model, open_source(args.data))
    result = fit_expected(images.names, images.originals, images.psnr)
    weights, sha256 = weights_fingerprint(model)
    made = {"data": Path(args.data).name, "images": len(images.names), "weights": weights, "weights_sha256": sha256,
            "preprocessing": "fit to 96x96 with mode resize", "split": f"crc32(file name) % 10 < {HELD_OUT} held out",
            "command": "python -m analysis.complexity --data " + args.data}
    Path(args.out).write_text(json.dumps({**result, "made": made}, indent=1) + "\n")
    h = result["candidates"][result["chosen"]]["held_out"]
    print(f"{result['chosen']}: held-out MAE {h['mae_db']:.2f} dB, R^2 {h['r2']:.3f} on {h['images']} images -> {args.out}")


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: run_fit(args))


if __name__ == "__main__":
    sys.exit(main())
