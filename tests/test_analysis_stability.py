"""analysis.stability on the seeded random-init model: re-encode agreement and fp32 vs bf16."""

import numpy as np
import pytest
import torch

from analysis.stability import precision_agreement, reencode_stability, token_agreement
from qkvae.image import to_tensor, to_uint8


def test_token_agreement_counts_equal_positions_per_image():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = np.array([[1, 2, 0, 4], [0, 0, 0, 0]])
    np.testing.assert_allclose(token_agreement(a, b), [0.75, 0.0])


def test_reencode_stability_of_one_image_and_of_a_batch(model, rgb):
    x = to_tensor(rgb)
    single = reencode_stability(model, x)
    assert isinstance(single, float) and 0.0 <= single <= 1.0
    batch = reencode_stability(model, torch.stack([x, x.flip(-1)]))
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(single, abs=0.01)


def test_reencode_stability_is_the_agreement_with_the_reencoded_8bit_reconstruction(model, rgb):
    x = to_tensor(rgb)
    indices = model.encode(x[None])
    x_hat = model.decode(indices)
    again = model.encode(to_tensor(to_uint8(x_hat)))
    expected = (again == indices).double().mean().item()
    assert reencode_stability(model, x, indices, x_hat[0]) == pytest.approx(expected)
    assert reencode_stability(model, x) == pytest.approx(expected, abs=0.01)


def test_precision_agreement_reports_tokens_and_psnr(model, rgb):
    r = precision_agreement(model, to_tensor(rgb))
    assert set(r) == {"agreement", "tokens_changed", "psnr_fp32", "psnr_bf16", "psnr_delta"}
    assert 0.0 <= r["agreement"] <= 1.0
    assert r["tokens_changed"] == round((1 - r["agreement"]) * 2304)
    assert r["psnr_delta"] == pytest.approx(r["psnr_bf16"] - r["psnr_fp32"])
    assert abs(r["psnr_delta"]) < 1.0
