"""The probe LM: a tiny one trains on a tiny synthetic shard (loss falls), scores, samples, saves
and loads; its CLI writes a run folder and refuses bad input with exit 2."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from qkvae import QKVAE  # noqa: E402
from qkvae.lm.__main__ import main, tile  # noqa: E402
from qkvae.lm.probe import Probe, ProbeConfig, bits_per_token, load_probe, sample_grids, sample_images, save_probe  # noqa: E402
from qkvae.lm.train_probe import train_probe  # noqa: E402
from qkvae.model import QKVAEConfig  # noqa: E402
from qkvae.shards import schema  # noqa: E402

SMALL = QKVAEConfig(image_size=16)  # an 8x8 grid: sequences of 2 + 8 * 9 ids
TINY = dict(hidden=32, layers=1, attention_heads=2, intermediate=64, window=16, image_size=SMALL.image_size)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_tokens(n: int, seed: int = 0) -> np.ndarray:
    """Grids of a few codes with structure: each row repeats one of 6 codes, shifted by the row."""
    rng = np.random.default_rng(seed)
    g = SMALL.grid_size
    base = rng.choice([3, 500, 777, 4000, 9000, 15000], size=(n, 1, 1))
    rows = (base + np.arange(g)[None, :, None]) % SMALL.codebook_size  # (n, g, 1)
    return np.broadcast_to(rows, (n, g, g)).reshape(n, -1).astype(np.uint16)


def write_shard(path, tokens):
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {"config": json.dumps(SMALL.to_dict())}
    table = pa.table({"image_id": [f"img{i}" for i in range(len(tokens))],
                      "tokens": pa.FixedSizeListArray.from_arrays(pa.array(tokens.ravel(), pa.uint16()), tokens.shape[1])},
                     schema=schema(meta, tokens.shape[1], with_label=False))
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("head", ["digits", "tied"])
def test_a_tiny_probe_learns_a_synthetic_shard(head):
    tokens = synthetic_tokens(32)
    config = ProbeConfig(head=head, **TINY)
    before = bits_per_token(Probe(config), tokens)  # what train_probe starts from (same seed)
    torch.manual_seed(0)
    probe, training = train_probe(tokens, config, max_steps=30, batch_size=4, peak_lr=1e-2)
    assert training.steps == 30 and training.window_ids == 2 * config.window + 1
    assert np.mean(training.losses[-5:]) < np.mean(training.losses[:5]) - 3
    after = bits_per_token(probe, synthetic_tokens(8, seed=1))
    assert after < before - 3


def test_bits_per_token_read_in_pieces_equal_one_pass():
    config = ProbeConfig(**{**TINY, "window": 4, "image_size": 32})  # 16x16 grid, 274 ids, reach 3
    probe = Probe(config)
    tokens = np.random.default_rng(0).integers(0, config.qkvae.codebook_size, (2, 256))
    from qkvae.lm.probe import sequences

    with torch.no_grad():
        nats, count = probe.nll(sequences(tokens, config))
    assert count == 2 * 256
    assert bits_per_token(probe, tokens) == pytest.approx(float(nats) / count / np.log(2), rel=1e-5)


def test_samples_follow_the_grid_and_decode(tmp_path):
    probe = Probe(ProbeConfig(**TINY))
    grids = sample_grids(probe, 3, seed=1)
    assert grids.shape == (3, SMALL.grid_size, SMALL.grid_size) and grids.max() < SMALL.codebook_size
    np.testing.assert_array_equal(grids, sample_grids(probe, 3, seed=1))
    images = sample_images(probe, 2, seed=1, model=QKVAE(SMALL).eval())
    assert images.shape == (2, SMALL.image_size, SMALL.image_size, 3) and images.dtype == np.uint8
    loaded = load_probe(save_probe(probe, tmp_path / "probe"))
    np.testing.assert_array_equal(sample_grids(loaded, 3, seed=1), sample_grids(probe.half().float(), 3, seed=1))
    with pytest.raises(ValueError, match="image_size"):
        sample_images(probe, 1, seed=0, model=QKVAE().eval())


def test_tile_lays_images_out_in_rows():
    images = np.stack([np.full((4, 4, 3), i, np.uint8) for i in range(5)])
    grid = tile(images, columns=3)
    assert grid.shape == (2 * 6 - 2, 3 * 6 - 2, 3)
    assert grid[6, 6, 0] == 4 and grid[4, 0, 0] == 255


def test_cli_trains_and_writes_a_run(tmp_path, capsys):
    shard = write_shard(tmp_path / "shard-00000.parquet", synthetic_tokens(16))
    val = write_shard(tmp_path / "val.parquet", synthetic_tokens(4, seed=2))
    out = tmp_path / "run"
    assert main(["train", "--shards", str(shard), "--val-shards", str(val), "--out", str(out), "--hidden", "32",
                 "--layers", "1", "--window", "16", "--steps", "5", "--batch-size", "4", "--samples", "0"]) == 0
    assert "trained a digits probe" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "training.json", "probe.json"}
    assert json.loads((out / "probe.json").read_text())["val_images"] == 4
    assert load_probe(out).config.image_size == SMALL.image_size


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["train", "--shards", str(tmp_path / "absent"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such folder of token shards") and err.count("\n") == 1


def test_shards_load_with_datasets_and_feed_the_layout(tmp_path):
    datasets = pytest.importorskip("datasets")
    from qkvae.lm import ImageVocab, ids_to_grid
    from qkvae.tokens import lm_sequences

    tokens = synthetic_tokens(6)
    write_shard(tmp_path / "shard-00000.parquet", tokens)
    vocab = ImageVocab.after(50257, SMALL)
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "shard-*.parquet"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    ds = ds.map(lambda b: {"input_ids": lm_sequences(np.stack(b["tokens"]), vocab.code_offset, vocab.config)},
                batched=True, remove_columns=ds.column_names)
    assert len(ds) == 6 and len(ds[0]["input_ids"]) == vocab.sequence_length
    np.testing.assert_array_equal(ids_to_grid(ds[3]["input_ids"], vocab).ravel(), tokens[3])


def test_the_shipped_probe_loads_and_its_card_states_its_numbers():
    from qkvae.weights import ASSETS

    folder = ASSETS / "lm_probe"
    probe = load_probe()
    assert probe.config.qkvae == QKVAEConfig()
    assert (folder / "model.safetensors").stat().st_size < 5 * 2**20
    card = (folder / "MODEL_CARD.md").read_text()
    comparison = json.loads((folder / "comparison.json").read_text())
    for key in ("probe_bits", "context_prior_bits", "unigram_bits"):
        assert f"{comparison[key]:.2f}" in card
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, QKVAEConfig().codebook_size, (1, 2304)))
    from qkvae.lm.probe import sequences

    with torch.no_grad():
        nats, count = probe.nll(sequences(ids.numpy(), probe.config)[:, :300])
    assert count > 0 and np.isfinite(float(nats))
