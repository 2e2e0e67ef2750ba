"""analysis.report.analyze_image on the seeded random-init model: every field, consistent figures."""

import numpy as np
import pytest
import torch

from qkvae.metrics import psnr
from analysis.ood import OODScore, histogram_kl
from analysis.rate import empirical_entropy_bits
from analysis.reference import load_reference
from analysis.report import analyze_image
from analysis.stability import reencode_stability
from qkvae.image import to_tensor


@pytest.fixture(scope="module")
def reference(ood_reference_path):
    return load_reference(ood_reference_path)


@pytest.fixture
def report(model, rgb, reference):
    return analyze_image(model, to_tensor(rgb), reference)


def test_maps_and_arrays_have_the_documented_shapes(report, rgb):
    assert report.indices.shape == (48, 48) and report.indices.dtype == np.int64
    assert report.x_hat.shape == (3, 96, 96)
    for image in (report.original, report.reconstruction, report.summary.rate.jpeg_equal_bytes.rgb):
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(report.original, rgb)
    assert report.pixel_error.shape == (96, 96) and report.token_error.shape == (48, 48)
    assert report.ood_map.shape == (48, 48)


def test_figures_agree_with_the_model_and_the_metrics(report, model, rgb, reference):
    ids = model.encode(to_tensor(rgb)[None]).reshape(48, 48).numpy()
    np.testing.assert_array_equal(report.indices, ids)
    assert report.summary.psnr == pytest.approx(psnr(rgb, report.reconstruction))
    assert report.pixel_error.mean() == pytest.approx(report.token_error.mean(), rel=1e-5)
    score = report.summary.ood_score
    assert isinstance(score, OODScore) and score == reference.score(rgb, ids)
    assert score.features.kl == pytest.approx(histogram_kl(ids, reference.probs))
    assert score.features.prior_bits == pytest.approx(reference.prior.surprisal(ids).mean())
    np.testing.assert_array_equal(report.ood_map, reference.token_map(rgb, ids))
    assert report.summary.rate.reference_bits == pytest.approx(empirical_entropy_bits(ids, reference.probs))
    assert report.summary.to_json()["ood_score"] == score.to_json()


def test_rate_jpeg_and_codebook_and_stability(report, model):
    rate = report.summary.rate
    assert rate.nominal_bits == pytest.approx(32041.48, abs=0.01)
    assert rate.jpeg_equal_bytes.bytes <= rate.nominal_bits / 8
    assert "rgb" not in report.summary.to_json()["rate"]["jpeg_equal_bytes"]
    assert report.codebook.num_images == 1 and report.codebook.num_tokens == 2304
    assert report.codebook.codes_seen == len(np.unique(report.indices))
    assert report.stability["reencode"] == reencode_stability(model, to_tensor(report.original))
    assert "precision" not in report.stability


def test_without_a_reference_or_stability_those_fields_are_none(model, rgb):
    r = analyze_image(model, to_tensor(rgb), None, stability=False)
    assert r.ood_map is None and r.summary.ood_score is None and r.stability is None
    assert r.summary.rate.reference_bits is None and "ood_score" not in r.summary.to_json()
    assert "reference_bits" not in r.summary.to_json()["rate"]


def test_analyze_image_does_not_need_gradients(model, rgb, reference):
    with torch.inference_mode():
        assert analyze_image(model, to_tensor(rgb), reference).indices.shape == (48, 48)
