"""analysis.rate: nominal and entropy bits, JPEG at a byte budget, the JPEG curve."""

import math

import numpy as np
import pytest

from qkvae.metrics import psnr, ssim
from analysis.rate import empirical_entropy_bits, jpeg, jpeg_at_bytes, jpeg_curve, nominal_bits
from qkvae.model import QKVAEConfig


def test_nominal_bits():
    assert nominal_bits() == pytest.approx(2304 * math.log2(15360))
    assert nominal_bits() == pytest.approx(32041.48, abs=0.01)
    assert nominal_bits(QKVAEConfig(levels=(4, 4))) == pytest.approx(2304 * 4)


def test_entropy_bound_from_the_own_histogram_and_from_a_reference():
    ids = np.tile([0, 1, 2, 3], 576)  # four codes, equally often: 2 bits each
    assert empirical_entropy_bits(ids) == pytest.approx(2304 * 2)
    assert empirical_entropy_bits(np.zeros(2304, int)) == 0.0
    probs = np.full(16, 1 / 16)
    assert empirical_entropy_bits(ids, probs) == pytest.approx(2304 * 4)


@pytest.mark.parametrize("budget", [1000, 1500, 4005])
def test_jpeg_at_bytes_is_the_best_quality_within_budget(rgb, budget):
    r = jpeg_at_bytes(rgb, budget)
    assert r.fits and r.bytes <= budget
    size, decoded = jpeg(rgb, r.quality)
    assert r.bytes == size
    if r.quality < 100:
        assert jpeg(rgb, r.quality + 1)[0] > budget
    np.testing.assert_array_equal(r.rgb, decoded)
    assert r.bits_per_pixel == pytest.approx(8 * r.bytes / 96**2)
    assert (r.psnr, r.ssim) == (psnr(rgb, decoded), ssim(rgb, decoded))
    assert "rgb" not in r.to_json() and r.to_json()["quality"] == r.quality


def test_jpeg_at_a_budget_too_small_reports_quality_one(rgb):
    r = jpeg_at_bytes(rgb, 500)  # the headers alone take ~600 bytes
    assert not r.fits and r.quality == 1 and r.bytes > 500


def test_jpeg_curve_gains_rate_and_quality(rgb):
    curve = np.array(jpeg_curve(rgb, (10, 50, 95)))
    assert curve.shape == (3, 3)
    assert np.all(np.diff(curve[:, 0]) > 0) and np.all(np.diff(curve[:, 1]) > 0)
