"""Finite Scalar Quantization (Mentzer et al., 2023, Appendix A.1).

Pure functions over an implicit codebook. Each of the D latent dimensions is bounded to
``levels[d]`` values and rounded with a straight-through estimator; the codebook is the
product grid, so it has ``prod(levels)`` entries and holds no parameters.

Index order: dimension 0 is the *least* significant digit (mixed radix with
``basis = (1, L0, L0*L1, ...)``), as in the reference implementation. With levels
(8, 8, 8, 6, 5): ``index = d0 + 8*d1 + 64*d2 + 512*d3 + 3072*d4``, where ``d`` are the
integer levels in ``0..L-1``.

All arithmetic runs in float32 even under autocast: bf16 has 8 bits of mantissa, which is not
enough to hold an index of 15,359 (vector-quantize-pytorch #107).
"""

import numpy as np
import torch
from torch import Tensor

EPS = 1e-3


def _levels_tensor(levels, device=None) -> Tensor:
    return torch.as_tensor(levels, dtype=torch.int64, device=device)


def basis(levels, device=None) -> Tensor:
    """Mixed-radix place values ``(1, L0, L0*L1, ...)``: dimension 0 least significant."""
    levels = _levels_tensor(levels, device)
    return torch.cumprod(torch.cat([levels.new_ones(1), levels[:-1]]), dim=0)


def bound(z: Tensor, levels) -> Tensor:
    """Squash ``z`` (..., D) so that rounding gives exactly ``levels[d]`` values per dimension.

    Even levels need a half-step offset, which makes their grid asymmetric: 8 levels round to
    ``-4..3``. The shift uses ``atanh`` so that ``bound(0)`` rounds to the centre level.
    """
    L = _levels_tensor(levels, z.device).to(torch.float32)
    half_l = (L - 1) * (1 + EPS) / 2
    offset = torch.where(L % 2 == 0, 0.5, 0.0)
    shift = torch.atanh(offset / half_l)
    return torch.tanh(z.float() + shift) * half_l - offset


def round_ste(z: Tensor) -> Tensor:
    """Round with a straight-through gradient (identity in the backward pass)."""
    return z + (z.round() - z).detach()


def quantize(z: Tensor, levels) -> Tensor:
    """Quantize ``z`` (..., D) to codes in [-1, 1], in float32, with straight-through gradients."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        half_width = (_levels_tensor(levels, z.device) // 2).to(torch.float32)
        return round_ste(bound(z, levels)) / half_width


def unquantized(z: Tensor, levels) -> Tensor:
    """``z`` (..., D) on the codes' scale without the rounding, float32: the continuous latent
    that ``quantize`` rounds (``quantize`` = this value moved to the nearest grid point)."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        half_width = (_levels_tensor(levels, z.device) // 2).to(torch.float32)
        return bound(z, levels) / half_width
def as_indices(indices) -> np.ndarray:
    """Any integer array, list or tensor of ids -> int64 numpy array of the same shape."""
    if isinstance(indices, Tensor):
        indices = indices.detach().cpu().numpy()
    return np.asarray(indices, dtype=np.int64)


def indices_to_digits(indices, levels):
    """Ids (...) -> integer levels (..., D), each in ``0..levels[d]-1``: the mixed-radix digits.

    Takes a tensor (returns an int64 tensor on its device) or anything numpy reads (returns an
    int64 array). This is the one place ids are split into digits.
    """
    t = indices if isinstance(indices, Tensor) else torch.as_tensor(np.asarray(indices, dtype=np.int64))
    digits = (t.to(torch.int64).unsqueeze(-1) // basis(levels, t.device)) % _levels_tensor(levels, t.device)
    return digits if isinstance(indices, Tensor) else digits.numpy()


def digits_to_indices(digits, levels):
    """Integer levels (..., D) -> ids (...); the inverse of ``indices_to_digits``, same types."""
    t = digits if isinstance(digits, Tensor) else torch.as_tensor(np.asarray(digits, dtype=np.int64))
    indices = (t.to(torch.int64) * basis(levels, t.device)).sum(dim=-1)
    return indices if isinstance(digits, Tensor) else indices.numpy()


def with_digit(index: int, dim: int, level: int, levels) -> int:
    """The id ``index`` with its digit ``dim`` set to ``level``."""
    digits = indices_to_digits(as_indices(index), levels)
    digits[..., dim] = level
    return int(digits_to_indices(digits, levels))


def lower_digits(indices, k: int, levels) -> np.ndarray:
    """The number formed by digits 0..k-1 of each id (int64, same shape): ids mod prod(levels[:k])."""
    return as_indices(indices) % int(np.prod(levels[:k], dtype=np.int64))


def codes_to_indices(codes: Tensor, levels) -> Tensor:
    """Map codes (..., D) on the FSQ grid to int64 ids in ``0..prod(levels)-1``."""
    half_width = _levels_tensor(levels, codes.device) // 2
    return digits_to_indices((codes.float() * half_width + half_width).round().to(torch.int64), levels)


def indices_to_codes(indices: Tensor, levels) -> Tensor:
    """Map int64 ids (...) to float32 codes (..., D) in [-1, 1]; the inverse of ``codes_to_indices``."""
    half_width = _levels_tensor(levels, indices.device) // 2
    return (indices_to_digits(indices, levels) - half_width).to(torch.float32) / half_width


def implicit_codebook(levels, device=None) -> Tensor:
    """Every code, ``(prod(levels), D)`` float32, row ``i`` being the code of id ``i``."""
    size = int(torch.prod(_levels_tensor(levels)))
    return indices_to_codes(torch.arange(size, device=device), levels)
