"""A context prior over the token grid: p(token | left, up, up-left neighbours), factored over FSQ digits.

Each token is split into its FSQ digits ``d_0 .. d_{D-1}`` (``qkvae.fsq.indices_to_digits``, dimension 0 least
significant). Digit ``k`` is predicted from the same digit ``k`` of the left, up and up-left
tokens (a neighbour outside the grid reads as the extra value ``levels[k]``) and from the
earlier digits ``d_0 .. d_{k-1}`` of the token itself, so

    p(token | neighbours) = prod_k p(d_k | L_k, U_k, UL_k, d_<k).

Counts come from reference tokens; only the finest context is stored, and coarser contexts are
its marginals. Smoothing is hierarchical Dirichlet back-off (MacKay & Peto 1995): a context's
distribution is its counts plus ``strength`` pseudo-counts spread as its parent's distribution,
along the chain  () -> (L) -> (L, U) -> (L, U, UL) -> (L, U, UL, d_{k-1}) -> (L, U, UL, d_<k),
ending in the uniform distribution. Scoring an image is a few table look-ups (well under 1 ms).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from qkvae.fsq import as_indices, indices_to_digits, lower_digits

STRENGTH = 8.0  # Dirichlet back-off pseudo-counts; the reference file stores the value it was fit with


def token_grids(indices) -> np.ndarray:
    """Ids of one image, flat (T,) or a grid (S, S), or of many, (N, S, S) -> int64 (N, S, S)."""
    ids = as_indices(indices)
    if ids.ndim == 1:
        side = math.isqrt(ids.size)
        if side * side != ids.size:
            raise ValueError(f"{ids.size} ids do not form a square grid")
        ids = ids.reshape(side, side)
    if ids.ndim not in (2, 3) or ids.shape[-1] != ids.shape[-2]:
        raise ValueError(f"expected token ids (T,), (S, S) or (N, S, S), got shape {ids.shape}")
    return ids.reshape(-1, *ids.shape[-2:])


def batch_grids(indices) -> np.ndarray:
    """Ids of N images, (N, T) with T a square -> int64 (N, S, S)."""
    ids = as_indices(indices)
    side = math.isqrt(ids.shape[-1]) if ids.ndim == 2 else 0
    if ids.ndim != 2 or side * side != ids.shape[-1]:
        raise ValueError(f"expected (N, T) token ids with T a square, got shape {ids.shape}")
    return ids.reshape(-1, side, side)


def _contexts(indices, levels) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per digit k: (finest context index, digit value), both int64 (N, side, side)."""
    ids = token_grids(indices)
    d = indices_to_digits(ids, levels)  # (N, S, S, D)
    out = []
    for k, n in enumerate(levels):
        padded = np.pad(d[..., k], ((0, 0), (1, 0), (1, 0)), constant_values=n)  # outside = n
        left, up, up_left = padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, :-1, :-1]
        neighbours = (up_left * (n + 1) + up) * (n + 1) + left
        out.append((neighbours * math.prod(levels[:k]) + lower_digits(ids, k, levels), d[..., k]))
    return out


def context_shapes(levels) -> list[tuple[int, int, int]]:
    """Per digit k: (neighbour contexts, earlier-digit contexts, levels[k]) of its count table."""
    return [((n + 1) ** 3, math.prod(levels[:k]), n) for k, n in enumerate(levels)]


def fit_counts(indices, levels) -> list[np.ndarray]:
    """Finest-context counts per digit from reference ids (``token_grids``): int64 (neighbours, earlier, L_k)."""
    tables = []
    for (ctx, value), shape in zip(_contexts(indices, levels), context_shapes(levels), strict=True):
        n = shape[2]
        flat = np.bincount((ctx * n + value).ravel(), minlength=math.prod(shape))
        tables.append(flat.reshape(shape))
    return tables


def _backoff_chain(table: np.ndarray, n: int, k: int, levels) -> list[np.ndarray]:
    """Count tables from the coarsest context to the finest, each (contexts, L_k)."""
    side = n + 1
    by_neighbours = table.reshape(side, side, side, -1, n)  # (UL, U, L, earlier, value)
    chain = [by_neighbours.sum(axis=(0, 1, 2, 3)).reshape(1, n)]  # ()
    chain.append(by_neighbours.sum(axis=(0, 1, 3)).reshape(side, n))  # (L)
    chain.append(by_neighbours.sum(axis=(0, 3)).reshape(side * side, n))  # (U, L)
    chain.append(by_neighbours.sum(axis=3).reshape(side ** 3, n))  # (UL, U, L)
    if k >= 2:
        previous = levels[k - 1]
        last = by_neighbours.reshape(side ** 3, -1, previous, n).sum(axis=1)  # earlier digits but d_{k-1} summed out
        chain.append(last.reshape(side ** 3 * previous, n))
    if k >= 1:
        chain.append(table.reshape(-1, n))
    return chain


def _smooth(chain: list[np.ndarray], strength: float) -> np.ndarray:
    """Hierarchical Dirichlet back-off along ``chain``: log2 p of the finest context, float32."""
    n = chain[0].shape[1]
    p = np.full((1, n), 1.0 / n)
    for counts in chain:
        parent = p.repeat(counts.shape[0] // p.shape[0], axis=0) if p.shape[0] > 1 else p
        counts = counts.astype(np.float64)
        p = (counts + strength * parent) / (counts.sum(axis=1, keepdims=True) + strength)
    return np.log2(p).astype(np.float32)


@dataclass(frozen=True)
class ContextPrior:
    """The smoothed prior: ``surprisal(indices)`` gives -log2 p of each token given its neighbours."""

    levels: tuple[int, ...]
    counts: tuple[np.ndarray, ...]  # per digit, (neighbour contexts, earlier-digit contexts, L_k)
    strength: float = STRENGTH
    log2p: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        shapes = context_shapes(self.levels)
        if len(self.counts) != len(shapes) or any(c.shape != s for c, s in zip(self.counts, shapes)):
            raise ValueError(f"prior counts of shapes {[c.shape for c in self.counts]} do not match levels {self.levels}")
        tables = []
        for k, (table, (_, _, n)) in enumerate(zip(self.counts, shapes)):
            tables.append(_smooth(_backoff_chain(table, n, k, self.levels), self.strength).ravel())
        object.__setattr__(self, "log2p", tuple(tables))

    @classmethod
    def fit(cls, indices, levels, strength: float = STRENGTH) -> "ContextPrior":
        return cls(tuple(levels), tuple(fit_counts(indices, levels)), strength)

    def surprisal(self, indices) -> np.ndarray:
        """-log2 p(token | neighbours) in bits, float64 (N, S, S), for ids as ``token_grids`` takes them."""
        bits = sum(-table[ctx * n + value].astype(np.float64)
                   for table, (ctx, value), n in zip(self.log2p, _contexts(indices, self.levels), self.levels))
        return bits
