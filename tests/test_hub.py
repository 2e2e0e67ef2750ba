"""Weights and datasets from the Hugging Face Hub, read offline from a cache laid out as
huggingface_hub lays it out (tests/conftest.py ``fake_hub``), built from our own files: never the network."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import WeightsError, load_qkvae
from qkvae.inference import main as inference_main
from qkvae.sources import SourceError, open_source
from qkvae.weights import ASSETS
from tests.helpers import image_parquet

REPO = "Glint-Research/QKVAE-1m"


def _same_weights(a, b) -> bool:
    return all(torch.equal(p, b.state_dict()[k]) for k, p in a.state_dict().items())


@pytest.fixture
def hub_weights(fake_hub, weights_dir):
    """The seeded model on main (with its config), the shipped weights alone at a later commit tagged v2."""
    seeded = fake_hub.add(REPO, {"model.safetensors": weights_dir / "model.safetensors",
                                 "config.json": weights_dir / "config.json"})
    shipped = fake_hub.add(REPO, {"model.safetensors": ASSETS / "model.safetensors"}, refs=("v2",))
    return seeded, shipped


def test_weights_load_from_the_cache_offline(hub_weights, model):
    loaded = load_qkvae(f"hf://{REPO}", device="cpu")
    assert _same_weights(loaded, model)
    assert loaded.weights_file.path.name == "model.safetensors"
    assert f"models--{REPO.replace('/', '--')}" in str(loaded.weights_file.path)


def test_a_revision_pins_the_weights(hub_weights, model):
    seeded, shipped = hub_weights
    shipped_model = load_qkvae(device="cpu")
    assert _same_weights(load_qkvae(f"hf://{REPO}@{shipped}", device="cpu"), shipped_model)
    assert _same_weights(load_qkvae(f"hf://{REPO}@v2", device="cpu"), shipped_model)  # a tag, without config.json
    assert _same_weights(load_qkvae(f"hf://{REPO}@{seeded}", device="cpu"), model)
    assert not _same_weights(shipped_model, model)


def test_a_file_inside_the_repo(fake_hub, weights_dir, model):
    fake_hub.add(REPO, {"runs/a/model.safetensors": weights_dir / "model.safetensors"})
    assert _same_weights(load_qkvae(f"hf://{REPO}/runs/a/model.safetensors", device="cpu"), model)
    assert _same_weights(load_qkvae(f"hf://{REPO}/runs/a", device="cpu"), model)


@pytest.mark.parametrize("spec, message", [
    (f"hf://{REPO}", "cannot be found in the local Hugging Face cache"),
    (f"hf://{REPO}@v9", "cannot be found in the local Hugging Face cache"),
    ("hf://datasets/tanganke/stl10", "names a dataset, not a model"),
    ("hf://", "Invalid HF URI"),
])
def test_weights_that_cannot_be_had_say_why(fake_hub, spec, message):
    with pytest.raises(WeightsError, match=message):
        load_qkvae(spec, device="cpu")


def test_offline_without_cache_says_how_to_fix_it(fake_hub):
    with pytest.raises(WeightsError) as e:
        load_qkvae(f"hf://{REPO}@v1", device="cpu")
    text = str(e.value)
    for needed in ("HF_HUB_OFFLINE=1", str(fake_hub.cache), f"hf download {REPO} --revision v1",
                   "preload_from_hub", "local weights file or folder"):
        assert needed in text


def test_the_cli_takes_a_hub_reference(hub_weights, tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.full((96, 96, 3), 120, np.uint8)).save(image)
    assert inference_main([str(image), f"hf://{REPO}", str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").is_file()
    assert inference_main([str(image), "hf://nobody/nothing", str(tmp_path / "out.png")]) == 2
    assert "cannot be found in the local Hugging Face cache" in capsys.readouterr().err


@pytest.fixture
def hub_dataset(fake_hub, rgb):
    """A dataset repo in the ``datasets`` layout: 5 test images (labelled), 3 train images."""
    test = [np.roll(rgb, 7 * i, axis=1) for i in range(5)]
    commit = fake_hub.add("someone/stl10", {
        "README.md": b"---\nlicense: other\n---\n",
        "data/test-00000-of-00001.parquet": image_parquet(test, labels=[3, 1, 4, 1, 5]),
        "data/train-00000-of-00001.parquet": image_parquet([rgb] * 3, labels=[0, 0, 0]),
    }, repo_type="dataset")
    return test, commit


def test_a_dataset_split_opens_from_the_cache(hub_dataset):
    test, commit = hub_dataset
    for spec in ("hf://datasets/someone/stl10", f"hf://datasets/someone/stl10@{commit}"):
        source = open_source(spec, split="test")
        assert len(source) == 5 and source.labels == [3, 1, 4, 1, 5]
        assert np.array_equal(source[2].rgb, test[2])
        assert spec in source.description
    assert len(open_source("hf://datasets/someone/stl10", split="train")) == 3
    assert len(open_source("hf://datasets/someone/stl10/data", split="test")) == 5  # a folder of the repo
    assert len(open_source("hf://datasets/someone/stl10/data/train-00000-of-00001.parquet")) == 3  # one file


@pytest.mark.parametrize("spec, split, message", [
    ("hf://datasets/someone/stl10", "validation", "no Parquet files of split 'validation'"),
    ("hf://datasets/someone/other", "test", "cannot be found in the local Hugging Face cache"),
    ("hf://datasets/someone/other", "test", "hf download someone/other --repo-type dataset"),
    ("hf://someone/stl10", "test", "names a model, not a dataset"),
])
def test_datasets_that_cannot_be_had_say_why(hub_dataset, spec, split, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec, split=split)


def test_import_qkvae_leaves_the_hub_and_pyarrow_alone():
    code = ("import sys, qkvae, qkvae.sources, qkvae.weights; "
            "print(sorted(m for m in ('huggingface_hub', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_evaluate_reads_a_hub_dataset_split(hub_dataset, weights_dir, tmp_path, capsys):
    from analysis import evaluate

    out = tmp_path / "eval"
    assert evaluate.main(["--data", "hf://datasets/someone/stl10", "--split", "test", "--weights", str(weights_dir),
                          "--ood", "none", "--precision-images", "0", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["aggregate"]["num_images"] == 5
    assert results["setup"]["data"] == "hf://datasets/someone/stl10" and results["setup"]["split"] == "test"
    assert "5 images" in capsys.readouterr().out


def test_tokenize_reads_a_hub_dataset_split(hub_dataset, weights_dir, tmp_path):
    from qkvae import tokenize
    from qkvae.tokens import read_shards

    out = tmp_path / "tokens"
    assert tokenize.main(["hf://datasets/someone/stl10", "--split", "test", "--out", str(out),
                          "--weights", str(weights_dir), "--workers", "0", "--device", "cpu"]) == 0
    shards = read_shards(out)
    assert shards.tokens.shape == (5, 2304) and list(shards.labels) == [3, 1, 4, 1, 5]
