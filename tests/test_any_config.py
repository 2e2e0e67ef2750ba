"""Any QKVAEConfig, everywhere: a checkpoint of another width, depth and FSQ levels (codebook 1,000,
latent dim 4) goes through encode/decode, token files, the CLIs, shards, the LM export, analysis
and plots, with its own sizes; the OOD reference made for other weights is refused cleanly."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from analysis import evaluate, plots
from analysis.codebook import CodebookStats
from analysis.reference import ReferenceFileError, load_reference
from analysis.report import analyze_image
from conftest import TINY_CONFIG, smooth_photos
from qkvae import inference, load_image, load_qkvae, load_tokens, save_tokens, tokenize
from qkvae.lm_export import export_lm
from qkvae.tokens import lm_vocab, read_shards, validate_indices
from qkvae.weights import weights_fingerprint

CODEBOOK = 1000


@pytest.fixture(scope="module")
def tiny(tiny_weights_dir):
    return load_qkvae(tiny_weights_dir, device="cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return smooth_photos(tmp_path_factory.mktemp("photos"), 6, 3)


def test_tiny_config_round_trips_through_the_weights_folder(tiny):
    assert tiny.config == TINY_CONFIG and tiny.config.codebook_size == CODEBOOK
    assert sum(p.numel() for p in tiny.parameters()) < 30_000


def test_encode_tokens_decode(tiny, photos, tmp_path):
    x = load_image(photos / "photo_000.png")
    ids = tiny.encode(x.unsqueeze(0))[0]
    assert ids.shape == (TINY_CONFIG.num_tokens,) and 0 <= int(ids.min()) and int(ids.max()) < CODEBOOK
    for suffix in (".npy", ".json"):
        path = save_tokens(ids.numpy(), tmp_path / f"t{suffix}", TINY_CONFIG)
        back = load_tokens(path, TINY_CONFIG)
        np.testing.assert_array_equal(back.ravel(), ids.numpy())
        torch.testing.assert_close(tiny.decode(torch.from_numpy(back)[None]), tiny.decode(ids[None]))
    with pytest.raises(ValueError, match="0..999"):
        validate_indices(np.full(TINY_CONFIG.num_tokens, CODEBOOK), TINY_CONFIG)


def test_inference_cli_encodes_and_decodes(tiny_weights_dir, photos, tmp_path, capsys):
    out, ids, again = tmp_path / "o.png", tmp_path / "ids.npy", tmp_path / "again.png"
    assert inference.main([str(photos / "photo_001.png"), str(tiny_weights_dir), str(out), "--tokens", str(ids)]) == 0
    assert f"codebook={CODEBOOK} " in capsys.readouterr().out
    assert inference.main(["--decode", str(ids), str(tiny_weights_dir), str(again)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_tokenize_shards_and_lm_export(tiny, tiny_weights_dir, photos, tmp_path):
    out = tmp_path / "tokens"
    assert tokenize.main([str(photos), "--out", str(out), "--weights", str(tiny_weights_dir), "--device", "cpu",
                          "--workers", "0"]) == 0
    shards = read_shards(out)
    assert json.loads(shards.metadata["levels"]) == list(TINY_CONFIG.levels)
    assert int(shards.metadata["codebook_size"]) == CODEBOOK
    x = load_image(photos / "photo_002.png")
    np.testing.assert_array_equal(shards.tokens[2], tiny.encode(x.unsqueeze(0))[0].numpy())

    summary = export_lm(out, 100, tmp_path / "train.bin")
    side = json.loads(summary.sidecar.read_text())
    vocab = lm_vocab(100, TINY_CONFIG)
    assert side["vocab_size"] == vocab.vocab_size == 100 + CODEBOOK + 3
    assert side["codebook_size"] == CODEBOOK and side["dtype"] == "uint16"
    g = TINY_CONFIG.grid_size
    seqs = np.fromfile(tmp_path / "train.bin", dtype=np.uint16).reshape(6, 2 + g * (g + 1))
    assert seqs[:, 0].tolist() == [vocab.img_start] * 6
    np.testing.assert_array_equal(seqs[2, 1:1 + g], shards.tokens[2][:g].astype(np.int64) + 100)


def test_evaluate_cli_refuses_the_shipped_reference_and_follows_the_codebook(tiny_weights_dir, photos, tmp_path, capsys):
    out = tmp_path / "eval"
    assert evaluate.main(["--data", str(photos), "--weights", str(tiny_weights_dir), "--out", str(out),
                          "--device", "cpu", "--ood", "none", "--precision-images", "2"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["setup"]["reference"] is None  # the shipped one was made for other weights
    assert results["aggregate"]["codebook"]["max_entropy_bits"] == pytest.approx(np.log2(CODEBOOK))
    assert (out / "usage_curve.png").is_file() and (out / "level_histograms.png").is_file()


def test_a_reference_for_other_weights_is_refused(ood_reference_path, tiny):
    with pytest.raises(ReferenceFileError, match="weights"):
        load_reference(ood_reference_path, weights_fingerprint(tiny)[1])


def test_report_and_plots_follow_the_config(tiny, rgb):
    from qkvae.image import to_tensor

    report = analyze_image(tiny, to_tensor(rgb[None])[0], None)
    g = TINY_CONFIG.grid_size
    assert report.indices.shape == (g, g) and report.ood_map is None
    assert plots.token_heatmap(report.indices, CODEBOOK).shape == (g, g, 3)
    stats = CodebookStats(TINY_CONFIG.levels, TINY_CONFIG.num_tokens)
    stats.update(report.indices)
    result = stats.result()
    assert len(result.level_histograms) == len(TINY_CONFIG.levels)
    plots.level_histograms_figure(result.level_histograms, TINY_CONFIG.levels)
    plots.usage_curve_figure(result.usage_curve, CODEBOOK)


def test_training_follows_the_image_size_of_the_config(photos, tmp_path, monkeypatch):
    from qkvae import train

    shapes, real_step = [], train.train_step
    monkeypatch.setattr(train, "train_step", lambda model, x, *a: shapes.append(tuple(x.shape)) or real_step(model, x, *a))
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"image_size": 64, "channels": 16, "num_res_blocks": 1}))
    train.main(["--config", str(config), "--data", str(photos), "--out", str(tmp_path / "run"), "--steps", "2",
                "--batch-size", "2", "--device", "cpu", "--precision", "fp32", "--eval", str(photos)])
    assert shapes == [(2, 3, 64, 64)] * 2
    model = load_qkvae(tmp_path / "run", "cpu")
    assert model.config.image_size == 64 and model.config.num_tokens == 32 * 32
    assert json.loads((tmp_path / "run" / "eval.json").read_text())[0]["images"] == 6


def test_tokenize_with_metrics_leaves_out_the_ood_score_without_a_reference(tiny_weights_dir, photos, tmp_path, capsys):
    from analysis import tokenize as analysis_tokenize

    out = tmp_path / "tokens"
    assert analysis_tokenize.main([str(photos), "--out", str(out), "--weights", str(tiny_weights_dir), "--device", "cpu",
                                   "--workers", "0", "--with-metrics"]) == 0
    assert "note: no ood_score column" in capsys.readouterr().err
    import pyarrow.parquet as pq

    assert {"psnr", "ssim"} <= set(pq.read_schema(out / "shard-00000.parquet").names)
    assert "ood_score" not in pq.read_schema(out / "shard-00000.parquet").names


def test_an_ood_reference_fitted_for_the_tiny_weights_scores_them(tiny, tiny_weights_dir, tmp_path, rgb):
    from analysis import reference

    args = ["--data", str(smooth_photos(tmp_path / "train", 24, 0)), "--calibration",
            str(smooth_photos(tmp_path / "val", 12, 1)), "--calibration-prefix", "", "--out", str(tmp_path / "ref.npz"),
            "--weights", str(tiny_weights_dir), "--device", "cpu"]
    assert reference.main(args) == 0
    ref = load_reference(tmp_path / "ref.npz", weights_fingerprint(tiny)[1])
    assert ref.prior.levels == TINY_CONFIG.levels and len(ref.probs) == CODEBOOK
    from qkvae.image import to_tensor

    ids = tiny.encode(to_tensor(rgb[None]))[0].numpy()
    assert np.isfinite(ref.score(rgb, ids).score)
    assert ref.token_map(rgb, ids).shape == (TINY_CONFIG.grid_size, TINY_CONFIG.grid_size)
