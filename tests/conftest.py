"""Shared fixtures: a seeded random-init model saved to disk, and small deterministic images."""

import numpy as np
import pytest
import torch

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
