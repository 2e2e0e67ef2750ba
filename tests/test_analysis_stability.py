"""analysis.stability on the seeded random-init model: re-encode agreement and fp32 vs bf16."""

import numpy as np
import pytest
import torch

from analysis.stability import PrecisionAgreement, precision_agreement, reencode_stability, token_agreement
from qkvae.metrics import psnr
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
    assert batch[0] == single  # the ids do not depend on the batch


def test_reencode_stability_is_the_agreement_with_the_reencoded_8bit_reconstruction(model, rgb):
    x = to_tensor(rgb)
    indices = model.encode(x[None])
    x_hat = model.decode(indices)
    again = model.encode(to_tensor(to_uint8(x_hat)))
    expected = (again == indices).double().mean().item()
    assert reencode_stability(model, x, indices, x_hat[0]) == expected
    assert reencode_stability(model, x) == expected


def test_precision_agreement_reports_tokens_and_psnr(model, rgb):
    x = to_tensor(rgb)
    r = precision_agreement(model, x)
    assert isinstance(r, PrecisionAgreement) and 0.0 <= r.agreement <= 1.0
    assert r.tokens_changed == round((1 - r.agreement) * 2304)
    assert r.psnr_fp32 == psnr(rgb, to_uint8(model.decode(model.encode(x[None]))[0]))
    assert r.psnr_delta == r.psnr_bf16 - r.psnr_fp32 and abs(r.psnr_delta) < 1.0
    batch = precision_agreement(model, torch.stack([x, x.flip(-1)]))
    assert batch.image(0)["psnr_fp32"] == pytest.approx(r.psnr_fp32)  # decoding in a batch moves the last digits
    assert batch.means()["agreement"] == np.mean(batch.agreement)
