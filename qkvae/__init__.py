"""QKVAE-1m: a tiny FSQ image tokenizer (96x96 RGB <-> 48x48 ids in 0..15,359).

    from qkvae import load_qkvae, load_image
    model = load_qkvae()                          # shipped weights, CUDA when available
    x = load_image("cat.jpg").unsqueeze(0)        # (1, 3, 96, 96) in [-1, 1]
    indices = model.encode(x.to(model.device))    # (1, 2304) int64
    x_hat = model.decode(indices)                 # (1, 3, 96, 96) in [-1, 1]
"""

from qkvae.image import ImageError, load_image, save_png
from qkvae.model import QKVAE, QKVAEConfig
from qkvae.pipeline import reconstruct, reconstruct_set, reconstruction_psnr
from qkvae.sources import SourceError, open_source
from qkvae.tokens import TokenError, load_tokens, lm_sequence, save_tokens
from qkvae.weights import WeightsError, load_qkvae, save_qkvae

__all__ = [
    "QKVAE", "QKVAEConfig", "load_qkvae", "save_qkvae", "load_image", "save_png",
    "reconstruct", "reconstruction_psnr", "load_tokens", "save_tokens", "lm_sequence",
    "open_source", "reconstruct_set", "ImageError", "SourceError", "TokenError", "WeightsError", "INPUT_ERRORS",
]

# What bad input raises anywhere in the package; the CLIs report these in one line and exit 2.
INPUT_ERRORS = (ImageError, SourceError, TokenError, WeightsError, OSError)
