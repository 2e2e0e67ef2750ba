"""analysis.plots: exact colour lookup, heatmaps on fixed scales, the sample grid, figures."""

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from analysis import plots
from analysis.ood import MAP_VMAX, MAP_VMIN


def cmap_rgb(name, t):
    return np.rint(np.asarray(matplotlib.colormaps[name](t))[..., :3] * 255).astype(np.uint8)


def test_colorize_maps_the_endpoints_exactly_and_clips():
    out = plots.colorize(np.array([[0.0, 1.0], [-5.0, 7.0]]), "viridis", 0.0, 1.0)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], cmap_rgb("viridis", 0.0))
    np.testing.assert_array_equal(out[0, 1], cmap_rgb("viridis", 1.0))
    np.testing.assert_array_equal(out[1], out[0])  # clipped to the ends
    gray = plots.colorize(np.array([[0, 255]]), "gray", 0, 255)
    np.testing.assert_array_equal(gray, [[[0, 0, 0], [255, 255, 255]]])


def test_colorize_uses_the_data_range_by_default_and_survives_constants_and_nan():
    out = plots.colorize(np.array([[2.0, 4.0]]), "gray")
    np.testing.assert_array_equal(out, [[[0] * 3, [255] * 3]])
    assert (plots.colorize(np.full((3, 3), 5.0), "gray") == 0).all()
    assert plots.colorize(np.array([[np.nan, 1.0]]), "gray", 0, 1)[0, 0].tolist() == [0, 0, 0]


def test_heatmaps_use_fixed_scales():
    err = np.full((96, 96), plots.ERROR_VMAX)
    np.testing.assert_array_equal(plots.error_heatmap(err)[0, 0], cmap_rgb(plots.ERROR_CMAP, 1.0))
    np.testing.assert_array_equal(plots.error_heatmap(np.zeros((96, 96)))[0, 0], cmap_rgb(plots.ERROR_CMAP, 0.0))
    ood_map = np.zeros((48, 48))
    ood_map[0, 0], ood_map[1, 1], ood_map[2, 2] = MAP_VMAX, MAP_VMIN, 100.0
    m = plots.ood_map_heatmap(ood_map)
    np.testing.assert_array_equal(m[0, 0], cmap_rgb(plots.OOD_MAP_CMAP, 1.0))
    np.testing.assert_array_equal(m[1, 1], cmap_rgb(plots.OOD_MAP_CMAP, 0.0))
    np.testing.assert_array_equal(m[2, 2], m[0, 0])  # clipped: the same scale for every image
    np.testing.assert_array_equal(m[5, 5], cmap_rgb(plots.OOD_MAP_CMAP, 0.5))  # 0 bits: the middle colour
    tokens = plots.token_heatmap(np.r_[0, np.full(2303, 15359)], 15360)
    assert tokens.shape == (48, 48, 3)
    np.testing.assert_array_equal(tokens[0, 0], cmap_rgb(plots.TOKEN_CMAP, 0.0))
    np.testing.assert_array_equal(tokens[47, 47], cmap_rgb(plots.TOKEN_CMAP, 1.0))


def test_upscale_nearest():
    a = np.arange(4).reshape(2, 2)
    np.testing.assert_array_equal(plots.upscale_nearest(a, 2), [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])


def test_sample_grid_puts_originals_over_reconstructions_with_labels():
    originals = np.zeros((16, 96, 96, 3), np.uint8) + np.arange(16, dtype=np.uint8)[:, None, None, None]
    recons = 255 - originals
    grid = plots.sample_grid(originals, recons, np.linspace(20, 35, 16))
    width = 16 * 96 + 15 * plots.GAP
    assert grid.shape == (2 * 96 + plots.GAP + plots.LABEL_HEIGHT, width, 3)
    x = 5 * (96 + plots.GAP)
    assert (grid[:96, x:x + 96] == 5).all()  # the 6th original, top row
    assert (grid[96 + plots.GAP:192 + plots.GAP, x:x + 96] == 250).all()  # its reconstruction under it
    label_band = grid[192 + plots.GAP:, x:x + 96]
    assert (label_band < 128).any() and (label_band == 255).any()  # dark text on white
    rows = np.flatnonzero((label_band < 128).any(axis=(1, 2)))
    assert rows.max() - rows.min() + 1 >= 12  # digits 12+ pixels tall: legible when the grid is shown smaller


def test_figures_are_plain_figures():
    counts = np.random.default_rng(0).poisson(2, 15360)
    hists = [np.arange(n) + 1 for n in (8, 8, 8, 6, 5)]
    figs = [
        plots.codebook_histogram(counts),
        plots.level_histograms_figure(hists, (8, 8, 8, 6, 5)),
        plots.usage_curve_figure([(1, 100), (2, 150)], 15360),
        plots.rd_plot((3.48, 25.0, 0.8), [(1.0, 24.0, 0.7), (2.0, 28.0, 0.85)], qkvae_entropy_bpp=3.0),
        plots.ood_histogram([1, 2, 3], [4, 5], thresholds=(3.0, 3.5)),
    ]
    assert all(type(f) is Figure for f in figs)
    assert [len(f.axes) for f in figs] == [2, 5, 1, 2, 1]
    assert figs[1].axes[0].get_title().startswith("dim 0: 8 levels")

