"""QKVAE-1m: a tiny FSQ image tokenizer (96x96 RGB <-> 48x48 ids in 0..15,359).

    from qkvae import load_qkvae, load_image
    model = load_qkvae()                          # shipped weights, CUDA when available
    x = load_image("cat.jpg").unsqueeze(0)        # (1, 3, 96, 96) in [-1, 1]
    indices = model.encode(x.to(model.device))    # (1, 2304) int64
    x_hat = model.decode(indices)                 # (1, 3, 96, 96) in [-1, 1]

The names below are loaded from their modules on first use (PEP 562), so ``import qkvae`` or
``import qkvae.fsq`` loads no other submodule.
"""

import importlib

_HOMES = {
    "qkvae.image": ("ImageError", "load_image", "save_png"),
    "qkvae.model": ("QKVAE", "QKVAEConfig"),
    "qkvae.pipeline": ("reconstruct", "reconstruct_set", "reconstruction_psnr"),
    "qkvae.sources": ("SourceError", "open_source"),
    "qkvae.tokens": ("TokenError", "load_tokens", "lm_sequence", "save_tokens"),
    "qkvae.weights": ("WeightsError", "load_qkvae", "save_qkvae"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [*_HOME, "INPUT_ERRORS"]


def __getattr__(name: str):
    if name == "INPUT_ERRORS":
        # What bad input raises anywhere in the package; the CLIs report these in one line and exit 2.
        return (__getattr__("ImageError"), __getattr__("SourceError"), __getattr__("TokenError"),
                __getattr__("WeightsError"), OSError)
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'qkvae' has no attribute {name!r}")
