"""The Compare tab's handlers called as plain functions: choosing B (variant, upload, Hub), one
image, a set, the bounded cache, and bad weights refused while the tab keeps working."""

import shutil
import zipfile

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import QKVAE, QKVAEConfig, load_qkvae, save_qkvae
from qkvae_app import checkpoints, gpu
from qkvae_app.checkpoints import CheckpointCache
from qkvae_app.compare_tab import CompareTab
from qkvae_app.demo import build_demo
from qkvae_app.settings import EXAMPLES_DIR, Settings
from qkvae_app.studio import Studio

CAT = str(EXAMPLES_DIR / "photo-cat.png")


@pytest.fixture(scope="module")
def app(weights_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("compare") / "data"
    data.mkdir()
    for name in ("photo-cat", "photo-coffee", "ood-text"):
        shutil.copy(EXAMPLES_DIR / f"{name}.png", data)
    yield build_demo(Settings(weights=weights_dir, data=data))
    gpu._loaded.clear()


@pytest.fixture(scope="module")
def perturbed_dir(weights_dir, tmp_path_factory):
    """The test weights with the decoder's last convolution nudged: the same ids, other pixels."""
    model = load_qkvae(weights_dir, "cpu")
    with torch.no_grad():
        model.decoder.conv_out.weight.add_(0.05 * torch.randn_like(model.decoder.conv_out.weight))
    return save_qkvae(model, tmp_path_factory.mktemp("perturbed"))


def _upload(folder) -> list[str]:
    return [str(folder / "model.safetensors"), str(folder / "config.json")]


def _choose(app, folder):
    return app.compare.choose_upload(_upload(folder))[0]


def test_itself_gives_equal_scores_no_flips_and_a_zero_error_difference(app, weights_dir):
    b, note = app.compare.choose_upload(_upload(weights_dir))
    assert b.sha256 == app.studio.model.weights_file.sha256 and "B = <b>model.safetensors</b>" in note
    view = app.compare.compare(CAT, "resize", b)
    assert view.psnr_a == view.psnr_b > 0 and view.ssim_a == view.ssim_b
    np.testing.assert_array_equal(view.reconstruction_a, view.reconstruction_b)
    assert "<b>0</b> of 2,304 tokens differ (agreement 1.0000)" in view.flips_note
    white = np.unique(view.error_difference.reshape(-1, 3), axis=0)  # 0 is the scale's middle everywhere
    assert len(white) == 1 and view.token_flips.shape == (480, 480, 3)
    assert len(view.values()) == len(app.compare.outputs)  # the typed view feeds every output


def test_a_perturbed_copy_keeps_its_tokens_but_not_its_pixels(app, perturbed_dir):
    view = app.compare.compare(CAT, "center_crop", _choose(app, perturbed_dir))
    assert view.psnr_a != view.psnr_b
    assert "tokens differ" in view.flips_note and view.token_flips is not None
    assert len(np.unique(view.error_difference.reshape(-1, 3), axis=0)) > 1


def test_other_levels_have_no_flip_map_and_say_why(app, tiny_weights_dir):
    view = app.compare.compare(CAT, "resize", _choose(app, tiny_weights_dir))
    assert view.token_flips is None and "No token-flip map" in view.flips_note and "(8, 5, 5, 5)" in view.flips_note
    assert 0 < view.psnr_b < 100 and view.psnr_a != view.psnr_b


def test_no_b_or_no_image(app):
    with pytest.raises(gr.Error, match="Choose checkpoint B first"):
        app.compare.compare(CAT, "resize", None)
    assert app.compare.compare(None, "resize", None) is None  # a cleared input clears the outputs


def _corrupt(tmp_path, weights_dir, name, data: bytes, config=True):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(data)
    if config:
        shutil.copy(weights_dir / "config.json", folder)
    return [str(p) for p in folder.iterdir()]


def _narrow(tmp_path):
    folder = save_qkvae(QKVAE(QKVAEConfig(channels=64)), tmp_path / "narrow")
    (folder / "config.json").write_text('{"channels": 64}')  # no levels: not a config
    return folder


def test_bad_weights_are_refused_with_one_line_and_the_tab_keeps_working(app, weights_dir, tmp_path, fake_hub):
    good = _choose(app, weights_dir)
    bad = {
        "not a valid safetensors file": _corrupt(tmp_path, weights_dir, "corrupt", b"\x00garbage" * 100),
        "git-lfs pointer": _corrupt(tmp_path, weights_dir, "lfs", b"version https://git-lfs.github.com/spec/v1\n"
                                                                  b"oid sha256:abc\nsize 4253216\n"),
        "has shape": [str(_narrow(tmp_path) / "model.safetensors")],  # no config.json: the card's, too wide
        "is not a QKVAE config": [*_upload(_narrow(tmp_path / "2"))],
        "upload one .safetensors": [str(EXAMPLES_DIR / "photo-cat.png")],
    }
    for message, upload in bad.items():
        with pytest.raises(gr.Error, match=message) as e:
            app.compare.choose_upload(upload)
        assert e.value.title == "Cannot load checkpoint B" or message.startswith("upload")
    with pytest.raises(gr.Error, match="offline mode is on"):  # the Hub cannot be reached
        app.compare.choose_hub("hf://nobody/nothing")
    with pytest.raises(gr.Error, match="hf://OWNER/NAME"):
        app.compare.choose_hub("/etc/passwd")  # local paths are not taken from visitors
    assert app.compare.compare(CAT, "resize", good).psnr_b > 0  # still serving, B unchanged


def test_a_config_asking_for_a_huge_model_is_refused_before_it_is_built(app, weights_dir, tmp_path):
    upload = _corrupt(tmp_path, weights_dir, "huge", (weights_dir / "model.safetensors").read_bytes(), config=False)
    config = tmp_path / "huge" / "config.json"
    config.write_text('{"levels": [8, 8, 8, 6, 5], "channels": 20000, "num_res_blocks": 2}')
    with pytest.raises(gr.Error, match="at most 50,000,000"):
        app.compare.choose_upload([*upload, str(config)])


def test_the_cache_is_bounded_and_reloads_what_it_dropped(weights_dir, tmp_path):
    cache = CheckpointCache(size=2, device="cpu")
    chosen = []
    for seed in range(3):
        torch.manual_seed(seed + 10)
        folder = save_qkvae(QKVAE(QKVAEConfig(levels=(5, 3), channels=8, num_res_blocks=1)), tmp_path / f"m{seed}")
        chosen.append(cache.load(f"m{seed}", str(folder), 96))
    assert len(cache) == 2 and len({b.sha256 for b in chosen}) == 3
    assert cache.model(chosen[0]).weights_file.sha256 == chosen[0].sha256  # dropped, loaded again
    assert len(cache) == 2


def test_shipped_variants_are_listed_from_their_folder(app, weights_dir, tiny_weights_dir, tmp_path):
    variants = tmp_path / "variants"
    shutil.copytree(tiny_weights_dir, variants / "qkvae-tiny")
    (variants / "empty").mkdir()
    tab = CompareTab(app.studio, variants)
    assert checkpoints.variants(variants) == ["qkvae-tiny"] and checkpoints.variants(tmp_path / "none") == []
    b, note = tab.choose_variant("qkvae-tiny")
    assert b.name == "qkvae-tiny" and "levels (8, 5, 5, 5)" in note
    with pytest.raises(gr.Error, match="no shipped variant called 'empty'"):
        tab.choose_variant("empty")


def test_a_hub_model_is_b(app, weights_dir, fake_hub):
    fake_hub.add("lab/qkvae-copy", {"model.safetensors": weights_dir / "model.safetensors",
                                    "config.json": weights_dir / "config.json"})
    b, _ = app.compare.choose_hub(" hf://lab/qkvae-copy ")
    assert b.name == "hf://lab/qkvae-copy" and b.sha256 == app.studio.model.weights_file.sha256


def _png(path, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize((120, 90), Image.BICUBIC).save(path)
    return path


def test_a_set_upload_gives_summary_scatter_worst_and_opens_a_clicked_image(app, weights_dir, perturbed_dir, tmp_path):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(3):
            z.write(_png(tmp_path / f"p{k}.png", k), f"z/p{k}.png")
        z.writestr("z/notes.txt", "not an image")
    uploads = [str(archive), str(EXAMPLES_DIR / "photo-coffee.png")]
    itself = app.compare.compare_upload(uploads, "resize", _choose(app, weights_dir))
    s = itself.compared.comparison.summary
    assert s.images == 4 and s.delta_psnr.mean == 0 and s.ties == 1 and s.token_agreement == 1
    assert "dPSNR (B − A) +0.000 dB" in itself.compare_summary and "z/notes.txt" in itself.compare_summary

    view = app.compare.compare_upload(uploads, "resize", _choose(app, perturbed_dir))
    pairs = view.compared.comparison.images
    deltas = [p.psnr_b - p.psnr_a for p in pairs]
    assert list(view.compare_table["name"]) == ["z/p0.png", "z/p1.png", "z/p2.png", "photo-coffee.png"]
    assert view.compare_table["dPSNR (dB)"].tolist() == [round(d, 2) for d in deltas]
    assert len(view.compare_gallery) == 4 and view.compare_gallery[0][1].startswith(f"{min(deltas):+.2f} dB")
    assert view.compare_scatter.axes[0].get_xlabel() == "PSNR A (dB)"

    worst = int(np.argmin(deltas))
    path = app.compare.open_worst(view.compared, gr.SelectData(None, {"index": 0, "value": None}))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), view.compared.originals[worst])
    opened = app.compare.compare(path, "resize", _choose(app, perturbed_dir))
    assert opened.psnr_b - opened.psnr_a == pytest.approx(deltas[worst], abs=0.02)
    row = view.compare_table.iloc[3].tolist()
    path = app.compare.open_row(view.compared, gr.SelectData(None, {"index": [3, 0], "value": None, "row_value": row}))
    assert path.endswith("/photo-coffee.png")


def test_a_set_compare_refuses_nothing_and_bad_uploads(app, weights_dir, tmp_path):
    b = _choose(app, weights_dir)
    with pytest.raises(gr.Error, match="Upload images"):
        app.compare.compare_upload([], "resize", b)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(gr.Error, match="no readable image"):
        app.compare.compare_upload([str(text)], "resize", b)


def test_the_dataset_tab_images_compared(app, tiny_weights_dir):
    view = app.compare.compare_dataset("resize", _choose(app, tiny_weights_dir))
    c = view.compared.comparison
    assert c.summary.images == 3 and c.summary.token_agreement is None
    assert "No token agreement" in view.compare_summary and c.b.config["levels"] == [8, 5, 5, 5]


def test_a_studio_without_weights_says_so(tmp_path):
    tab = CompareTab(Studio.load(Settings(weights=tmp_path / "none")))
    with pytest.raises(gr.Error, match="No model is loaded"):
        tab.choose_hub("hf://lab/x")
