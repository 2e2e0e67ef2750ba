"""Pictures of the analysis: RGB uint8 arrays for maps and grids, ``Figure`` objects for charts.

Nothing here shows or saves: the caller decides. Maps go through a numpy colour lookup table
(about a millisecond for a 96x96 map) rather than a figure. Charts are built on
``matplotlib.figure.Figure`` directly, outside pyplot's global registry, so a server that
makes one per request leaks nothing. Error and OOD maps use fixed scales, so the colours of
two images can be compared.
"""

import itertools
import math
from functools import lru_cache

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from qkvae.fsq import as_indices
from analysis.ood import MAP_VMAX, MAP_VMIN, auroc

LUT_SIZE = 256
TOKEN_CMAP, ERROR_CMAP, OOD_MAP_CMAP = "turbo", "magma", "RdBu_r"  # the OOD map diverges around 0
ERROR_VMAX = 32.0  # mean absolute RGB error, 8-bit units, at the top of the error colour scale
GAP = 2  # pixels between the tiles of the sample grid
LABEL_HEIGHT = 14  # pixels of the PSNR label band under the sample grid


@lru_cache(maxsize=None)
def _lut(cmap: str) -> np.ndarray:
    """(LUT_SIZE, 3) uint8 colours sampled evenly from a matplotlib colormap."""
    return np.rint(matplotlib.colormaps[cmap](np.linspace(0, 1, LUT_SIZE))[:, :3] * 255).astype(np.uint8)


def colorize(values, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """A 2-D array of values -> uint8 (H, W, 3): ``vmin`` maps to the colormap's first colour,
    ``vmax`` to its last, values outside are clipped (NaN takes the first colour).
    Without ``vmin``/``vmax`` the data's own range is used."""
    v = np.asarray(values, dtype=np.float64)
    vmin = np.nanmin(v) if vmin is None else vmin
    vmax = np.nanmax(v) if vmax is None else vmax
    scale = (LUT_SIZE - 1) / (vmax - vmin) if vmax > vmin else 0.0
    idx = np.nan_to_num(np.clip(np.rint((v - vmin) * scale), 0, LUT_SIZE - 1))
    return _lut(cmap)[idx.astype(np.intp)]


def upscale_nearest(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an (H, W, ...) image ``factor`` times with square pixels."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def token_heatmap(indices, codebook_size: int = 15360) -> np.ndarray:
    """The ids of one image as a square colour grid: (48, 48, 3)."""
    ids = as_indices(indices)
    side = math.isqrt(ids.size)
    return colorize(ids.reshape(side, side), TOKEN_CMAP, 0, codebook_size - 1)


def error_heatmap(err, vmax: float = ERROR_VMAX) -> np.ndarray:
    """A pixel or token error map (8-bit units) on the fixed scale 0..``vmax``."""
    return colorize(err, ERROR_CMAP, 0.0, vmax)


def ood_map_heatmap(ood_map) -> np.ndarray:
    """An OOD map (``analysis.ood``, bits per token) on the fixed scale ``MAP_VMIN``..``MAP_VMAX``:
    blue where a token is more predictable than a photo's of the same local complexity, white as
    predictable, red less."""
    return colorize(ood_map, OOD_MAP_CMAP, MAP_VMIN, MAP_VMAX)


def sample_grid(originals, reconstructions, psnrs) -> np.ndarray:
    """Originals in the top row, their reconstructions under them, each column labelled with its
    PSNR: uint8 (2 * h + label band, n * w with gaps, 3)."""
    n, h, w = len(originals), *np.asarray(originals[0]).shape[:2]
    grid = Image.new("RGB", (n * w + (n - 1) * GAP, 2 * h + GAP + LABEL_HEIGHT), "white")
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    for i, (original, reconstruction, p) in enumerate(zip(originals, reconstructions, psnrs, strict=True)):
        x = i * (w + GAP)
        grid.paste(Image.fromarray(np.asarray(original)), (x, 0))
        grid.paste(Image.fromarray(np.asarray(reconstruction)), (x, h + GAP))
        label = f"{p:.2f} dB"
        draw.text((x + (w - draw.textlength(label, font=font)) / 2, 2 * h + GAP + 1), label, fill="black", font=font)
    return np.asarray(grid)


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def codebook_histogram(counts) -> Figure:
    """Code usage: count per id, and counts sorted by rank on log-log axes."""
    counts = np.asarray(counts, dtype=np.float64)
    fig = _figure(10, 3.2)
    by_id, by_rank = fig.subplots(1, 2)
    by_id.plot(np.arange(counts.size), counts, lw=0.4)
    by_id.set(xlabel="code id", ylabel="count", xlim=(0, counts.size),
               title=f"{int((counts > 0).sum()):,} of {counts.size:,} codes used")
    ranked = np.sort(counts[counts > 0])[::-1]
    by_rank.loglog(np.arange(1, ranked.size + 1), ranked, lw=1)
    by_rank.set(xlabel="rank", ylabel="count", title="rank-frequency")
    return fig


def level_histograms_figure(level_hists, levels) -> Figure:
    """One bar chart per FSQ dimension: tokens per level, with the share at the extreme levels."""
    fig = _figure(2.2 * len(levels), 2.6)
    for k, (ax, hist, n) in enumerate(zip(fig.subplots(1, len(levels)), level_hists, levels, strict=True)):
        hist = np.asarray(hist, dtype=np.float64)
        share = hist / hist.sum() if hist.sum() else hist
        ax.bar(np.arange(n), share, color=["C3" if j in (0, n - 1) else "C0" for j in range(n)])
        ax.set(title=f"dim {k}: {n} levels, {share[0] + share[-1]:.0%} extreme", xlabel="level", xticks=range(n))
        ax.title.set_fontsize(8)
    fig.axes[0].set_ylabel("share of tokens")
    return fig


def usage_curve_figure(usage_curve, codebook_size: int = 15360) -> Figure:
    """Distinct codes seen against images seen."""
    images, codes = np.asarray(usage_curve, dtype=np.float64).reshape(-1, 2).T
    fig = _figure(4.5, 3.2)
    ax = fig.subplots()
    ax.plot(images, codes / codebook_size)
    ax.set(xlabel="images seen", ylabel="share of codes seen", ylim=(0, 1), title="codebook usage")
    return fig


def rd_plot(qkvae_point, jpeg_curve, qkvae_entropy_bpp: float | None = None) -> Figure:
    """PSNR and SSIM against bits per pixel: the QKVAE point against a JPEG curve.

    ``qkvae_point`` is (bits_per_pixel, psnr, ssim) at the nominal rate; ``jpeg_curve`` a list
    of (bits_per_pixel, psnr, ssim). With ``qkvae_entropy_bpp`` a second, hollow point marks
    the rate an ideal entropy coder would reach with the reference distribution.
    """
    curve = np.asarray(jpeg_curve, dtype=np.float64)
    fig = _figure(9, 3.4)
    for k, (ax, metric) in enumerate(zip(fig.subplots(1, 2), ("PSNR (dB)", "SSIM"), strict=True), start=1):
        ax.plot(curve[:, 0], curve[:, k], "o-", ms=3, label="JPEG (Pillow, 4:2:0)")
        ax.plot(qkvae_point[0], qkvae_point[k], "*", ms=12, color="C3", label="QKVAE, fixed-width ids")
        if qkvae_entropy_bpp is not None:
            ax.plot(qkvae_entropy_bpp, qkvae_point[k], "*", ms=12, mfc="none", color="C3",
                    label="QKVAE, entropy-coded (reference)")
        ax.set(xlabel="bits per pixel", ylabel=metric)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    return fig


def ood_histogram(scores_in, scores_out, thresholds=None, labels=("in distribution", "out of distribution"),
                  xlabel="OOD score") -> Figure:
    """Overlaid histograms of in- and out-of-distribution scores, with the verdict thresholds and the AUROC."""
    scores_in, scores_out = np.ravel(scores_in), np.ravel(scores_out)
    bins = np.histogram_bin_edges(np.concatenate([scores_in, scores_out]), bins=30)
    fig = _figure(6, 3.2)
    ax = fig.subplots()
    ax.hist(scores_in, bins=bins, alpha=0.6, label=labels[0])
    ax.hist(scores_out, bins=bins, alpha=0.6, label=labels[1])
    for t in thresholds if thresholds is not None else ():
        ax.axvline(t, color="k", ls="--", lw=1)
    ax.set(xlabel=xlabel, ylabel="images", title=f"AUROC {auroc(scores_in, scores_out):.3f}")
    ax.legend(fontsize=8)
    return fig


CARD_LOSS = {0: 0.3989, 1000: 0.2211, 2000: 0.1610, 3000: 0.1248, 4000: 0.1124, 5000: 0.1033, 6000: 0.0987}


def loss_curve(records: list[dict], done: int, total: int) -> Figure:
    """Our logged loss (per step and 50-step mean) against the card's published points, with
    a dotted line where a resumed part of the run changed precision."""
    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    steps = [r["step"] for r in records]
    ax.plot(steps, [r["loss"] for r in records], lw=0.8, alpha=0.5, label="ours, one batch")
    ax.plot(steps, [r["mean_loss"] for r in records], lw=1.6, label="ours, mean since last log")
    ax.plot(list(CARD_LOSS), list(CARD_LOSS.values()), "ko--", ms=4, lw=0.8, label="published card")
    for before, after in itertools.pairwise(records):
        if before["precision"] != after["precision"]:  # a resumed part of the run on other hardware
            ax.axvline(after["step"], color="0.5", lw=0.8, ls=":")
            ax.annotate(f" {before['precision']} → {after['precision']}", (after["step"], 0.98),
                        xycoords=("data", "axes fraction"), va="top", fontsize=8, color="0.3")
    ax.set(xlabel="step", ylabel="loss (L1 + 0.25 MSE + 0.5 Sobel-L1)", yscale="log",
           xlim=(0, total), title=f"QKVAE-1m training, {done} of {total} steps")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig
