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
LABEL_HEIGHT = 24  # pixels of the PSNR label band under the sample grid
LABEL_FONT_SIZE = 18  # its text, in pixels: legible when the 16-image grid is shown at a page's width


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


def token_heatmap(indices, codebook_size: int) -> np.ndarray:
    """The ids of one image as a square colour grid: (grid, grid, 3), coloured over 0..codebook_size-1."""
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


def image_rows(rows, labels) -> np.ndarray:
    """Rows of equally sized uint8 images, one column per image, each column labelled with
    ``labels[i]`` under the last row: uint8 (k * h + (k - 1) gaps + label band, n * w + gaps, 3)."""
    rows = [[np.asarray(im) for im in row] for row in rows]
    n, (h, w) = len(rows[0]), rows[0][0].shape[:2]
    height = len(rows) * (h + GAP) - GAP
    grid = Image.new("RGB", (n * w + (n - 1) * GAP, height + LABEL_HEIGHT), "white")
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default(LABEL_FONT_SIZE)
    for i, label in enumerate(labels):
        x = i * (w + GAP)
        for r, row in enumerate(rows):
            grid.paste(Image.fromarray(row[i]), (x, r * (h + GAP)))
        draw.text((x + (w - draw.textlength(label, font=font)) / 2, height + 1), label, fill="black", font=font)
    return np.asarray(grid)


def sample_grid(originals, reconstructions, psnrs) -> np.ndarray:
    """Originals in the top row, their reconstructions under them, each column labelled with its
    PSNR: uint8 (2 * h + gap + label band, n * w with gaps, 3)."""
    return image_rows([originals, reconstructions], [f"{p:.2f} dB" for p in psnrs])


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


def usage_curve_figure(usage_curve, codebook_size: int) -> Figure:
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


def psnr_scatter(psnr_a, psnr_b, name_a: str = "A", name_b: str = "B") -> Figure:
    """Each image's PSNR under checkpoint B against under A, with the diagonal (equal quality)."""
    a, b = np.asarray(psnr_a, dtype=np.float64), np.asarray(psnr_b, dtype=np.float64)
    lo, hi = float(min(a.min(), b.min())) - 0.5, float(max(a.max(), b.max())) + 0.5
    fig = _figure(4.5, 4.2)
    ax = fig.subplots()
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
    ax.scatter(a, b, s=10, alpha=0.7)
    ax.set(xlabel=f"PSNR {name_a} (dB)", ylabel=f"PSNR {name_b} (dB)", xlim=(lo, hi), ylim=(lo, hi),
           title=f"B above the diagonal on {np.mean(b > a):.0%} of {len(a)} images")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    return fig


def _banded(ax, x, points: list[dict], measure: str, label=None, **kw) -> None:
    """A median line with its interquartile band, from ``analysis.stress`` aggregate points."""
    med = [p[measure]["median"] for p in points]
    line, = ax.plot(x, med, "o-", ms=3, label=label, **kw)
    ax.fill_between(x, [p[measure]["q25"] for p in points], [p[measure]["q75"] for p in points],
                    color=line.get_color(), alpha=0.2, lw=0)


def stress_figures(summary: dict) -> dict[str, Figure]:
    """The stress suite's set curves (``SetStress.to_json()``): one figure per family, medians
    with interquartile bands; for one image the bands are its own values."""
    n = summary["num_images"]
    figs = {}
    fig = _figure(8, 3.2)
    for ax, measure, unit in zip(fig.subplots(1, 2), ("psnr", "ssim"), ("PSNR (dB)", "SSIM"), strict=True):
        scales = [p["scale"] for p in summary["scale"]]
        _banded(ax, scales, summary["scale"], measure)
        ax.set(xscale="log", xticks=scales, xticklabels=[f"{s:g}x" for s in scales], xlabel="scale (<1 tiled, >1 zoomed in)",
               ylabel=unit)
        ax.grid(alpha=0.3)
    fig.suptitle(f"scale, {n} images")
    figs["scale"] = fig
    fig = _figure(5, 3.2)
    ax = fig.subplots()
    _banded(ax, [p["pixels"] for p in summary["shift"]], summary["shift"], "agreement")
    ax.set(xlabel="shift (pixels; 2 px = 1 token)", ylabel="tokens equal after undoing the shift", ylim=(0, 1.02),
           title=f"shift, {n} images")
    ax.grid(alpha=0.3)
    figs["shift"] = fig
    fig = _figure(10, 3.4)
    psnr_ax, changed_ax = fig.subplots(1, 2)
    names = list(dict.fromkeys(p["corruption"] for p in summary["corruption"]))
    colours = matplotlib.colormaps["tab10"]
    for k, name in enumerate(names):
        points = [p for p in summary["corruption"] if p["corruption"] == name]
        x = [p["severity"] for p in points]
        psnr_ax.plot(x, [p["psnr"]["median"] for p in points], "o-", ms=3, color=colours(k), label=name)
        changed_ax.plot(x, [p["tokens_changed"]["median"] for p in points], "o-", ms=3, color=colours(k))
    psnr_ax.set(xlabel="severity", ylabel="PSNR against the corrupted input (dB)", xticks=range(1, 6))
    changed_ax.set(xlabel="severity", ylabel="share of tokens changed", ylim=(0, 1), xticks=range(1, 6))
    psnr_ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"corruptions (ImageNet-C severities), medians over {n} images")
    figs["corruption"] = fig
    fig = _figure(5, 3.2)
    ax = fig.subplots()
    continuous = [im["quantization"]["psnr_continuous"] for im in summary["images"]]
    quantized = [im["quantization"]["psnr_quantized"] for im in summary["images"]]
    ax.plot(continuous, quantized, "o", ms=3)
    lo, hi = min(continuous + quantized), max(continuous + quantized)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="PSNR, continuous latent decoded (dB)", ylabel="PSNR, ids decoded (dB)",
           title="quantization against capacity")
    ax.grid(alpha=0.3)
    figs["quantization"] = fig
    fig = _figure(5, 3.2)
    ax = fig.subplots()
    for kind, label in (("digit", "one digit moved by ±1"), ("random", "id replaced at random")):
        points = [p for p in summary["token_noise"] if p["kind"] == kind]
        _banded(ax, [100 * p["fraction"] for p in points], points, "psnr", label=label)
    ax.set(xscale="log", xlabel="tokens hit (%)", ylabel="PSNR against the input (dB)", title=f"token noise, {n} images")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figs["token_noise"] = fig
    return figs
