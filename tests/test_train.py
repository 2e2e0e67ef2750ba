"""Training: data sources, the crop sampler, and a tiny run that checkpoints, resumes and loads."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import QKVAE, load_qkvae, save_qkvae
from qkvae import train as train_module
from qkvae.data import RandomCropSampler, load_images, source_weights
from qkvae.metrics import ssim as ssim_metric
from qkvae.image import to_tensor
from qkvae.loss import reconstruction_loss, sobel, ssim
from qkvae.pipeline import reconstruct_set
from scripts.publish import publish


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, size in [("cat_a", (160, 128)), ("cat_b", (128, 128)), ("bsds_c", (128, 200)),
                       ("imagenet_d", (140, 130))]:
        smooth = np.kron(rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3)), np.ones((8, 8, 1)))
        Image.fromarray(smooth[: size[1], : size[0]].astype(np.uint8)).save(folder / f"{name}.png")
    return folder


def test_source_weights_balance_sources():
    w = source_weights(["cat_1", "cat_2", "cat_3", "bsds_1"])
    assert w.sum() == pytest.approx(1.0)
    assert w[:3].sum() == pytest.approx(0.5) and w[3] == pytest.approx(0.5)


def test_sampler_crops_are_square_96_and_reproducible(image_folder):
    _, images = load_images(image_folder)
    a, b = RandomCropSampler(images, seed=3), RandomCropSampler(images, seed=3)
    batch = a.sample(5)
    assert batch.shape == (5, 96, 96, 3) and batch.dtype == np.uint8
    assert np.array_equal(batch, b.sample(5))
    state = a.state_dict()
    nxt = a.sample(2)
    a.load_state_dict(state)
    assert np.array_equal(a.sample(2), nxt)


def test_sampler_keeps_96_pixel_images_whole():
    img = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert np.array_equal(RandomCropSampler([img]).sample(1)[0], img)


def test_sobel_and_loss_terms():
    x = torch.zeros(1, 1, 5, 5)
    x[..., 3:] = 1.0  # a vertical step between columns 2 and 3
    gx = sobel(x)[0, 0]
    assert torch.equal(gx[2, 2:4], torch.tensor([4.0, 4.0])) and gx[2, 0] == 0
    assert sobel(x)[0, 1].abs().max() == 0
    terms = reconstruction_loss(torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.5))  # SSIM needs 11 px
    assert terms["l1"] == pytest.approx(0.5) and terms["mse"] == pytest.approx(0.25)
    assert terms["edge"] == 0 and terms["loss"] == pytest.approx(0.5 + 0.25 * 0.25)
    with_ssim = reconstruction_loss(torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.5), ssim_weight=0.5)
    assert with_ssim["loss"] == pytest.approx(0.5 + 0.25 * 0.25 + 0.5 * (1 - with_ssim["ssim"].item()))


def test_differentiable_ssim_scores_as_the_metric(image_folder):
    _, images = load_images(image_folder)
    rgb = RandomCropSampler(images, seed=0).sample(3)
    noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 20, rgb.shape), 0, 255).round().astype(np.uint8)
    expected = [ssim_metric(a, b) for a, b in zip(noisy, rgb, strict=True)]
    x_hat = to_tensor(noisy).requires_grad_()
    got = ssim(x_hat, to_tensor(rgb))
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-5)
    assert min(expected) < 0.9  # the noise is large enough for the comparison to mean something
    got.sum().backward()
    assert torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0


def _args(folder, out, steps=4):
    return ["--data", str(folder), "--eval", str(folder), "--out", str(out), "--steps", str(steps),
            "--batch-size", "2", "--checkpoint-every", "2", "--device", "cpu", "--seed", "1", "--precision", "fp32"]


def _losses(out):
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


class Killed(Exception):
    pass


def _killed_after_two_steps(argv, monkeypatch):
    """Run ``qkvae.train`` and kill it during its third step, after the step-2 checkpoint."""
    real_step, calls = train_module.train_step, []

    def dies_on_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return real_step(*args)

    monkeypatch.setattr(train_module, "train_step", dies_on_third_step)
    with pytest.raises(Killed):
        train_module.main(argv)
    monkeypatch.setattr(train_module, "train_step", real_step)
    assert torch.load(Path(argv[argv.index("--out") + 1]) / "checkpoint.pt", weights_only=False)["step"] == 2


def test_tiny_run_resumes_on_the_same_curve(image_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "LOG_EVERY", 1)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_module.main(_args(image_folder, straight))

    _killed_after_two_steps(_args(image_folder, resumed), monkeypatch)
    train_module.main(_args(image_folder, resumed) + ["--resume"])

    assert len(_losses(straight)) == 4
    assert _losses(resumed) == _losses(straight)
    a, b = load_qkvae(straight, device="cpu"), load_qkvae(resumed, device="cpu")
    for name, p in a.state_dict().items():
        assert torch.equal(p, b.state_dict()[name]), name
    published = tmp_path / "assets"
    assert publish(resumed, published).startswith("published step 4 of 4")
    assert torch.equal(load_qkvae(published, device="cpu").encode(torch.zeros(1, 3, 96, 96)),
                       a.encode(torch.zeros(1, 3, 96, 96)))
    assert Image.open(published / "loss_curve.png").size[0] > 0
    assert (published / "train_log.jsonl").read_text() == (resumed / "train_log.jsonl").read_text()
    report = json.loads((straight / "eval.json").read_text())
    evaluated = reconstruct_set(a, image_folder)
    assert report[0]["images"] == 4
    assert report[0]["psnr"] == pytest.approx(evaluated.psnr.mean()) and report[0]["ssim"] == pytest.approx(evaluated.ssim.mean())


def test_resume_refuses_a_different_recipe(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    train_module.main(_args(image_folder, out, steps=2))
    capsys.readouterr()
    assert train_module.main(_args(image_folder, out, steps=6) + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "was written by a run with" in err and err.count("\n") == 1



def test_resume_may_change_precision_and_logs_it(image_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "LOG_EVERY", 1)
    out = tmp_path / "run"
    _killed_after_two_steps(_args(image_folder, out), monkeypatch)
    bf16 = [a if a != "fp32" else "bf16" for a in _args(image_folder, out)]
    train_module.main(bf16 + ["--resume", "--eval"])
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["precision"]) for r in records] == [(0, "fp32"), (1, "fp32"), (2, "bf16"), (3, "bf16")]
    assert all(np.isfinite(r["loss"]) for r in records)


def test_init_starts_from_the_given_weights_and_rejects_bad_ones(image_folder, tmp_path, capsys):
    # Both runs use seed 1; the init weights are that seed's random init, halved, so only --init can give them.
    torch.manual_seed(1)
    seed_init = QKVAE()
    halved = QKVAE()
    halved.load_state_dict({k: v / 2 for k, v in seed_init.state_dict().items()})
    init_dir = save_qkvae(halved, tmp_path / "init")
    argv = _args(image_folder, tmp_path / "tuned", steps=2) + ["--eval", "--lr", "1e-12", "--ssim-weight", "1"]
    train_module.main(argv + ["--init", str(init_dir)])
    train_module.main(_args(image_folder, tmp_path / "fresh", steps=2) + ["--eval", "--lr", "1e-12"])
    tuned, fresh = load_qkvae(tmp_path / "tuned", device="cpu"), load_qkvae(tmp_path / "fresh", device="cpu")
    for name, p in halved.state_dict().items():  # a learning rate of 1e-12 leaves the weights where they began
        torch.testing.assert_close(tuned.state_dict()[name], p, atol=1e-8, rtol=0)
        torch.testing.assert_close(fresh.state_dict()[name], seed_init.state_dict()[name], atol=1e-8, rtol=0)
    records = [json.loads(line) for line in (tmp_path / "tuned" / "train_log.jsonl").read_text().splitlines()]
    r = records[0]
    assert 1 - r["ssim"] > 1e-3  # the SSIM term is in the loss: a random init reconstructs far from perfectly
    assert r["loss"] == pytest.approx(r["l1"] + 0.25 * r["mse"] + 0.5 * r["edge"] + (1 - r["ssim"]))
    (tmp_path / "broken.safetensors").write_bytes(b"not weights")
    capsys.readouterr()
    assert train_module.main(argv + ["--init", str(tmp_path / "broken.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "broken.safetensors" in err and err.count("\n") == 1
