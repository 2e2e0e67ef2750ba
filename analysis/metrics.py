"""Where a reconstruction differs: per-pixel and per-token error maps of 8-bit images, and MS-SSIM.

PSNR and SSIM, the scores, live in ``qkvae.metrics`` (training needs them too).
"""

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim

# pytorch_msssim's 5 scales and weights (Wang et al. 2003) with a 5 px Gaussian window (sigma 1.5):
# its default 11 px window needs sides over 160 px after 4 halvings, and our images have 96.
MS_SSIM_WINDOW = 5


def pixel_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error averaged over RGB, (H, W) float32 in 8-bit units."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=-1)


def token_error(a: np.ndarray, b: np.ndarray, patch: int = 2) -> np.ndarray:
    """Per-token error, (H/patch, W/patch): the mean ``pixel_error`` over each token's pixels."""
    e = pixel_error(a, b)
    h, w = e.shape
    return e.reshape(h // patch, patch, w // patch, patch).mean(axis=(1, 3))


def ms_ssim(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Per-image MS-SSIM (N,) of uint8 (N, H, W, 3) batches, on 8-bit values (data_range 255),
    with a ``MS_SSIM_WINDOW`` px window; ``chunk`` images at a time."""
    out = []
    for start in range(0, len(a), chunk):
        ta, tb = (torch.from_numpy(np.ascontiguousarray(x[start:start + chunk])).permute(0, 3, 1, 2).double()
                  for x in (a, b))
        out.append(_ms_ssim(ta, tb, data_range=255, size_average=False, win_size=MS_SSIM_WINDOW).numpy())
    return np.concatenate(out) if out else np.zeros(0)
