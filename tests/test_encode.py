"""The fast encode path gives exactly the ids of a plain eager fp32 reference, on real images too.

The reference below rebuilds the encoder's forward from the model's own modules, out of place and
on the whole batch at once, as the model computed it before ``encode`` ran in chunks with in-place
activations. FSQ rounding turns a float difference of one unit in the last place into a
different id, so ids are compared one for one, never with a tolerance.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import qkvae.model
from qkvae import QKVAE, fsq, load_image, load_qkvae
from qkvae.model import ENCODE_CHUNK, MEMORY_FORMAT

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def reference_latents(model: QKVAE, x: torch.Tensor) -> torch.Tensor:
    enc = model.encoder
    h = enc.down(enc.conv_in(x))
    for b in enc.blocks:
        h = h + b.conv2(F.silu(b.norm2(b.conv1(F.silu(b.norm1(h))))))
    return enc.conv_out(F.silu(enc.norm_out(h)))  # (B, 5, 48, 48)


@torch.no_grad()
def reference_ids(model: QKVAE, x: torch.Tensor) -> torch.Tensor:
    z = reference_latents(model, x).permute(0, 2, 3, 1)  # (B, 48, 48, 5)
    levels = model.config.levels
    return fsq.codes_to_indices(fsq.quantize(z, levels), levels).flatten(1)


def real_images(folder: str, limit: int | None = None) -> torch.Tensor:
    paths = sorted(p for p in (DATA / folder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    return torch.stack([load_image(p) for p in paths[:limit]])


@pytest.fixture(scope="module")
def shipped() -> QKVAE:
    return load_qkvae(device="cpu")


@pytest.mark.parametrize("batch", [1, 8, ENCODE_CHUNK + 3])
def test_seeded_model_ids_equal_the_reference(batch):
    torch.manual_seed(0)
    model = QKVAE().to(memory_format=MEMORY_FORMAT).eval()
    x = torch.rand(batch, 3, 96, 96) * 2 - 1
    assert torch.equal(model.encode(x), reference_ids(model, x))


def test_contiguous_weights_give_the_reference_ids(model):
    """The conftest model keeps NCHW weights."""
    x = torch.rand(ENCODE_CHUNK + 1, 3, 96, 96) * 2 - 1
    assert torch.equal(model.encode(x), reference_ids(model, x))


@pytest.mark.skipif(not (DATA / "stl10-samples").is_dir(), reason="needs ../shared/data/stl10-samples")
@pytest.mark.parametrize("chunk", [8, ENCODE_CHUNK])
def test_stl10_sample_ids_equal_the_reference_id_for_id(shipped, chunk, monkeypatch):
    monkeypatch.setattr(qkvae.model, "ENCODE_CHUNK", chunk)  # as bench.encode tries other sizes
    x = real_images("stl10-samples")
    assert len(x) == 80
    ids = shipped.encode(x)
    assert ids.shape == (80, 2304)
    assert torch.equal(ids, reference_ids(shipped, x))
    # ... whatever the input's memory format (the weights are channels-last, as loaded) ...
    assert torch.equal(shipped.encode(x.contiguous(memory_format=torch.channels_last)), ids)
    # ... and one image at a time, as the app and `qkvae.inference` encode them
    assert torch.equal(torch.cat([shipped.encode(x[i:i + 1]) for i in range(0, 80, 9)]), ids[::9])


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "val").is_dir(), reason="needs ../shared/data/val")
def test_val_photo_ids_equal_the_reference_id_for_id(shipped):
    x = real_images("val")
    assert len(x) > 500
    for batch in x.split(64):
        assert torch.equal(shipped.encode(batch), reference_ids(shipped, batch))


def reference_forward(model: QKVAE, x: torch.Tensor) -> torch.Tensor:
    """The training path, out of place: straight-through FSQ, then the decoder."""
    z = reference_latents(model, x).permute(0, 2, 3, 1)
    dec = model.decoder
    h = dec.conv_in(fsq.quantize(z, model.config.levels).permute(0, 3, 1, 2))
    for b in dec.blocks:
        h = h + b.conv2(F.silu(b.norm2(b.conv1(F.silu(b.norm1(h))))))
    h = F.silu(dec.up_conv(F.interpolate(h, scale_factor=2, mode="nearest")))
    return torch.tanh(dec.conv_out(F.silu(dec.norm_out(h))))


def test_training_forward_and_gradients_equal_the_out_of_place_reference():
    """The in-place activations and residual adds change no value and no gradient."""
    torch.manual_seed(0)
    model = QKVAE()
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    x_hat = model(x)
    x_hat.square().mean().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    x_ref = reference_forward(model, x)
    x_ref.square().mean().backward()
    assert torch.equal(x_hat, x_ref)
    for g, p in zip(got, model.parameters(), strict=True):
        assert torch.equal(g, p.grad)
