"""The card's reconstruction loss, L1 + 0.25 * MSE + 0.5 * L1(Sobel(x_hat), Sobel(x)), and SSIM.

Images are in [-1, 1]. Sobel is applied per RGB channel with the raw integer kernels
``[1, 2, 1]^T [-1, 0, 1]`` (horizontal and vertical), replicate padding. This is the
normalisation under which the card's final loss (0.0987 at 32.61 dB) is self-consistent; see
assets/MODEL_CARD.md for the step-0 comparison.

``ssim`` is the project's SSIM (``analysis.metrics.ssim``: Gaussian window sigma 1.5 truncated
at 3.5 sigma, population covariance, borders of half a window left out, mean over R, G, B)
made differentiable: it works on the unrounded images. It is always logged; fine-tuning may
add ``ssim_weight * (1 - ssim)`` to the loss (the card's recipe does not; no gradient flows
through it then).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from analysis.metrics import SSIM_SIGMA

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 3.5, 0.01, 0.03  # scikit-image's, as analysis.metrics uses them


def sobel(x: Tensor) -> Tensor:
    """Horizontal and vertical Sobel responses, (B, C, H, W) -> (B, 2C, H, W)."""
    c = x.shape[1]
    k = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(x, k.to(x), groups=c)


def _gaussian(x: Tensor) -> Tensor:
    """The normalised 1-D Gaussian of ``SSIM_SIGMA``, truncated at ``SSIM_TRUNCATE`` sigma, for ``x``'s channels."""
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).repeat(x.shape[1], 1)  # (C, taps)


def _blur(x: Tensor, g: Tensor) -> Tensor:
    """Separable blur per channel with ``g`` (C, taps), keeping only fully covered pixels."""
    c, taps = g.shape
    x = F.conv2d(x, g.view(c, 1, 1, taps), groups=c)
    return F.conv2d(x, g.view(c, 1, taps, 1), groups=c)


def ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """Per-image SSIM (B,) of images in [-1, 1], in float32, as ``analysis.metrics.ssim`` scores them."""
    a, b = (x_hat.float() + 1) / 2, (x.float() + 1) / 2  # data range 1
    g = _gaussian(a)
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a**2
    var_b = _blur(b * b, g) - mu_b**2
    cov = _blur(a * b, g) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2, 3))


def reconstruction_loss(x_hat: Tensor, x: Tensor, ssim_weight: float = 0.0) -> dict[str, Tensor]:
    """The terms and their weighted sum ``loss`` (the card's, plus ``ssim_weight * (1 - ssim)``), in float32."""
    x_hat, x = x_hat.float(), x.float()
    l1 = F.l1_loss(x_hat, x)
    mse = F.mse_loss(x_hat, x)
    edge = F.l1_loss(sobel(x_hat), sobel(x))
    similarity = ssim(x_hat if ssim_weight else x_hat.detach(), x).mean()
    loss = l1 + 0.25 * mse + 0.5 * edge + ssim_weight * (1 - similarity)
    return {"loss": loss, "l1": l1, "mse": mse, "edge": edge, "ssim": similarity}
