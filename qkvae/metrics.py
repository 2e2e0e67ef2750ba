"""Reconstruction metrics on 8-bit images, the project's one convention: PSNR and SSIM.

Images are rounded to uint8 first and compared with ``data_range=255``. SSIM uses a Gaussian
window (sigma 1.5, truncated at 3.5 sigma, so 11 taps) with population covariance (Wang et al.
2004), per RGB channel, averaged, leaving out the borders a full window does not cover. That is
scikit-image's ``structural_similarity(a, b, data_range=255, channel_axis=-1,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, computed here in torch so the
core needs no scikit-image, and shared with the differentiable SSIM of ``qkvae.loss``.
"""

import numpy as np
import torch
from torch import Tensor

PSNR_CAP = 100.0  # dB reported for identical images
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error between two uint8 (H, W, 3) images, in 8-bit units."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images, capped at ``PSNR_CAP`` when they are identical."""
    m = mse(a, b)
    return PSNR_CAP if m == 0 else float(min(PSNR_CAP, 10.0 * np.log10(255.0**2 / m)))


def _gaussian() -> list[float]:
    """The normalised 1-D Gaussian window's taps."""
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    g = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).tolist()


def _blur(x: Tensor, g: list[float]) -> Tensor:
    """Separable blur of (..., H, W) with taps ``g``, keeping only fully covered pixels.

    Sums of shifted slices: on small images this is several times faster than a depthwise conv.
    """
    n = len(g) - 1
    h, w = x.shape[-2:]
    x = sum(gk * x[..., k:w - n + k] for k, gk in enumerate(g))
    return sum(gk * x[..., k:h - n + k, :] for k, gk in enumerate(g))


def ssim_images(a: Tensor, b: Tensor, data_range: float) -> Tensor:
    """Per-image SSIM (B,) of image batches (B, C, H, W) with values spanning ``data_range``.

    Differentiable; computed in ``a``'s floating dtype (at least float32).
    """
    dtype = torch.promote_types(a.dtype, torch.float32)
    a, b = a.to(dtype), b.to(dtype)
    g = _gaussian()
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a**2
    var_b = _blur(b * b, g) - mu_b**2
    cov = _blur(a * b, g) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 (H, W, 3) images, in float64, averaged over RGB."""
    ta, tb = (torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).permute(2, 0, 1)[None] for v in (a, b))
    return float(ssim_images(ta, tb, 255.0)[0])
