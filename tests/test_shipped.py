"""The shipped artifacts agree with each other: weights, their reference statistics, the examples' PSNRs."""

import json

import numpy as np
import pytest

from analysis.ood import OUT_OF_DISTRIBUTION, UNUSUAL
from analysis.reference import REFERENCE_PATH, load_reference
from analysis.stress import rescale
from qkvae import load_image, load_qkvae, reconstruct, reconstruction_psnr
from qkvae.image import to_tensor, to_uint8
from qkvae.weights import ASSETS, WEIGHTS_NAME, file_sha256


def test_reference_file_belongs_to_the_shipped_weights():
    sha = file_sha256(ASSETS / WEIGHTS_NAME)
    assert load_reference(weights_sha256=sha).weights_sha256 == sha
    assert REFERENCE_PATH.stat().st_size < 5_000_000


def test_the_app_uses_the_reference_files_thresholds():
    from qkvae_app.demo import build_demo
    from qkvae_app.settings import Settings

    assert build_demo(Settings()).studio.thresholds == load_reference().calibration.thresholds


def test_the_shipped_score_flags_text_and_texture_and_passes_the_photos():
    """The face example is a photo too (of a person, which STL-10 lacks): its score is not asserted."""
    model = load_qkvae(device="cpu")
    reference = load_reference()
    labels = {}
    for path in sorted((ASSETS / "examples").glob("*.png")):
        x = load_image(path)
        labels[path.stem] = reference.score(to_uint8(x), model.encode(x[None])[0]).verdict.label
    assert labels["ood-text"] == labels["ood-texture"] == OUT_OF_DISTRIBUTION
    assert labels["ood-logo"] in (UNUSUAL, OUT_OF_DISTRIBUTION)
    assert all(label != OUT_OF_DISTRIBUTION for name, label in labels.items() if name.startswith("photo-")), labels


def test_the_shipped_score_ranks_a_grey_or_enlarged_photo_above_the_photo_it_came_from():
    """Photo-like OOD images: a grey, X-ray-like copy of a photo and a 2x zoom (its centre enlarged,
    the card's "very large structures") each score higher than the photo; the zoom far out on the
    spectrum test. (Grey alone is not rare in colour: 5 % of the ImageNet calibration photos are grey.)"""
    model = load_qkvae(device="cpu")
    reference = load_reference()
    for path in sorted((ASSETS / "examples").glob("photo-*.png")):
        rgb = to_uint8(load_image(path))
        grey = np.repeat(rgb.mean(axis=-1, keepdims=True), 3, axis=-1).round().astype(np.uint8)
        scores = {name: reference.score(a, model.encode(to_tensor(a)[None])[0])
                  for name, a in (("photo", rgb), ("grey", grey), ("zoomed", rescale(rgb, 2)))}
        assert scores["grey"].score > scores["photo"].score, path.name
        assert scores["zoomed"].score > scores["photo"].score, path.name
        assert scores["zoomed"].percentiles["scale"] > max(95.0, scores["photo"].percentiles["scale"]), path.name


def test_shipped_weights_reach_the_documented_psnr_on_the_examples():
    documented = json.loads((ASSETS / "examples.json").read_text())["psnr"]
    assert sorted(documented) == sorted(p.name for p in (ASSETS / "examples").glob("*.png"))
    model = load_qkvae(device="cpu")
    for name, expected in documented.items():
        x = load_image(ASSETS / "examples" / name)
        _, x_hat = reconstruct(model, x)
        assert reconstruction_psnr(x, x_hat) == pytest.approx(expected, abs=0.01), name
