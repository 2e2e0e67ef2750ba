"""The card's reconstruction loss, L1 + 0.25 * MSE + 0.5 * L1(Sobel(x_hat), Sobel(x)), and SSIM.

Images are in [-1, 1]. Sobel is applied per RGB channel with the raw integer kernels
``[1, 2, 1]^T [-1, 0, 1]`` (horizontal and vertical), replicate padding. This is the
normalisation under which the card's final loss (0.0987 at 32.61 dB) is self-consistent; see
assets/MODEL_CARD.md for the step-0 comparison.

``reconstruction_loss`` also reports the project's SSIM (``qkvae.metrics``) of the unrounded
images, differentiable. It is always logged; fine-tuning may add ``ssim_weight * (1 - ssim)``
to the loss (the card's recipe does not; no gradient flows through it then).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from qkvae.metrics import ssim_images

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel(x: Tensor) -> Tensor:
    """Horizontal and vertical Sobel responses, (B, C, H, W) -> (B, 2C, H, W)."""
    c = x.shape[1]
    k = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(x, k.to(x), groups=c)


def ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """Per-image SSIM (B,) of images in [-1, 1], in float32, as ``qkvae.metrics.ssim`` scores 8-bit images."""
    return ssim_images((x_hat.float() + 1) / 2, (x.float() + 1) / 2, data_range=1.0)


def reconstruction_loss(x_hat: Tensor, x: Tensor, ssim_weight: float = 0.0) -> dict[str, Tensor]:
    """The terms and their weighted sum ``loss`` (the card's, plus ``ssim_weight * (1 - ssim)``), in float32."""
    x_hat, x = x_hat.float(), x.float()
    l1 = F.l1_loss(x_hat, x)
    mse = F.mse_loss(x_hat, x)
    edge = F.l1_loss(sobel(x_hat), sobel(x))
    similarity = ssim(x_hat if ssim_weight else x_hat.detach(), x).mean()
    loss = l1 + 0.25 * mse + 0.5 * edge + ssim_weight * (1 - similarity)
    return {"loss": loss, "l1": l1, "mse": mse, "edge": edge, "ssim": similarity}
