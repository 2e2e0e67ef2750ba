"""One image through the tokenizer and back, and the PSNR convention used to report it."""

import numpy as np
import torch

from analysis.metrics import psnr
from qkvae.image import to_uint8
from qkvae.model import QKVAE


def reconstruction_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1], (3, H, W) or (B, 3, H, W) (then the mean over images).

    Convention: both are rounded to 8 bits first and compared with a peak of 255, as in
    ``analysis.metrics``; identical images give 100 dB.
    """
    a8, b8 = to_uint8(a).reshape(-1, *a.shape[-2:], 3), to_uint8(b).reshape(-1, *b.shape[-2:], 3)
    return float(np.mean([psnr(p, q) for p, q in zip(a8, b8, strict=True)]))


def reconstruct(model: QKVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One image (3, 96, 96) in [-1, 1] -> (indices (2304,) int64, x_hat (3, 96, 96) on the CPU)."""
    indices = model.encode(x.unsqueeze(0).to(model.device))
    return indices[0].cpu(), model.decode(indices)[0].cpu()
