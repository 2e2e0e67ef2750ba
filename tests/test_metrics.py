"""qkvae.metrics: PSNR on known answers, and SSIM equal to scikit-image's Wang et al. convention."""

import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage.metrics import structural_similarity

from qkvae.metrics import PSNR_CAP, mse, psnr, ssim


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


@pytest.mark.parametrize("sigma", [3, 12, 40])
def test_ssim_equals_scikit_image_gaussian_population_covariance(sigma):
    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((96, 80)))
    noisy = np.clip(photo + np.random.default_rng(sigma).normal(0, sigma, photo.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(photo, noisy, data_range=255, channel_axis=-1, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
    assert ssim(photo, noisy) == pytest.approx(expected, abs=1e-12)
