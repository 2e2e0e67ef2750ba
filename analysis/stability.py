"""Token stability: do the tokens survive a round trip through the decoder, and bf16 inference?

Both functions take one image (3, 96, 96) or a batch (B, 3, 96, 96) in [-1, 1] and answer
per image: a float for one image, an array of B values for a batch. Reconstructions are
rounded to 8 bits before they are re-encoded or scored, as a saved PNG would be.
Callers that already hold ``indices`` and ``x_hat`` pass them to skip the fp32 encode/decode.
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch

from qkvae.image import to_tensor, to_uint8
from qkvae.metrics import psnr


def token_agreement(a, b) -> np.ndarray:
    """Per image (row), the fraction of positions where two id arrays (B, T) agree."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return (a.reshape(a.shape[0], -1) == b.reshape(b.shape[0], -1)).double().mean(dim=1).numpy()


def _fp32_pass(model, x, indices, x_hat):
    """Batch ``x`` and compute (indices, x_hat) with the model unless they were given."""
    single = x.dim() == 3
    x = x.unsqueeze(0) if single else x
    if indices is None or x_hat is None:
        indices = model.encode(x.to(model.device))
        x_hat = model.decode(indices)
    indices = torch.as_tensor(indices).reshape(x.shape[0], -1).cpu()
    return single, x, indices, x_hat.reshape(x.shape)


def _per_image(values: np.ndarray, single: bool):
    return values[0].item() if single else values


def reencode_stability(model, x: torch.Tensor, indices=None, x_hat=None):
    """Fraction of tokens unchanged when the 8-bit reconstruction is encoded again."""
    single, x, indices, x_hat = _fp32_pass(model, x, indices, x_hat)
    again = model.encode(to_tensor(to_uint8(x_hat)).to(model.device)).cpu()
    return _per_image(token_agreement(indices, again), single)


@dataclass(frozen=True)
class PrecisionAgreement:
    """fp32 against bf16 autocast, per image: a float each for one image, arrays (B,) for a batch."""

    agreement: np.ndarray | float  # fraction of tokens equal
    tokens_changed: np.ndarray | int
    psnr_fp32: np.ndarray | float  # dB
    psnr_bf16: np.ndarray | float
    psnr_delta: np.ndarray | float  # bf16 minus fp32, dB

    def image(self, i: int) -> dict:
        """Image ``i``'s figures of a batch, by name (its ``stability.bf16`` entry in results.json)."""
        return {k: v[i] for k, v in asdict(self).items()}

    def means(self) -> dict:
        """The mean of each figure over the batch, by name."""
        return {k: np.mean(v) for k, v in asdict(self).items()}


def precision_agreement(model, x: torch.Tensor, indices=None, x_hat=None) -> PrecisionAgreement:
    """Tokens and PSNR of fp32 inference against bf16 autocast (encode and decode). On a CPU
    without bf16 units this is slow (seconds per image): bf16 convolutions are emulated."""
    single, x, indices, x_hat = _fp32_pass(model, x, indices, x_hat)
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16):
        indices_bf16 = model.encode(x.to(model.device))
        x_hat_bf16 = model.decode(indices_bf16)
    indices_bf16 = indices_bf16.cpu().reshape(indices.shape)
    agreement = token_agreement(indices, indices_bf16)
    original = to_uint8(x)
    psnr_fp32 = np.array([psnr(a, b) for a, b in zip(original, to_uint8(x_hat), strict=True)])
    psnr_bf16 = np.array([psnr(a, b) for a, b in zip(original, to_uint8(x_hat_bf16), strict=True)])
    return PrecisionAgreement(
        agreement=_per_image(agreement, single),
        tokens_changed=_per_image((indices != indices_bf16).sum(dim=1).numpy(), single),
        psnr_fp32=_per_image(psnr_fp32, single),
        psnr_bf16=_per_image(psnr_bf16, single),
        psnr_delta=_per_image(psnr_bf16 - psnr_fp32, single),
    )
