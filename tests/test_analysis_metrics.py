"""analysis.metrics on hand-made images with known answers."""

import numpy as np
import pytest

from analysis.metrics import PSNR_CAP, mse, pixel_error, psnr, ssim, token_error


def test_psnr_of_a_known_mse():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a + 10  # every value off by 10: MSE 100
    assert mse(a, b) == 100.0
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))  # 28.13 dB


def test_identical_images_give_the_cap_and_ssim_one(rgb):
    assert psnr(rgb, rgb) == PSNR_CAP
    assert ssim(rgb, rgb) == pytest.approx(1.0)


def test_ssim_drops_with_noise(rgb):
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(rgb, noisy) < 0.9


def test_error_maps_average_over_rgb_and_over_each_token():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (30, 0, 0)  # one pixel, one channel: pixel error 10
    pe = pixel_error(a, b)
    assert pe.shape == (4, 4) and pe[0, 0] == 10 and pe.sum() == 10
    te = token_error(a, b)
    assert te.shape == (2, 2)
    np.testing.assert_allclose(te, [[2.5, 0], [0, 0]])  # 10 / the token's 4 pixels
