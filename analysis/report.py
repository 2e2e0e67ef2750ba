"""Everything the analysis says about one image: the per-upload computation behind the app.

``image_summary`` takes one row of the model's pass (``qkvae.stream.ReconstructedImage``: the
image, its ids and reconstruction, PSNR and SSIM) and adds what the row lacks: the rate, and
with an OOD reference the OOD score and map, as an ``ImageSummary``; ``python -m
analysis.evaluate`` and the Explore tab use it for every image of a set. ``analyze_image`` runs the model on one image and adds the maps and
per-image codebook statistics the app draws, as an ``ImageReport``. It stays lean for the app's
budget (250 ms per upload on 2 CPU cores, ~100 ms of it encode + decode): two SSIMs, 7 JPEG
encodes, one re-encode for token stability; bf16 agreement only on request (seconds on a CPU).
"""

from dataclasses import dataclass

import numpy as np
import torch

from analysis.codebook import CodebookStats, CodebookSummary
from analysis.metrics import pixel_error, token_error
from analysis.rate import RateSummary, bits_per_pixel, empirical_entropy_bits, jpeg_at_bytes, nominal_bits
from analysis.ood import OODReference, OODScore
from analysis.stability import precision_agreement, reencode_stability
from qkvae.image import to_uint8
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAEConfig
from qkvae.pipeline import reconstruct
from qkvae.stream import ReconstructedImage


@dataclass(frozen=True)
class ImageSummary:
    """The JSON-ready figures for one image; ``to_json`` is its entry in ``results.json``."""

    psnr: float
    ssim: float
    rate: RateSummary
    ood_score: OODScore | None  # None without a reference
    ood_map: np.ndarray | None  # (48, 48) bits (``OODReference.token_map``; not in the JSON); None without one

    def to_json(self) -> dict:
        out = {"psnr": self.psnr, "ssim": self.ssim, "rate": self.rate.to_json()}
        return out if self.ood_score is None else {**out, "ood_score": self.ood_score.to_json()}


@dataclass(frozen=True)
class ImageReport:
    """Everything the app shows about one image."""

    summary: ImageSummary
    indices: np.ndarray  # int64 (48, 48)
    x_hat: torch.Tensor  # (3, 96, 96) in [-1, 1]
    original: np.ndarray  # uint8 (96, 96, 3), the model input
    reconstruction: np.ndarray  # uint8 (96, 96, 3)
    pixel_error: np.ndarray  # (96, 96), 8-bit units
    token_error: np.ndarray  # (48, 48), 8-bit units
    ood_map: np.ndarray | None  # (48, 48) bits (``OODReference.token_map``); None without a reference
    codebook: CodebookSummary  # this image's tokens
    stability: dict | None  # reencode (fraction of tokens unchanged), precision (fp32 vs bf16), as asked


def image_summary(image: ReconstructedImage, reference: OODReference | None = None,
                  config: QKVAEConfig = QKVAEConfig()) -> ImageSummary:
    """The figures for one row of the model's pass: its PSNR and SSIM as they are, the rate
    (nominal and entropy bits, JPEG at the nominal size) and, given the OOD ``reference``, the
    OOD score and map and the bits of the ids coded with the reference's token frequencies."""
    original, indices = image.original, image.indices
    nominal = nominal_bits(config)
    score = ood_map = reference_bits = None
    if reference is not None:
        reference_bits = empirical_entropy_bits(indices, reference.probs)
        score, ood_map = reference.score_and_map(original, indices)
    rate = RateSummary(nominal, bits_per_pixel(nominal, original), empirical_entropy_bits(indices),
                       jpeg_at_bytes(original, nominal / 8), reference_bits)
    return ImageSummary(image.psnr, image.ssim, rate, score, ood_map)


def analyze_image(model, x: torch.Tensor, reference: OODReference | None,
                  stability: bool = True, precision: bool = False) -> ImageReport:
    """Analyse one image (3, 96, 96) in [-1, 1] with the model.

    ``reference`` (``analysis.reference.load_reference`` for the model's weights; None leaves out
    the OOD map and score) gives the OOD score, its verdict and the OOD map. ``stability`` adds the
    re-encode agreement, ``precision`` the fp32 against bf16 comparison (seconds on a CPU).
    """
    config = model.config
    indices, x_hat = reconstruct(model, x)
    original, reconstruction = to_uint8(x), to_uint8(x_hat)
    stats = CodebookStats(config.levels, config.num_tokens)
    stats.update(indices)
    checks = {}
    if stability:
        checks["reencode"] = reencode_stability(model, x, indices, x_hat)
    if precision:
        checks["precision"] = precision_agreement(model, x, indices, x_hat)
    row = ReconstructedImage("", original, indices, reconstruction, psnr(original, reconstruction),
                             ssim(original, reconstruction))
    summary = image_summary(row, reference, config)
    return ImageReport(
        summary=summary,
        indices=indices.numpy().reshape(config.grid_size, config.grid_size),
        x_hat=x_hat,
        original=original,
        reconstruction=reconstruction,
        pixel_error=pixel_error(original, reconstruction),
        token_error=token_error(original, reconstruction),
        ood_map=summary.ood_map,
        codebook=stats.result(),
        stability=checks or None,
    )
