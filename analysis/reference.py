"""The reference code distribution, and the out-of-distribution signals computed from it.

    python -m analysis.reference --data ../shared/data/train --out assets/reference_counts.npz \
        [--weights W] [--calibration ../shared/data/stl10-samples]

The CLI encodes every training image (fit to 96x96 with mode "resize", as at inference) and
writes how often each of the 15,360 codes occurs, with its provenance (number of images, the
weights file's name and SHA-256). It also scores the calibration images (in-distribution
samples, by default the 80 STL-10 samples) and stores the OOD verdict thresholds derived from
their scores (``OOD_SCORE``: the KL). Rerun it whenever the weights change.

From the counts: smoothed token probabilities, a 48x48 surprisal map (-log2 p of each token,
in bits) and an image-level OOD score: the mean surprisal (the cross-entropy of the image's
tokens under the reference) and the KL divergence of the image's code histogram from the
reference, both in bits per token.
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from analysis.codebook import as_indices, code_counts
from qkvae import INPUT_ERRORS
from qkvae.pipeline import BATCH_SIZE, encode_images, load_fitted
from qkvae.weights import ASSETS, load_qkvae, weights_fingerprint

REFERENCE_PATH = ASSETS / "reference_counts.npz"
REGENERATE = "python -m analysis.reference --data ../shared/data/train --out assets/reference_counts.npz"

# Additive (Lidstone) smoothing with half a count per code, the Krichevsky-Trofimov choice:
# a code never seen in ~13.8 M reference tokens costs log2(2 * 13.8e6 + 15360) ~ 24.7 bits,
# finite, and about 11 bits more than a typical code; seen codes barely move.
DEFAULT_ALPHA = 0.5
# The verdict uses the KL: it separates the STL-10 samples from the built-in OOD set far
# better than the mean surprisal (AUROC 0.83 against 0.40 with the shipped step-6000 weights,
# 0.81 against 0.66 with a random-init model), because flat, smooth images (microscopy, the moon,
# scanned text) reuse a few common codes: a low mean surprisal, but a histogram unlike a photo's.
OOD_SCORE = "kl"
UNUSUAL_PERCENTILE = 95  # above this percentile of the calibration scores an image is "unusual"
# Fallback thresholds (KL, bits/token) for callers without a reference file's own: the 95th
# percentile and the maximum over the 80 STL-10 samples, measured with the shipped weights
# (step 6000). ``load_reference()["ood_thresholds"]`` holds the values for the shipped weights.
DEFAULT_OOD_THRESHOLDS = (4.21, 5.30)


class ReferenceFileError(ValueError):
    """A reference counts file that is missing or unreadable."""


def token_probabilities(counts, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """Smoothed code probabilities, float64 (K,): ``(counts + alpha) / (total + alpha * K)``.

    ``alpha = 0`` gives the raw frequencies (never-seen codes then have probability 0).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + alpha) / (counts.sum() + alpha * counts.size)


def surprisal_map(indices, probs) -> np.ndarray:
    """-log2 p of each token of one image, in bits, as a square grid: (48, 48) float64."""
    ids = as_indices(indices).ravel()
    side = math.isqrt(ids.size)
    if side * side != ids.size:
        raise ValueError(f"{ids.size} ids do not form a square grid")
    with np.errstate(divide="ignore"):
        return -np.log2(np.asarray(probs, dtype=np.float64)[ids]).reshape(side, side)


def ood_score(indices, probs) -> dict:
    """The image's ``mean_surprisal`` and the ``kl`` of its code histogram from ``probs``, bits/token.

    KL(P || Q) = sum_k P(k) log2 (P(k) / Q(k)), P the image's code frequencies and Q = probs:
    0 when the image's histogram equals the reference, and equal to the mean surprisal minus
    the entropy of the image's own histogram.
    """
    ids = as_indices(indices).ravel()
    probs = np.asarray(probs, dtype=np.float64)
    p = code_counts(ids, probs.size) / ids.size
    seen = p > 0
    with np.errstate(divide="ignore"):
        kl = float((p[seen] * (np.log2(p[seen]) - np.log2(probs[seen]))).sum())
        mean_surprisal = float(-np.log2(probs[ids]).mean())
    return {"mean_surprisal": mean_surprisal, "kl": max(kl, 0.0)}


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve for telling ``scores_out`` (higher) from ``scores_in``.

    The probability that a random out-of-distribution score exceeds a random in-distribution
    one, ties counting half (the Mann-Whitney U statistic): 1 = perfectly separated, 0.5 = chance.
    """
    scores_in, scores_out = np.ravel(scores_in), np.ravel(scores_out)
    if not scores_in.size or not scores_out.size:
        raise ValueError("auroc needs at least one score on each side")
    ranks = rankdata(np.concatenate([scores_in, scores_out]))
    n_out = scores_out.size
    u = ranks[scores_in.size:].sum() - n_out * (n_out + 1) / 2
    return float(u / (scores_in.size * n_out))


def calibrate(scores) -> tuple[float, float]:
    """Verdict thresholds from in-distribution scores: (95th percentile, maximum)."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.percentile(scores, UNUSUAL_PERCENTILE)), float(scores.max())


def ood_verdict(score: float, thresholds=DEFAULT_OOD_THRESHOLDS) -> str:
    """A plain-words reading of an ``OOD_SCORE`` value against the calibration thresholds."""
    unusual, outside = thresholds
    if score <= unusual:
        return "in distribution: its mix of tokens is like that of typical photos"
    if score <= outside:
        return "unusual: its mix of tokens is further from the photos' than that of 95% of the calibration photos"
    return "out of distribution: its mix of tokens is further from the photos' than that of every calibration photo"


def build_reference(model, data, calibration, batch_size: int = BATCH_SIZE) -> dict:
    """Count the codes of every image in ``data`` and calibrate the verdict on ``calibration``."""
    weights_name, weights_sha256 = weights_fingerprint(model)  # before the long run: the file may be replaced
    rgb = load_fitted(data, model.config.image_size).images
    counts = code_counts(encode_images(model, rgb, batch_size), model.config.codebook_size)
    probs = token_probabilities(counts)
    calibration_rgb = load_fitted(calibration, model.config.image_size).images
    calibration_ids = encode_images(model, calibration_rgb, batch_size, desc="calibrating")
    scores = np.array([ood_score(ids, probs)[OOD_SCORE] for ids in calibration_ids])
    return {
        "counts": counts,
        "num_images": len(rgb),
        "levels": np.asarray(model.config.levels),
        "data_name": Path(data).name,
        "weights_name": weights_name,
        "weights_sha256": weights_sha256,
        "alpha": DEFAULT_ALPHA,
        "ood_score": OOD_SCORE,
        "ood_thresholds": np.asarray(calibrate(scores)),
        "calibration_name": Path(calibration).name,
        "calibration_scores": scores,
    }


def save_reference(reference: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **reference)
    return path


def load_reference(path=None) -> dict:
    """The reference counts and their metadata (see ``build_reference``), from ``path`` or ``assets/``."""
    path = Path(path) if path is not None else REFERENCE_PATH
    if not path.is_file():
        raise ReferenceFileError(f"no reference counts at {path}; create them with `{REGENERATE}`")
    try:
        with np.load(path, allow_pickle=False) as f:
            reference = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ReferenceFileError(f"{path} is not a reference counts file ({e})") from None
    if "counts" not in reference:
        raise ReferenceFileError(f"{path} holds no 'counts' array")
    return {k: v.item() if v.ndim == 0 else v for k, v in reference.items()}


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.reference", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data/train", help="training image folder or STL-10 .bin")
    p.add_argument("--out", default=str(REFERENCE_PATH), help="output .npz (default: the shipped file)")
    p.add_argument("--weights", default=None, help="weights file or folder (default: the shipped weights)")
    p.add_argument("--calibration", default="../shared/data/stl10-samples",
                   help="in-distribution images that set the OOD verdict thresholds")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = setup_args(argv)
    try:
        model = load_qkvae(args.weights, device=args.device)
        reference = build_reference(model, args.data, args.calibration, args.batch_size)
        out = save_reference(reference, args.out)
    except (*INPUT_ERRORS, ReferenceFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unusual, outside = reference["ood_thresholds"]
    used = int((reference["counts"] > 0).sum())
    print(f"{reference['num_images']} images, {used}/{len(reference['counts'])} codes used, "
          f"thresholds {unusual:.2f}/{outside:.2f} bits -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
