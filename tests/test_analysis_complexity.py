"""analysis.complexity: the detail measures, the shipped expected-PSNR fit and the refit."""

import json

import numpy as np

from analysis import complexity
from analysis.complexity import Detail, ExpectedFit, detail, expectation, fit_expected, load_fit


def test_detail_is_zero_for_flat_images_and_grows_with_noise(rgb):
    flat = np.full((96, 96, 3), 128, dtype=np.uint8)
    noisy = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    d_flat, d_photo, d_noise = detail(flat), detail(rgb), detail(noisy)
    assert d_flat.gradient_energy == 0 and d_flat.png_bpp < 0.3
    assert d_flat.png_bpp < d_photo.png_bpp < d_noise.png_bpp > 20
    assert d_photo.gradient_energy < d_noise.gradient_energy


def test_the_shipped_fit_expects_less_of_more_detailed_images_and_the_residual_is_the_difference(rgb):
    fit = load_fit()
    assert fit.features and all(s < 0 for s in fit.slopes)
    made = json.loads(complexity.FIT_PATH.read_text())
    assert made["chosen"] in complexity.CANDIDATES and made["made"]["images"] > 100
    flat = np.full((96, 96, 3), 90, dtype=np.uint8)
    noisy = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert expectation(flat, 40).expected_psnr >= expectation(rgb, 30).expected_psnr > expectation(noisy, 15).expected_psnr
    e = expectation(rgb, 25.0)
    assert e.psnr_residual == 25.0 - e.expected_psnr
    assert complexity.expectation_fields(rgb, 25.0) == {"expected_psnr": e.expected_psnr, "psnr_residual": e.psnr_residual}


def test_the_refit_recovers_a_known_line_and_picks_the_feature_that_explains_psnr():
    g = np.random.default_rng(0)
    names, images, psnrs = [], [], []
    for k in range(40):
        sigma = g.uniform(2, 60)
        images.append(np.clip(128 + g.normal(0, sigma, (32, 32, 3)), 0, 255).astype(np.uint8))
        names.append(f"img_{k}.png")
        psnrs.append(50 - 8 * np.log10(detail(images[-1]).gradient_energy + 1))
    result = fit_expected(names, images, psnrs)
    held = result["candidates"]["gradient"]["held_out"]
    assert held["mae_db"] < 1e-6 and held["images"] == sum(complexity.held_out(n) for n in names) > 0
    assert result["chosen"] in ("gradient", "png+gradient")
    fit = ExpectedFit(**{k: tuple(v) if isinstance(v, list) else v for k, v in result["fit"].items()})
    assert abs(fit.predict(Detail(1.0, 99.0)) - 34.0) < 1e-6
    flattest = min(detail(a).gradient_energy for a in images)
    assert fit.predict(Detail(1.0, 0.0)) == fit.predict(Detail(1.0, flattest)) < 50  # clipped, not extrapolated
