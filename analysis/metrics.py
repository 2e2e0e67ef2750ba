"""Where a reconstruction differs: per-pixel and per-token error maps of 8-bit images.

PSNR and SSIM, the scores, live in ``qkvae.metrics`` (training needs them too).
"""

import numpy as np


def pixel_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error averaged over RGB, (H, W) float32 in 8-bit units."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=-1)


def token_error(a: np.ndarray, b: np.ndarray, patch: int = 2) -> np.ndarray:
    """Per-token error, (H/patch, W/patch): the mean ``pixel_error`` over each token's pixels."""
    e = pixel_error(a, b)
    h, w = e.shape
    return e.reshape(h // patch, patch, w // patch, patch).mean(axis=(1, 3))
