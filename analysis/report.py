"""Everything the analysis says about one image: the per-upload computation behind the app.

``image_summary`` holds the JSON-ready figures (PSNR, SSIM, rate, OOD score) computed from
an image, its reconstruction and its ids; ``python -m analysis.evaluate`` uses it for every
image of a set. ``analyze_image`` runs the model on one image and adds the maps and
per-image codebook statistics the app draws. It stays lean for the app's budget (250 ms per
upload on 2 CPU cores, ~100 ms of it encode + decode): two SSIMs, 7 JPEG encodes, one
re-encode for token stability; bf16 agreement only on request (seconds on a CPU).
"""

import numpy as np
import torch

from analysis.codebook import CodebookStats
from analysis.metrics import pixel_error, psnr, ssim, token_error
from analysis.rate import bits_per_pixel, empirical_entropy_bits, jpeg_at_bytes, nominal_bits
from analysis.reference import DEFAULT_OOD_THRESHOLDS, OOD_SCORE, ood_score, ood_verdict, surprisal_map
from analysis.stability import precision_agreement, reencode_stability
from qkvae.image import to_uint8
from qkvae.model import QKVAEConfig
from qkvae.pipeline import reconstruct


def image_summary(original: np.ndarray, reconstruction: np.ndarray, indices, probs=None,
                  thresholds=DEFAULT_OOD_THRESHOLDS, config: QKVAEConfig = QKVAEConfig()) -> tuple[dict, np.ndarray]:
    """JSON-ready figures for one uint8 (H, W, 3) image and its reconstruction, and the JPEG image.

    Returns (summary, jpeg_rgb). The summary holds ``psnr``, ``ssim``, ``rate`` (nominal and
    entropy bits, JPEG at the nominal size) and, given the reference ``probs``, ``ood_score``
    (``mean_surprisal``, ``kl``, and a ``verdict`` on the ``verdict_score`` against
    ``thresholds``) and the reference-coded bits.
    """
    nominal = nominal_bits(config)
    jpeg = jpeg_at_bytes(original, nominal / 8)
    rate = {
        "nominal_bits": nominal,
        "bits_per_pixel": bits_per_pixel(nominal, original),
        "own_entropy_bits": empirical_entropy_bits(indices),
        "jpeg_equal_bytes": {k: v for k, v in jpeg.items() if k != "rgb"},
    }
    summary = {"psnr": psnr(original, reconstruction), "ssim": ssim(original, reconstruction), "rate": rate}
    if probs is not None:
        rate["reference_bits"] = empirical_entropy_bits(indices, probs)
        score = ood_score(indices, probs)
        verdict = ood_verdict(score[OOD_SCORE], thresholds)
        summary["ood_score"] = {**score, "verdict_score": OOD_SCORE, "verdict": verdict}
    return summary, jpeg["rgb"]


def analyze_image(model, x: torch.Tensor, probs, thresholds=DEFAULT_OOD_THRESHOLDS,
                  stability: bool = True, precision: bool = False) -> dict:
    """Analyse one image (3, 96, 96) in [-1, 1].

    Returns the ``image_summary`` keys plus: ``indices`` (48, 48) int64, ``x_hat`` (3, 96, 96)
    tensor, uint8 ``original``/``reconstruction``/``jpeg_rgb`` (96, 96, 3), ``pixel_error``
    (96, 96) and ``token_error`` (48, 48) in 8-bit units, ``codebook``
    (``CodebookStats.result()`` for this image), ``surprisal`` (48, 48) bits when ``probs``
    is given (``reference.token_probabilities``; None omits it and ``ood_score``) and, if
    asked, ``stability`` (``reencode``: fraction of tokens unchanged; ``precision``: fp32 vs
    bf16). Pass the reference file's ``ood_thresholds`` for a verdict calibrated to the
    loaded weights; the default is ``reference.DEFAULT_OOD_THRESHOLDS``.
    """
    config = model.config
    indices, x_hat = reconstruct(model, x)
    original, reconstruction = to_uint8(x), to_uint8(x_hat)
    summary, jpeg_rgb = image_summary(original, reconstruction, indices, probs, thresholds, config)
    stats = CodebookStats(config.levels, config.num_tokens)
    stats.update(indices)
    result = {
        **summary,
        "indices": indices.numpy().reshape(config.grid_size, config.grid_size),
        "x_hat": x_hat,
        "original": original,
        "reconstruction": reconstruction,
        "jpeg_rgb": jpeg_rgb,
        "pixel_error": pixel_error(original, reconstruction),
        "token_error": token_error(original, reconstruction),
        "codebook": stats.result(),
    }
    if probs is not None:
        result["surprisal"] = surprisal_map(indices, probs)
    if stability or precision:
        result["stability"] = {}
    if stability:
        result["stability"]["reencode"] = reencode_stability(model, x, indices, x_hat)
    if precision:
        result["stability"]["precision"] = precision_agreement(model, x, indices, x_hat)
    return result
