"""The shipped artifacts agree with each other: weights, their reference statistics, the examples' PSNRs."""

import json

import pytest

from analysis.reference import load_reference
from qkvae import load_image, load_qkvae, reconstruct, reconstruction_psnr
from qkvae.weights import ASSETS, WEIGHTS_NAME, file_sha256


def test_reference_file_belongs_to_the_shipped_weights():
    assert load_reference()["weights_sha256"] == file_sha256(ASSETS / WEIGHTS_NAME)


def test_the_app_uses_the_reference_files_thresholds():
    import app

    assert app.THRESHOLDS == tuple(load_reference()["ood_thresholds"])


def test_shipped_weights_reach_the_documented_psnr_on_the_examples():
    documented = json.loads((ASSETS / "examples.json").read_text())["psnr"]
    assert sorted(documented) == sorted(p.name for p in (ASSETS / "examples").glob("*.png"))
    model = load_qkvae(device="cpu")
    for name, expected in documented.items():
        x = load_image(ASSETS / "examples" / name)
        _, x_hat = reconstruct(model, x)
        assert reconstruction_psnr(x, x_hat) == pytest.approx(expected, abs=0.01), name
