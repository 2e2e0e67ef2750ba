"""analysis.stress and analysis.corruptions: known answers of the stress suite on the shipped
weights and photos (shift 0 and 2 px, severity 0, rounding), and the CLI's output."""

import json
from pathlib import Path

import numpy as np
import pytest

from analysis import stress
from analysis.corruptions import CORRUPTIONS, corrupt
from qkvae import fsq, load_qkvae
from qkvae.image import to_tensor, to_uint8
from qkvae.metrics import psnr
from qkvae.pipeline import load_fitted

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"


@pytest.fixture(scope="module")
def shipped():
    return load_qkvae(device="cpu")


@pytest.fixture(scope="module")
def photos():
    fitted = load_fitted(EXAMPLES)
    keep = [i for i, n in enumerate(fitted.names) if Path(n).name.startswith("photo-")]
    return [fitted.names[i] for i in keep], fitted.images[keep]


def grid_ids(model, rgb) -> np.ndarray:
    return model.encode(to_tensor(np.stack(rgb))).numpy().reshape(-1, 48, 48)


def test_severity_0_changes_nothing_and_each_severity_changes_more(rgb):
    for name in CORRUPTIONS:
        assert np.array_equal(corrupt(rgb, name, 0), rgb), name
        errors = [np.abs(corrupt(rgb, name, s).astype(float) - rgb).mean() for s in (1, 5)]
        assert 0 < errors[0], name
    assert np.array_equal(corrupt(rgb, "gaussian_noise", 3, np.random.default_rng(1)),
                          corrupt(rgb, "gaussian_noise", 3, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="severity must be 0..5"):
        corrupt(rgb, "contrast", 6)
    with pytest.raises(ValueError, match="no corruption 'fog'"):
        corrupt(rgb, "fog", 1)


def test_shift_0_agrees_fully_and_2px_moves_the_ids_by_one_token(shipped, photos):
    _, images = photos
    rgb = images[0]
    clean, left, up = grid_ids(shipped, [rgb, stress.shifted(rgb, 2, 1), stress.shifted(rgb, 2, 0)])
    agreement, change = stress.shift_agreement(clean, clean, 0, 1, shipped.config.levels)
    assert agreement == 1.0 and not change.any()
    # the interior (away from the reflected edge and the GroupNorm's border effects) is the clean grid moved one token
    assert (left[4:-4, 4:-4] == clean[4:-4, 5:-3]).mean() > 0.97
    assert (up[4:-4, 4:-4] == clean[5:-3, 4:-4]).mean() > 0.97
    assert (left[4:-4, 4:-4] == clean[4:-4, 4:-4]).mean() < 0.5  # without undoing the move they differ
    agreement, change = stress.shift_agreement(clean, left, 2, 1, shipped.config.levels)
    assert agreement > 0.9 and change.shape == (5,) and (change < 0.1).all()
    odd, _ = stress.shift_agreement(clean, grid_ids(shipped, [stress.shifted(rgb, 1, 1)])[0], 1, 1, shipped.config.levels)
    assert odd < agreement  # half a token cannot be undone


def test_quantized_psnr_is_at_most_the_continuous_psnr_on_photos(shipped, photos):
    _, images = photos
    x = to_tensor(images)
    quantized = to_uint8(shipped.decode(shipped.encode(x)))
    continuous = to_uint8(shipped.decode_codes(shipped.continuous(x)))
    for a, q, c in zip(images, quantized, continuous, strict=True):
        assert psnr(a, q) <= psnr(a, c)


def test_token_noise_moves_one_digit_by_one_on_the_asked_share():
    levels = (8, 8, 8, 6, 5)
    ids = np.random.default_rng(0).integers(0, 15360, 2304)
    for fraction in stress.NOISE_FRACTIONS:
        noised = stress.token_noise(ids, fraction, "digit", levels, np.random.default_rng(1))
        hit = noised != ids
        assert hit.sum() == round(fraction * ids.size)
        delta = np.abs(fsq.indices_to_digits(noised, levels) - fsq.indices_to_digits(ids, levels))[hit]
        assert (delta.sum(axis=1) == 1).all()
    random = stress.token_noise(ids, 0.25, "random", levels, np.random.default_rng(1))
    assert 0.2 < (random != ids).mean() <= 0.25 and random.max() < 15360


def test_rescale_tiles_when_zooming_out_and_crops_the_centre_when_zooming_in(rgb):
    half = stress.rescale(rgb, 0.5)
    assert half.shape == rgb.shape and np.array_equal(half[:48, :48], half[48:, 48:])
    quarter = stress.rescale(rgb, 0.25)
    assert np.array_equal(quarter[:24, :24], quarter[72:, 24:48])
    assert np.array_equal(stress.rescale(rgb, 1.0), rgb)
    zoomed = stress.rescale(rgb, 2.0)
    assert np.array_equal(zoomed[46:50, 46:50], np.full_like(zoomed[46:50, 46:50], (250, 20, 20)))


@pytest.mark.slow
def test_the_cli_writes_the_five_families_and_their_plots(tmp_path, photos):
    out = tmp_path / "out"
    assert stress.main(["--data", str(EXAMPLES), "--out", str(out), "--limit", "2", "--device", "cpu"]) == 0
    result = json.loads((out / "stress.json").read_text())
    assert {"scale", "shift", "corruption", "quantization", "token_noise", "images"} <= set(result)
    assert len(result["images"]) == 2 and result["shift"][0]["agreement"]["median"] == 1.0
    assert len(result["corruption"]) == len(CORRUPTIONS) * 5
    q = result["quantization"]
    assert q["psnr_quantized"]["q25"] <= q["psnr_quantized"]["median"] <= q["psnr_quantized"]["q75"]
    for family in ("scale", "shift", "corruption", "quantization", "token_noise"):
        assert (out / f"stress_{family}.png").stat().st_size > 1000


def test_the_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert stress.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
