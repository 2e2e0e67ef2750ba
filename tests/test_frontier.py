"""The size frontier: FLOPs of any config, a finished run shipped as a variant, the frontier's
table and its regenerable section of the card."""

import json
from dataclasses import replace

import pytest
import torch

from analysis.frontier import (SECTION_END, SECTION_START, Point, frontier_figure, frontier_table, measure_quality,
                               point, replace_section)
from conftest import TINY_CONFIG, smooth_photos
from qkvae import QKVAE, QKVAEConfig, load_qkvae, train
from qkvae.flops import flops_per_image
from scripts import ship_variant, variant_card


def conv_macs(c: QKVAEConfig) -> tuple[int, int]:
    """Multiply-accumulates of the encoder's and the decoder's convolutions, from the architecture."""
    big, small, d, w = c.image_size**2, c.grid_size**2, len(c.levels), c.channels
    res = c.num_res_blocks * 2 * small * 9 * w * w
    encode = big * 9 * c.in_channels * w + small * 16 * w * w + res + small * w * d
    decode = small * 9 * d * w + res + big * 9 * w * w + big * 9 * w * c.in_channels
    return encode, decode


@pytest.mark.parametrize("config", [QKVAEConfig(), TINY_CONFIG, QKVAEConfig(channels=40, num_res_blocks=3)])
def test_flops_are_twice_the_conv_macs_of_the_architecture(config):
    flops = flops_per_image(QKVAE(config))
    encode, decode = conv_macs(config)
    assert (flops.encode, flops.decode, flops.both) == (2 * encode, 2 * decode, 2 * (encode + decode))


def test_step_time_from_the_log_counts_every_step_once():
    records = [{"step": 0, "mean_step_s": 2.0, "precision": "fp32"},
               {"step": 50, "mean_step_s": 1.0, "precision": "fp32"},
               {"step": 100, "mean_step_s": 3.0, "precision": "bf16"},  # resumed at 100: one step timed
               {"step": 119, "mean_step_s": 0.5, "precision": "bf16"}]
    t = ship_variant.training_from_log(records, {"steps": 120}, 120)
    assert t.steps_done == 120 and t.precisions == {"fp32": 51, "bf16": 69}
    assert t.step_seconds == pytest.approx(2.0 + 50 * 1.0 + 50 * 3.0 + 19 * 0.5)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return smooth_photos(tmp_path_factory.mktemp("photos"), 6, 11)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("run")
    config = root / "tiny.json"
    config.write_text(json.dumps({"channels": 16, "num_res_blocks": 1, "levels": [8, 5, 5, 5]}))
    train.main(["--config", str(config), "--data", str(photos), "--out", str(root / "qkvae-tiny"), "--steps", "3",
                "--batch-size", "2", "--device", "cpu", "--precision", "fp32", "--eval"])
    return root / "qkvae-tiny"


def test_a_finished_run_ships_with_its_card(finished_run, photos, tmp_path, capsys):
    line = ship_variant.ship(finished_run, "qkvae-tiny", tmp_path, repeats=1, sources={"photos": str(photos)})
    folder = tmp_path / "qkvae-tiny"
    assert sorted(f.name for f in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "variant.json"]
    assert load_qkvae(folder, "cpu").config == TINY_CONFIG
    v = json.loads((folder / "variant.json").read_text())
    assert v["parameters"] == sum(p.numel() for p in QKVAE(TINY_CONFIG).parameters())
    assert v["training"]["steps_done"] == 3 and v["training"]["recipe"]["config"]["channels"] == 16
    assert v["encode_gflop"] == pytest.approx(flops_per_image(QKVAE(TINY_CONFIG)).encode / 1e9)
    card = (folder / "README.md").read_text()
    assert f"PSNR {v['quality'][0]['psnr']:.2f} dB" in card and "3 of 3 steps" in card and "(codebook 1,000)" in card
    assert "photos" in line


def test_a_new_measurement_rewrites_the_variant_card_and_keeps_its_training(finished_run, photos, tmp_path):
    ship_variant.ship(finished_run, "qkvae-tiny", tmp_path, repeats=1, sources={"photos": str(photos)})
    folder = tmp_path / "qkvae-tiny"
    shipped = json.loads((folder / "variant.json").read_text())
    point = Point.from_json({k: v for k, v in shipped.items() if k != "training"})
    variant_card.write_variant(folder, replace(point, encode_images_per_s=1234.0), variant_card.read_training(folder))
    again = json.loads((folder / "variant.json").read_text())
    assert again["encode_images_per_s"] == 1234.0 and again["training"] == shipped["training"]
    assert "| encode | 1,234 images/s" in (folder / "README.md").read_text()


@pytest.fixture
def unfinished_run(finished_run, tmp_path):
    """The finished run as it was at step 2 of 3: a checkpoint and a log, no weights."""
    run = tmp_path / "qkvae-half"
    run.mkdir()
    (run / "train_log.jsonl").write_bytes((finished_run / "train_log.jsonl").read_bytes())
    ckpt = torch.load(finished_run / "checkpoint.pt", weights_only=True)
    torch.save({**ckpt, "step": 2}, run / "checkpoint.pt")
    return run


def test_an_unfinished_run_is_refused(unfinished_run, tmp_path, capsys):
    assert ship_variant.main([str(unfinished_run), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not finished (checkpoint at step 2 of 3)" in err
    assert not (tmp_path / "out").exists()
    assert ship_variant.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "not a training run: no checkpoint.pt, train_log.jsonl" in capsys.readouterr().err


def test_frontier_points_table_figure_and_card_section(photos, weights_dir, tiny_weights_dir):
    models = {"big": load_qkvae(weights_dir, "cpu"), "tiny": load_qkvae(tiny_weights_dir, "cpu")}
    quality = measure_quality(models, {"photos": str(photos)})
    points = [point(name, m, quality[name], 100.0) for name, m in models.items()]
    assert Point.from_json(json.loads(json.dumps(points[1].to_json()))) == points[1]
    assert points[0].on("photos").images == 6 and points[1].parameters < points[0].parameters
    table = frontier_table(points, ["photos"])
    assert table.splitlines()[2].startswith("| big | 1,063,304 | 104, 2 | (8, 8, 8, 6, 5) (15,360) |")
    assert "(8, 5, 5, 5) (1,000)" in table.splitlines()[3]
    assert len(frontier_figure(points, ["photos"]).axes) == 4
    card = replace_section("# Card\n\ntext\n", table)
    assert card.startswith("# Card\n\ntext\n\n" + SECTION_START) and card.rstrip().endswith(SECTION_END)
    again = replace_section(card + "\n## After\n", "new")
    assert again.count(SECTION_START) == 1 and "new" in again and table not in again and again.endswith("## After\n")


def test_measure_quality_refuses_models_of_different_sizes(photos, weights_dir):
    small = QKVAE(QKVAEConfig(image_size=64, channels=16, num_res_blocks=1)).eval()
    with pytest.raises(ValueError, match="image sizes"):
        measure_quality({"a": load_qkvae(weights_dir, "cpu"), "b": small}, {"photos": str(photos)})


def test_every_shipped_asset_is_package_data():
    """What assets/ holds (weights, variants, cards, figures) installs with the package."""
    import tomllib

    from qkvae.weights import ASSETS

    setuptools = tomllib.loads((ASSETS.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = {f for package, patterns in setuptools["package-data"].items() if package.startswith("qkvae.assets")
                for pattern in patterns for f in (ASSETS.parent / setuptools["package-dir"][package]).glob(pattern)}
    shipped = {f for f in ASSETS.rglob("*") if f.is_file() and "__pycache__" not in f.parts}
    assert shipped <= declared, f"not in pyproject's package-data: {sorted(map(str, shipped - declared))}"
