"""Token surgery: move one FSQ dimension of one token up or down a level.

An id is the mixed-radix number of its FSQ digits (``qkvae.fsq.indices_to_digits``), so moving
dimension ``k`` by one level adds or subtracts ``basis[k]`` as long as the level stays in ``0..L_k-1``.
"""

import numpy as np

from qkvae import fsq


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
    level = int(fsq.indices_to_digits(grid[row, col], levels)[dim]) + step
    if not 0 <= level < levels[dim]:
        raise ValueError(
            f"dimension {dim} of token ({row}, {col}) cannot go to level {level}: "
            f"it has levels 0..{levels[dim] - 1}"
        )
    out = grid.copy()
    out[row, col] = fsq.with_digit(grid[row, col], dim, level, levels)
    return out
