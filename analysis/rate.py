"""Rate: what an image's tokens cost in bits, and what JPEG achieves at the same size.

Three rates for QKVAE, in bits per image:
- nominal: every token stored as a fixed-width id, ``num_tokens * log2(codebook_size)``;
- own entropy: an ideal coder using the image's own token histogram (the histogram itself
  not counted), ``num_tokens * H(histogram)``;
- reference: an ideal arithmetic coder using the reference distribution, ``sum -log2 p``.
JPEG is Pillow's baseline encoder with its defaults (4:2:0 chroma subsampling, standard
tables); its size is the whole file, headers included, and its quality is chosen as the
highest whose file fits the byte budget. Metrics follow ``qkvae.metrics``.
"""

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from analysis.codebook import code_counts, entropy_bits
from qkvae.fsq import as_indices
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAEConfig

JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)  # the RD curve's points


def nominal_bits(config: QKVAEConfig = QKVAEConfig()) -> float:
    """Bits per image with fixed-width ids: 2,304 * log2(15,360) = 32,042 for QKVAE-1m."""
    return config.num_tokens * math.log2(config.codebook_size)


def empirical_entropy_bits(indices, probs=None) -> float:
    """Bits per image for an ideal entropy coder: from the image's own histogram, or from ``probs``."""
    ids = as_indices(indices).ravel()
    if probs is not None:
        return float(-np.log2(np.asarray(probs)[ids]).sum())
    return ids.size * entropy_bits(code_counts(ids, ids.max(initial=0) + 1))


def bits_per_pixel(bits: float, rgb: np.ndarray) -> float:
    return bits / (rgb.shape[0] * rgb.shape[1])


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    """The JPEG file Pillow writes for uint8 (H, W, 3) at ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def jpeg(rgb: np.ndarray, quality: int) -> tuple[int, np.ndarray]:
    """Encode uint8 (H, W, 3) with Pillow at ``quality``: (file size in bytes, decoded uint8 image)."""
    data = jpeg_bytes(rgb, quality)
    return len(data), decode_jpeg(data)


@dataclass(frozen=True)
class JpegMatch:
    """JPEG at the highest quality whose file fits a byte budget, scored against the image."""

    quality: int
    bytes: int
    bits_per_pixel: float
    psnr: float
    ssim: float
    fits: bool  # False when even quality 1 is larger than the budget (quality 1 is reported)
    rgb: np.ndarray  # uint8 (H, W, 3), the JPEG decoded (not in the JSON)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("quality", "bytes", "bits_per_pixel", "psnr", "ssim", "fits")}


@dataclass(frozen=True)
class RateSummary:
    """What one image's ids cost in bits, next to JPEG at the same size."""

    nominal_bits: float  # fixed-width ids
    bits_per_pixel: float  # of the nominal bits
    own_entropy_bits: float  # an ideal coder with the image's own histogram
    jpeg_equal_bytes: JpegMatch  # JPEG at the nominal size
    reference_bits: float | None = None  # an ideal coder with the OOD reference's frequencies

    def to_json(self) -> dict:
        out = {"nominal_bits": self.nominal_bits, "bits_per_pixel": self.bits_per_pixel,
               "own_entropy_bits": self.own_entropy_bits, "jpeg_equal_bytes": self.jpeg_equal_bytes.to_json()}
        return out if self.reference_bits is None else {**out, "reference_bits": self.reference_bits}


def jpeg_at_bytes(rgb: np.ndarray, target_bytes: float) -> JpegMatch:
    """JPEG at the highest quality (1..100) whose file fits ``target_bytes``, scored against ``rgb``.

    Binary search on quality (7 encodes, 1 decode; file size grows with quality).
    """
    lo, hi, best = 1, 100, None
    while lo <= hi:
        q = (lo + hi) // 2
        data = jpeg_bytes(rgb, q)
        if len(data) <= target_bytes:
            best, lo = (q, data), q + 1
        else:
            hi = q - 1
    quality, data = best or (1, jpeg_bytes(rgb, 1))
    decoded = decode_jpeg(data)
    return JpegMatch(quality, len(data), bits_per_pixel(8 * len(data), rgb), psnr(rgb, decoded), ssim(rgb, decoded),
                     best is not None, decoded)


def jpeg_curve(rgb: np.ndarray, qualities=JPEG_QUALITIES) -> list[tuple[float, float, float]]:
    """The JPEG rate-distortion curve of one image: (bits_per_pixel, psnr, ssim) per quality."""
    points = []
    for q in qualities:
        size, decoded = jpeg(rgb, q)
        points.append((bits_per_pixel(8 * size, rgb), psnr(rgb, decoded), ssim(rgb, decoded)))
    return points
