"""analysis.photo_features: each statistic's known answers, the shrinkage covariance, the per-group distance."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from analysis.photo_features import GROUPS, NAMES, PhotoModel, ledoit_wolf, photo_statistics
from analysis.stress import rescale


def photo() -> np.ndarray:
    return np.asarray(Image.fromarray(skimage.data.chelsea()[:, 75:375]).resize((96, 96), Image.Resampling.LANCZOS))


def stats(rgb) -> dict[str, float]:
    return dict(zip(NAMES, photo_statistics(rgb), strict=True))


def test_every_statistic_is_finite_even_on_a_flat_image():
    for rgb in (np.zeros((96, 96, 3), np.uint8), np.full((96, 96, 3), 255, np.uint8), photo()):
        values = photo_statistics(rgb)
        assert values.shape == (len(NAMES),) and np.isfinite(values).all()
    assert len(set(NAMES)) == len(NAMES) == sum(len(g) for g in GROUPS.values())


def test_colour_statistics_see_grey_and_tints():
    rgb = photo()
    grey = np.repeat(rgb.mean(axis=-1, keepdims=True), 3, axis=-1).astype(np.uint8)
    s, g = stats(rgb), stats(grey)
    assert g["grey_share"] == 1.0 and g["chroma_mean"] < 0.01 < s["chroma_mean"]
    assert g["corr_rg"] == pytest.approx(1.0) and g["corr_gb"] == pytest.approx(1.0)
    blue = np.clip(rgb * np.array([0.3, 0.8, 1.0]) + np.array([0, 30, 60]), 0, 255).astype(np.uint8)
    assert stats(blue)["yellow_blue"] < s["yellow_blue"] - 0.1  # a blue cast


def test_luminance_statistics_see_a_dark_photo():
    rgb = photo()
    dark = (rgb // 10).astype(np.uint8)
    s, d = stats(rgb), stats(dark)
    assert d["luma_p95"] < 0.1 < s["luma_p50"] and d["dark_share"] == 1.0 > s["dark_share"]


def test_spectrum_statistics_see_enlarged_blurred_and_tiled_photos():
    rgb = photo()
    s, zoomed, tiled = stats(rgb), stats(rescale(rgb, 2)), stats(rescale(rgb, 0.5))
    assert zoomed["spectrum_slope"] < s["spectrum_slope"] - 0.5  # detail falls off faster once enlarged
    assert zoomed["high_frequency_share"] < s["high_frequency_share"]
    assert tiled["tiling"] > 0.95 > s["tiling"]


def test_coding_statistics_see_noise_and_jpeg_blocks():
    rgb = photo()
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=5)
    jpeg = np.asarray(Image.open(buffer))
    s = stats(rgb)
    assert stats(noisy)["log_laplacian"] > s["log_laplacian"] + 1
    assert stats(jpeg)["blockiness"] > s["blockiness"] + 0.3
    assert stats(jpeg)["log_colours"] < s["log_colours"]


def test_ledoit_wolf_matches_the_formula_and_shrinks_less_with_more_samples():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    x = rng.normal(size=(40, 6)) @ mix
    centred = x - x.mean(axis=0)
    sample = centred.T @ centred / len(x)
    mu = np.trace(sample) / 6
    delta = ((sample - mu * np.eye(6)) ** 2).sum() / 6
    beta = min(delta, sum(((np.outer(r, r) - sample) ** 2).sum() for r in centred) / len(x) ** 2 / 6)
    expected = beta / delta * mu * np.eye(6) + (1 - beta / delta) * sample
    np.testing.assert_allclose(ledoit_wolf(x), expected, rtol=1e-10)
    many = rng.normal(size=(20000, 6)) @ mix
    np.testing.assert_allclose(ledoit_wolf(many), np.cov(many.T, bias=True), rtol=0.02, atol=0.02)


def test_photo_model_distances_are_per_group():
    rng = np.random.default_rng(1)
    fitted = rng.normal(size=(500, len(NAMES)))
    model = PhotoModel.fit(fitted)
    typical = model.distances(np.median(fitted, axis=0))  # log squared distances
    assert set(typical) == set(GROUPS) and all(d < 0 for d in typical.values())
    far = np.median(fitted, axis=0)
    far[NAMES.index("spectrum_slope")] += 6  # six interquartile ranges out on one statistic of one group
    distances = model.distances(far)
    assert distances["spectrum"] > np.log(20) and all(distances[g] == pytest.approx(typical[g]) for g in GROUPS if g != "spectrum")
    squared = [model.distances(row) for row in fitted[:200]]
    assert np.mean([np.exp(d["colour"]) for d in squared]) == pytest.approx(len(GROUPS["colour"]), rel=0.3)  # about chi-squared
    with pytest.raises(ValueError):
        PhotoModel.fit(fitted[:, :5])
    with pytest.raises(ValueError):
        PhotoModel(model.centre[:5], model.spread, model.mean, model.precision)
