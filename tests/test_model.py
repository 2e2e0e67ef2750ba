"""The QKVAE-1m architecture: parameter count, shapes, dtypes, ranges of encode and decode."""

import torch

from qkvae import QKVAE, QKVAEConfig, fsq


def test_parameter_count_matches_the_card():
    model = QKVAE()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 1_063_304


def test_config_round_trip():
    config = QKVAEConfig()
    assert QKVAEConfig.from_dict(config.to_dict()) == config
    assert (config.grid_size, config.num_tokens, config.codebook_size) == (48, 2304, 15360)


def test_encode_shape_dtype_range(model):
    x = torch.rand(3, 3, 96, 96) * 2 - 1
    indices = model.encode(x)
    assert indices.shape == (3, 2304) and indices.dtype == torch.int64
    assert indices.min() >= 0 and indices.max() < 15360


def test_decode_accepts_flat_and_grid_ids(model):
    ids = torch.randint(0, 15360, (2, 2304))
    flat, grid = model.decode(ids), model.decode(ids.reshape(2, 48, 48))
    assert flat.shape == (2, 3, 96, 96) and flat.dtype == torch.float32
    assert torch.equal(flat, grid)
    assert flat.abs().max() <= 1.0


def test_encode_is_row_major_over_the_grid(model):
    """Id number 48 * r + c is the FSQ index of the code at grid row r, column c."""
    x = torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        codes = model.quantize(x)  # (1, 5, 48, 48)
    ids = model.encode(x)[0]
    for r, c in [(0, 0), (0, 47), (1, 0), (47, 5)]:
        assert ids[48 * r + c] == fsq.codes_to_indices(codes[0, :, r, c], model.config.levels)


def test_forward_matches_encode_then_decode(model):
    """Equal up to float error: the straight-through code z + (round(z) - z) is not bit-exact."""
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(model(x), model.decode(model.encode(x)), atol=1e-4)


def test_gradients_reach_the_encoder():
    model = QKVAE()
    x = torch.rand(1, 3, 96, 96) * 2 - 1
    model(x).square().mean().backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0


def test_continuous_latent_rounds_to_the_ids_and_decodes(model):
    """The pre-rounding latent, moved to the nearest grid point, is what ``encode`` gives; decoding
    it runs the same decoder as ``decode``."""
    torch.manual_seed(1)
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    continuous = model.continuous(x)
    assert continuous.shape == (2, 5, 48, 48) and continuous.dtype == torch.float32
    assert continuous.abs().max() <= 1 + 1e-3
    ids = model.encode(x)
    half = torch.tensor([4, 4, 4, 3, 2]).view(1, 5, 1, 1)
    rounded = (continuous * half).round() / half
    assert torch.equal(fsq.codes_to_indices(rounded.permute(0, 2, 3, 1), model.config.levels).flatten(1), ids)
    assert not torch.equal(rounded, continuous)
    assert torch.allclose(model.decode_codes(rounded), model.decode(ids), atol=1e-5)
    assert not torch.allclose(model.decode_codes(continuous), model.decode(ids))
