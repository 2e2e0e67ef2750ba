"""Display data for the app: bar-chart tables for gr.BarPlot and the enlarged, outlined token grid.

Per-upload charts are DataFrames drawn by the browser (gr.BarPlot), not matplotlib figures:
rendering a figure costs more than the whole 250 ms budget for one upload on 2 CPU cores.
"""

import numpy as np
import pandas as pd

from analysis import plots
from analysis.metrics import pixel_error

CODEBOOK_BINS = 120  # bars of the codebook chart (the card's 15,360 ids in bins of 128)
TOKEN_VIEW_SCALE = 10  # image pixels per token in the clickable grid; shown no larger than that
CHANGE_VMAX = 16.0  # 8-bit levels at the top of the colour scale of the token-edit change map


def bin_width(codebook_size: int, bins: int = CODEBOOK_BINS) -> int:
    """Code ids per bar of the codebook chart."""
    return -(-codebook_size // bins)


def codebook_frame(counts, bins: int = CODEBOOK_BINS) -> pd.DataFrame:
    """Tokens per bin of consecutive code ids: columns ``first id`` and ``tokens``."""
    counts = np.asarray(counts, dtype=np.float64)
    width = bin_width(counts.size, bins)
    per_bin = np.add.reduceat(counts, np.arange(0, counts.size, width))
    return pd.DataFrame({"first id": np.arange(0, counts.size, width), "tokens": per_bin})


def level_frames(level_hists) -> list[pd.DataFrame]:
    """Per FSQ dimension, the share of tokens at each level: columns ``level`` and ``share``."""
    frames = []
    for hist in level_hists:
        hist = np.asarray(hist, dtype=np.float64)
        share = hist / hist.sum() if hist.sum() else hist
        frames.append(pd.DataFrame({"level": [str(j) for j in range(hist.size)], "share": share}))
    return frames


def token_grid_view(grid: np.ndarray, codebook_size: int, row: int | None = None, col: int | None = None) -> np.ndarray:
    """The token heatmap (ids 0..``codebook_size`` - 1, the model config's) enlarged ``TOKEN_VIEW_SCALE``
    times, with token (row, col) framed in white and black."""
    heatmap = clickable(plots.token_heatmap(grid, codebook_size))
    if row is None or col is None:
        return heatmap
    view, s, (h, w) = heatmap.copy(), TOKEN_VIEW_SCALE, heatmap.shape[:2]
    for pad, colour in ((3, (0, 0, 0)), (2, (255, 255, 255))):  # a black line around a white frame
        view[max(row * s - pad, 0):min((row + 1) * s + pad, h), max(col * s - pad, 0):min((col + 1) * s + pad, w)] = colour
    cell = np.s_[row * s:(row + 1) * s, col * s:(col + 1) * s]
    view[cell] = heatmap[cell]
    return view


def clickable(token_map: np.ndarray) -> np.ndarray:
    """A per-token map (48x48 RGB) enlarged ``TOKEN_VIEW_SCALE`` times, so that ``cell_at`` reads its clicks.

    The browser reports a click on an image in the image's own pixels only while the image is
    shown no larger than it is: Gradio's Image maps clicks on an enlarged image as if it were
    drawn at its own size, centred.
    """
    return plots.upscale_nearest(token_map, TOKEN_VIEW_SCALE)


def cell_at(x: int, y: int) -> tuple[int, int]:
    """(row, col) of the token under a click at pixel (x, y) of ``token_grid_view`` or a ``clickable`` map."""
    return int(y) // TOKEN_VIEW_SCALE, int(x) // TOKEN_VIEW_SCALE


def change_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where two decodings differ: per-pixel mean absolute RGB change on the fixed scale 0..``CHANGE_VMAX``."""
    return plots.error_heatmap(pixel_error(before, after), CHANGE_VMAX)
