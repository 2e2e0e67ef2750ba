"""Shared fixtures: a seeded random-init model saved to disk, and small deterministic images."""

import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import QKVAE, save_qkvae


@pytest.fixture(scope="session")
def model() -> QKVAE:
    torch.manual_seed(0)
    return QKVAE().eval()


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory, model):
    """A folder holding model.safetensors + config.json of the seeded model."""
    return save_qkvae(model, tmp_path_factory.mktemp("weights"))


@pytest.fixture
def rgb() -> np.ndarray:
    """A 96x96 uint8 image with smooth gradients and an edge."""
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.stack([xx * 2.5, yy * 2.5, ((xx + yy) % 48) * 5], axis=-1)
    img[30:60, 30:60] = (250, 20, 20)
    return img.astype(np.uint8)


def smooth_photos(folder, count: int, seed: int):
    """``count`` 160x128 PNGs of smooth random colour fields (bicubic blow-ups of 5x4 noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
        small.resize((160, 128), Image.Resampling.BICUBIC).save(folder / f"photo_{i:03d}.png")
    return folder


@pytest.fixture(scope="session")
def ood_reference_path(tmp_path_factory, weights_dir):
    """An OOD reference for the seeded model, made by the ``analysis.reference`` CLI on smooth fields."""
    from analysis import reference

    root = tmp_path_factory.mktemp("reference")
    out = root / "ood_reference.npz"
    args = ["--data", str(smooth_photos(root / "train", 24, 0)), "--calibration", str(smooth_photos(root / "val", 12, 1)),
            "--calibration-prefix", "", "--out", str(out), "--weights", str(weights_dir), "--device", "cpu"]
    assert reference.main(args) == 0
    return out
