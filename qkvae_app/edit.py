"""Token surgery: read one token's FSQ levels and move one dimension up or down a level.

With levels (8, 8, 8, 6, 5) an id is the mixed-radix number ``d0 + 8*d1 + 64*d2 + 512*d3 +
3072*d4`` (dimension 0 least significant, see ``qkvae.fsq``), so moving dimension ``k`` by one
level adds or subtracts ``basis[k]`` as long as the level stays in ``0..L_k-1``.
"""

import numpy as np

from qkvae import fsq


def token_levels(index: int, levels) -> tuple[int, ...]:
    """The integer level ``0..L-1`` of each FSQ dimension for one token id."""
    b = fsq.basis(levels).numpy()
    return tuple(int(d) for d in (int(index) // b) % np.asarray(levels))


def nudge_token(grid: np.ndarray, row: int, col: int, dim: int, step: int, levels) -> np.ndarray:
    """A copy of ``grid`` (48, 48) with dimension ``dim`` of token (row, col) moved by ``step`` levels.

    Raises ``ValueError`` saying why when the position or dimension is outside the grid, or when
    the move would leave the dimension's range ``0..L-1``.
    """
    h, w = grid.shape
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"token ({row}, {col}) is outside the {h}x{w} grid")
    if not 0 <= dim < len(levels):
        raise ValueError(f"FSQ dimension must be 0..{len(levels) - 1}, not {dim}")
    level = token_levels(grid[row, col], levels)[dim] + step
    if not 0 <= level < levels[dim]:
        raise ValueError(
            f"dimension {dim} of token ({row}, {col}) cannot go to level {level}: "
            f"it has levels 0..{levels[dim] - 1}"
        )
    out = grid.copy()
    out[row, col] += step * int(fsq.basis(levels)[dim])
    return out
