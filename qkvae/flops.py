"""Floating-point operations per image of a QKVAE's encoder and decoder, for any config.

Counted by ``torch.utils.flop_counter.FlopCounterMode`` on one zero image: 2 x multiply-accumulates
of every convolution (the only ops it counts here). GroupNorm, SiLU, tanh, the nearest upsample
and the FSQ rounding are left out; they are a few per cent of the work.
"""

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from qkvae.model import QKVAE


@dataclass(frozen=True)
class ImageFlops:
    encode: int  # FLOPs per image, image -> FSQ codes
    decode: int  # codes -> image

    @property
    def both(self) -> int:
        return self.encode + self.decode


def _count(fn) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def flops_per_image(model: QKVAE) -> ImageFlops:
    """The encoder's and the decoder's FLOPs for one image of the model's size."""
    s = model.config.image_size
    x = torch.zeros(1, model.config.in_channels, s, s, device=model.device)
    with torch.no_grad():
        codes = model.quantize(x)
    return ImageFlops(_count(lambda: model.encoder(x)), _count(lambda: model.decoder(codes)))
