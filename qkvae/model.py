"""The QKVAE-1m model: a quantizing conv autoencoder with an FSQ bottleneck.

Follows the published card (Glint Research): a 96x96 RGB image in [-1, 1] becomes a 48x48
grid of FSQ codes with levels (8, 8, 8, 6, 5), i.e. 2,304 ids in 0..15,359. With the default
config the model has exactly 1,063,304 trainable parameters.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qkvae import fsq

# Convolutions run faster on NHWC tensors (oneDNN on CPU, cuDNN on GPU): encode+decode of 64
# images took 22 % less time than with NCHW on 2 CPU cores (bench/README.md). Training and
# loading put the weights in this format; inputs in either format work.
MEMORY_FORMAT = torch.channels_last

# On CPU, ``encode`` runs the encoder on at most this many images at a time, which bounds its
# memory (a batch of 64 streams ~1.3 GB of activations) and gives the same ids
# (tests/test_encode.py). Smaller chunks stay in cache: 8 took 1.36x less CPU time than a batch
# of 64 on one thread, but lost with two threads on a shared host (bench/README.md); measure
# with ``bench.encode`` on a quiet or AMX machine before lowering it. A GPU takes the whole batch.
ENCODE_CHUNK = 64


@dataclass(frozen=True)
class QKVAEConfig:
    levels: tuple = (8, 8, 8, 6, 5)  # FSQ levels per latent dimension; latent dim = len(levels)
    in_channels: int = 3  # RGB
    channels: int = 104  # width of every hidden conv
    groups: int = 8  # GroupNorm groups
    num_res_blocks: int = 2  # ResBlocks in the encoder and in the decoder
    image_size: int = 96  # input side in pixels; the token grid is image_size // 2

    @property
    def grid_size(self) -> int:
        return self.image_size // 2

    @property
    def num_tokens(self) -> int:
        return self.grid_size**2

    @property
    def codebook_size(self) -> int:
        size = 1
        for level in self.levels:
            size *= level
        return size

    def to_dict(self) -> dict:
        return {**asdict(self), "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, d: dict) -> "QKVAEConfig":
        return cls(**{**d, "levels": tuple(d["levels"])})


def _norm(config: QKVAEConfig) -> nn.GroupNorm:
    return nn.GroupNorm(config.groups, config.channels)


class ResBlock(nn.Module):
    """x + conv(SiLU(GN(conv(SiLU(GN(x))))))."""

    def __init__(self, config: QKVAEConfig):
        super().__init__()
        c = config.channels
        self.norm1 = _norm(config)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.norm2 = _norm(config)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        # In place where autograd allows it (no backward needs a GroupNorm's or a conv's output):
        # fewer passes over memory, the same values.
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = self.conv2(F.silu(self.norm2(h), inplace=True))
        return h.add_(x)


class Encoder(nn.Module):
    def __init__(self, config: QKVAEConfig):
        super().__init__()
        c = config.channels
        self.conv_in = nn.Conv2d(config.in_channels, c, 3, padding=1)
        self.down = nn.Conv2d(c, c, 4, stride=2, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(config) for _ in range(config.num_res_blocks)])
        self.norm_out = _norm(config)
        self.conv_out = nn.Conv2d(c, len(config.levels), 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.down(self.conv_in(x))  # (B, 104, 48, 48)
        h = self.blocks(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))  # (B, 5, 48, 48)


class Decoder(nn.Module):
    def __init__(self, config: QKVAEConfig):
        super().__init__()
        c = config.channels
        self.conv_in = nn.Conv2d(len(config.levels), c, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(config) for _ in range(config.num_res_blocks)])
        self.up_conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm_out = _norm(config)
        self.conv_out = nn.Conv2d(c, config.in_channels, 3, padding=1)

    def forward(self, codes: Tensor) -> Tensor:
        h = self.blocks(self.conv_in(codes))  # (B, 104, 48, 48)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, 104, 96, 96)
        h = F.silu(self.up_conv(h), inplace=True)
        return torch.tanh(self.conv_out(F.silu(self.norm_out(h), inplace=True)))  # (B, 3, 96, 96)


@dataclass(frozen=True)
class WeightsFile:
    """The file a model's weights were loaded from and its SHA-256, recorded once by the loader."""

    path: Path
    sha256: str


class QKVAE(nn.Module):
    """Image <-> token ids. ``forward`` is the training path (straight-through quantization)."""

    def __init__(self, config: QKVAEConfig = QKVAEConfig()):
        super().__init__()
        self.config = config
        self.weights_file: WeightsFile | None = None  # set by ``qkvae.weights.load_qkvae``
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def quantize(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> FSQ codes (B, D, h, w), float32 in [-1, 1]."""
        z = self.encoder(x).permute(0, 2, 3, 1)  # (B, 48, 48, 5)
        return fsq.quantize(z, self.config.levels).permute(0, 3, 1, 2)

    @torch.no_grad()
    def continuous(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> the latent before rounding (B, D, h, w), float32 on the codes'
        scale: ``quantize`` rounds it to the FSQ grid, ``decode_codes`` decodes it as it is."""
        z = self.encoder(x).permute(0, 2, 3, 1)  # (B, 48, 48, 5)
        return fsq.unquantized(z, self.config.levels).permute(0, 3, 1, 2)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Codes (B, D, 48, 48), on the FSQ grid or not -> images (B, 3, 96, 96) float32 in [-1, 1]."""
        return self.decoder(codes.to(self.device)).float()

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct ``x`` through the quantizer; differentiable end to end."""
        return self.decoder(self.quantize(x))

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Images (B, 3, 96, 96) in [-1, 1] -> ids (B, 2304) int64, row-major over the grid.

        Runs ``ENCODE_CHUNK`` images at a time on CPU. With channels-last weights the permutes
        below are free views: the encoder's output is already laid out as (B, 48, 48, 5).
        """
        chunk = ENCODE_CHUNK if x.device.type == "cpu" else max(len(x), 1)
        ids = [fsq.codes_to_indices(self.quantize(c).permute(0, 2, 3, 1), self.config.levels)  # (b, 48, 48)
               for c in x.split(chunk)]
        return torch.cat(ids).flatten(1)

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Ids (B, 2304) or (B, 48, 48) -> images (B, 3, 96, 96) float32 in [-1, 1]."""
        g = self.config.grid_size
        indices = indices.reshape(indices.shape[0], g, g).to(self.device)
        return self.decode_codes(fsq.indices_to_codes(indices, self.config.levels).permute(0, 3, 1, 2))  # (B, 5, 48, 48)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
