"""analysis.compare: two checkpoints on the same images, exact for a checkpoint against itself,
token agreement only when the ids mean the same codes, paired statistics, CompressAI's shape."""

import json

import bjontegaard
import numpy as np
import pytest
import torch

from analysis import compare, plots
from analysis.metrics import ms_ssim
from conftest import TINY_CONFIG, smooth_photos
from qkvae import QKVAE, QKVAEConfig, save_qkvae
from qkvae.weights import ASSETS


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return smooth_photos(tmp_path_factory.mktemp("photos"), 5, 7)


@pytest.fixture(scope="module")
def other_seed_dir(tmp_path_factory):
    torch.manual_seed(5)
    return save_qkvae(QKVAE().eval(), tmp_path_factory.mktemp("other-seed"))


def test_the_shipped_weights_against_themselves_give_exactly_0_and_1(photos, tmp_path, capsys):
    assert compare.main(["--a", str(ASSETS), "--b", str(ASSETS), "--data", str(photos), "--out", str(tmp_path),
                         "--device", "cpu"]) == 0
    assert "dPSNR +0.000 dB" in capsys.readouterr().out
    result = json.loads((tmp_path / "compare.json").read_text())
    s = result["summary"]
    assert s["delta_psnr"] == {"mean": 0.0, "low": 0.0, "high": 0.0} and s["delta_ssim"]["mean"] == 0.0
    assert s["token_agreement"] == 1.0 and s["digit_agreement"] == [1.0] * 5
    assert s["b_better"] == 0.0 and s["ties"] == 1.0 and s["wilcoxon_p"] == 1.0
    assert all(im["psnr_a"] == im["psnr_b"] and im["token_agreement"] == 1.0 for im in result["images"])
    assert result["a"]["sha256"] == result["b"]["sha256"] and result["a"]["parameters"] == 1_063_304
    assert result["a"]["name"] == "QKVAE-1m"
    assert result["a"]["bpp"] == pytest.approx(2304 * np.log2(15360) / 96**2)
    assert 0 < result["a"]["bpp_entropy"] < result["a"]["bpp"]
    for name in ("psnr_scatter.png", "worst.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_a_checkpoint_of_other_levels_has_no_token_agreement(weights_dir, tiny_weights_dir, photos):
    run = compare.compare_checkpoints(str(weights_dir), str(tiny_weights_dir), photos, device="cpu")
    c = run.comparison
    assert c.b.config["levels"] == list(TINY_CONFIG.levels) and c.b.parameters < c.a.parameters
    assert c.b.bpp == pytest.approx(TINY_CONFIG.num_tokens * np.log2(1000) / 96**2)
    assert all(p.token_agreement is None and p.digit_agreement is None for p in c.images)
    assert c.summary.token_agreement is None
    d = np.array([p.psnr_b - p.psnr_a for p in c.images])
    assert c.summary.delta_psnr.mean == pytest.approx(d.mean())
    assert c.summary.b_better == np.mean(d > 0)


def test_same_levels_give_agreement_between_0_and_1_and_a_bootstrap_interval(weights_dir, other_seed_dir, photos):
    run = compare.compare_checkpoints(str(weights_dir), str(other_seed_dir), photos, device="cpu")
    c = run.comparison
    for p, ia, ib in zip(c.images, run.a.reconstruction.indices, run.b.reconstruction.indices, strict=True):
        assert p.token_agreement == np.mean(ia == ib) < 1
        assert len(p.digit_agreement) == 5 and min(p.digit_agreement) >= p.token_agreement
    s = c.summary
    assert s.delta_psnr.low <= s.delta_psnr.mean <= s.delta_psnr.high and s.delta_psnr.low < s.delta_psnr.high
    assert 0 < s.wilcoxon_p <= 1
    grid = compare.worst_grid(run, k=3)
    assert grid.shape[:2] == (3 * 96 + 2 * 2 + plots.LABEL_HEIGHT, 3 * 96 + 2 * 2)


def test_compare_images_gives_the_flip_map_and_the_error_difference(rgb):
    config = QKVAE().config
    ids_a = np.arange(config.num_tokens) % 15360
    ids_b = ids_a.copy()
    ids_b[[0, 100]] += 1  # digit 0 changes in both
    worse = np.clip(rgb.astype(int) + 10, 0, 255).astype(np.uint8)
    one = compare.compare_images("x", rgb, rgb, worse, ids_a, ids_b, config, config)
    assert one.pair.psnr_a == 100.0 and one.pair.psnr_b < 100.0
    assert one.token_flips.shape == (48, 48) and one.token_flips.sum() == 2 and one.token_flips[0, 0]
    assert one.pair.token_agreement == 1 - 2 / 2304
    assert one.pair.digit_agreement[0] == 1 - 2 / 2304 and one.pair.digit_agreement[1:] == (1.0,) * 4
    assert one.error_difference.shape == (96, 96) and one.error_difference.min() >= 0 and one.error_difference.max() > 0
    tiny = compare.compare_images("x", rgb, rgb, rgb, ids_a, ids_a[:TINY_CONFIG.num_tokens] % 1000, config, TINY_CONFIG)
    assert tiny.token_flips is None and tiny.pair.token_agreement is None


def test_wilcoxon_and_interval_edge_cases():
    assert compare.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert compare.wilcoxon_p([1.0] * 10) < 0.01
    assert compare.mean_interval([2.5]) == compare.Interval(2.5, 2.5, 2.5)


def test_ms_ssim_is_1_for_identical_images_and_lower_for_others(rgb):
    a = np.stack([rgb, rgb[::-1]])
    assert ms_ssim(a, a) == pytest.approx([1.0, 1.0])
    noisy = np.clip(a.astype(int) + np.random.default_rng(0).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert np.all(ms_ssim(a, noisy) < 0.99)


def test_compressai_files_have_its_shape_and_bjontegaard_reads_curves_of_them(photos, tmp_path, weights_dir, tiny_weights_dir):
    compare.main(["--a", str(weights_dir), "--b", str(tiny_weights_dir), "--data", str(photos), "--out", str(tmp_path),
                  "--device", "cpu"])
    files = [json.loads((tmp_path / f"compressai-{s}.json").read_text()) for s in "ab"]
    for f in files:
        # what compressai.utils.plot reads: name, and results[metric] and results["bpp"], lists of equal length
        assert set(f) == {"name", "description", "results"}
        assert {"psnr-rgb", "ms-ssim-rgb", "bpp"} <= set(f["results"])
        assert len({len(v) for v in f["results"].values()}) == 1
    # BD-rate needs 4+ points a curve: a family of checkpoints, as a frontier gives; merge files into curves
    curve = {k: [files[0]["results"][k][0] * s for s in (0.4, 0.6, 0.8, 1.0)] for k in ("bpp", "psnr-rgb")}
    shifted = {"bpp": [b * 1.1 for b in curve["bpp"]], "psnr-rgb": curve["psnr-rgb"]}
    rate = bjontegaard.bd_rate(curve["bpp"], curve["psnr-rgb"], shifted["bpp"], shifted["psnr-rgb"], method="akima")
    assert rate == pytest.approx(10.0, abs=0.01)  # B needs 10 % more bits for the same PSNR


@pytest.mark.parametrize("bad", ["weights", "data"])
def test_bad_input_exits_2_with_one_line(bad, tmp_path, photos, weights_dir, capsys):
    a = str(tmp_path / "none") if bad == "weights" else str(weights_dir)
    data = str(tmp_path / "missing") if bad == "data" else str(photos)
    assert compare.main(["--a", a, "--b", str(weights_dir), "--data", data, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_different_image_sizes_are_refused(weights_dir, tmp_path, photos, capsys):
    small = save_qkvae(QKVAE(QKVAEConfig(image_size=64, channels=16, num_res_blocks=1)), tmp_path / "small")
    assert compare.main(["--a", str(weights_dir), "--b", str(small), "--data", str(photos), "--out", str(tmp_path / "o")]) == 2
    assert "64 px" in capsys.readouterr().err
