"""SSIM conventions: what each one scores, the blur reference, and the CLI."""

import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from qkvae.metrics import PSNR_CAP, ssim
from analysis.ssim_conventions import CONVENTIONS, blurred, by_convention, main, report

DATA_RANGE_2 = "floats in [0, 1], data_range 2 (scikit-image < 0.20 default), 7x7 uniform, R, G, B"


@pytest.fixture
def photo_and_noisy():
    photo = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((96, 96)))
    noise = np.random.default_rng(0).normal(0, 6, photo.shape)
    return photo, np.clip(np.round(photo + noise), 0, 255).astype(np.uint8)


def test_identical_images_score_one_under_every_convention(rgb):
    result = by_convention(rgb[None], rgb[None])
    assert result["psnr"] == PSNR_CAP
    assert result["ssim"] == pytest.approx(dict.fromkeys(CONVENTIONS, 1.0))


def test_ours_is_the_project_metric_and_data_range_2_scores_higher(photo_and_noisy):
    photo, noisy = photo_and_noisy
    scores = by_convention(photo[None], noisy[None])["ssim"]
    assert next(iter(scores.values())) == ssim(photo, noisy)
    same_window = "uint8, data_range 255, 7x7 uniform window (scikit-image default), R, G, B"
    assert scores[DATA_RANGE_2] > scores[same_window] + 0.01


def test_blur_stays_within_each_image_and_grows_with_sigma(photo_and_noisy):
    photo, _ = photo_and_noisy
    flat = np.full_like(photo, 128)
    out = blurred(np.stack([flat, photo]), 0.6)
    assert out.dtype == np.uint8 and out.shape == (2, 96, 96, 3)
    assert np.array_equal(out[0], flat)  # nothing leaks across the batch axis
    result = report(photo[None], photo[None], sigmas=(0.5, 1.0))
    assert result["reconstruction"]["psnr"] == PSNR_CAP
    assert result["gaussian blur sigma 0.5"]["psnr"] > result["gaussian blur sigma 1.0"]["psnr"]


def test_cli_reports_every_convention_and_explains_bad_paths(weights_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(skimage.data.coffee()).save(data / "coffee.png")
    assert main(["--data", str(data), "--weights", str(weights_dir), "--json", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert set(result["reconstruction"]["ssim"]) == set(CONVENTIONS)
    assert "1 images" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "missing"), "--weights", str(weights_dir)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
