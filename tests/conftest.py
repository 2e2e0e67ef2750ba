"""Shared fixtures: a seeded random-init model saved to disk, small deterministic images, and an
offline Hugging Face Hub cache that tests fill with repos."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from qkvae import QKVAE, QKVAEConfig, save_qkvae
from tests.helpers import smooth_photos

# A config unlike QKVAE-1m's in every field the tool must follow: width, depth and FSQ levels (so
# the codebook size, 1,000, and the latent dimension, 4).
TINY_CONFIG = QKVAEConfig(levels=(8, 5, 5, 5), channels=16, num_res_blocks=1)


@pytest.fixture(scope="session")
def model() -> QKVAE:
    torch.manual_seed(0)
    return QKVAE().eval()


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory, model):
    """A folder holding model.safetensors + config.json of the seeded model."""
    return save_qkvae(model, tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory):
    """A folder holding model.safetensors + config.json of a seeded random-init ``TINY_CONFIG`` model."""
    torch.manual_seed(1)
    return save_qkvae(QKVAE(TINY_CONFIG).eval(), tmp_path_factory.mktemp("tiny-weights"))


@pytest.fixture
def rgb() -> np.ndarray:
    """A 96x96 uint8 image with smooth gradients and an edge."""
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.stack([xx * 2.5, yy * 2.5, ((xx + yy) % 48) * 5], axis=-1)
    img[30:60, 30:60] = (250, 20, 20)
    return img.astype(np.uint8)


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


class FakeHub:
    """A Hugging Face Hub cache laid out as huggingface_hub lays it out, filled by the tests:
    ``<cache>/{models,datasets}--OWNER--NAME/{blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/<ref>}``."""

    def __init__(self, cache: Path):
        self.cache = cache

    def add(self, repo_id: str, files: dict, repo_type: str = "model", refs=("main",)) -> str:
        """Cache ``files`` (repo path -> bytes or a local Path) as one commit; returns its hash."""
        contents = {name: data.read_bytes() if isinstance(data, Path) else data for name, data in files.items()}
        commit = hashlib.sha1(b"".join(name.encode() + data for name, data in sorted(contents.items()))).hexdigest()
        repo = self.cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
        for name, data in contents.items():
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = repo / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        for ref in refs:
            (repo / "refs").mkdir(parents=True, exist_ok=True)
            (repo / "refs" / ref).write_text(commit)
        return commit


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    """An empty Hub cache, with huggingface_hub pointed at it and offline (no network is ever tried)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    for name, value in {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)  # for subprocesses
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # huggingface_hub read the environment on import
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return FakeHub(cache)
