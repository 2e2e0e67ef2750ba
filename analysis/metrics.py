"""Reconstruction metrics on 8-bit images: PSNR, SSIM, per-pixel and per-token error maps.

Convention (used everywhere in this project): images are rounded to uint8 first, PSNR and
SSIM use ``data_range=255``; SSIM uses a Gaussian window with sigma 1.5 and population
covariance (Wang et al. 2004), computed per RGB channel and averaged.
"""

import numpy as np
from skimage.metrics import structural_similarity

PSNR_CAP = 100.0  # dB reported for identical images
SSIM_SIGMA = 1.5
WANG_SSIM = {"gaussian_weights": True, "sigma": SSIM_SIGMA, "use_sample_covariance": False}  # Wang et al. 2004


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error between two uint8 (H, W, 3) images, in 8-bit units."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images, capped at ``PSNR_CAP`` when they are identical."""
    m = mse(a, b)
    return PSNR_CAP if m == 0 else float(min(PSNR_CAP, 10.0 * np.log10(255.0**2 / m)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 (H, W, 3) images, Gaussian sigma 1.5, averaged over RGB."""
    return float(structural_similarity(a, b, data_range=255, channel_axis=-1, **WANG_SSIM))


def pixel_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error averaged over RGB, (H, W) float32 in 8-bit units."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=-1)


def token_error(a: np.ndarray, b: np.ndarray, patch: int = 2) -> np.ndarray:
    """Per-token error, (H/patch, W/patch): the mean ``pixel_error`` over each token's pixels."""
    e = pixel_error(a, b)
    h, w = e.shape
    return e.reshape(h // patch, patch, w // patch, patch).mean(axis=(1, 3))
