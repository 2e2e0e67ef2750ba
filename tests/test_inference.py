"""The inference CLI: the card's output line, token files, decoding, and clean failures."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import load_image, load_tokens, reconstruction_psnr
from qkvae.inference import main


@pytest.fixture
def image_path(tmp_path, rgb):
    path = tmp_path / "cat.png"
    Image.fromarray(rgb).save(path)
    return path


def test_reconstruction_psnr_convention():
    a = torch.zeros(3, 8, 8)
    assert reconstruction_psnr(a, a) == 100.0
    b = a.clone()
    b[0, 0, 0] = 2 / 255 * 10  # +10 levels at one of 192 values: MSE = 100 / 192
    assert reconstruction_psnr(a, b) == pytest.approx(10 * np.log10(255**2 * 192 / 100), abs=1e-9)
    assert reconstruction_psnr(torch.stack([a, a]), torch.stack([a, a])) == 100.0


def test_encode_prints_the_card_line(image_path, weights_dir, tmp_path, capsys, model):
    out, tokens = tmp_path / "out.png", tmp_path / "ids.npy"
    assert main([str(image_path), str(weights_dir), str(out), "--tokens", str(tokens)]) == 0
    line = capsys.readouterr().out.strip()
    x = load_image(image_path)
    ids = model.encode(x.unsqueeze(0))[0]
    expected_psnr = reconstruction_psnr(x, model.decode(ids.unsqueeze(0))[0])
    assert line == (f"image={image_path} size=96 tokens=2304 codebook=15360 "
                    f"psnr={expected_psnr:.2f}dB -> {out}")
    assert Image.open(out).size == (96, 96)
    assert np.array_equal(load_tokens(tokens).ravel(), ids.numpy())


def test_decode_reproduces_the_reconstruction(image_path, weights_dir, tmp_path, capsys):
    first, tokens, second = tmp_path / "a.png", tmp_path / "ids.json", tmp_path / "b.png"
    main([str(image_path), str(weights_dir), str(first), "--tokens", str(tokens)])
    assert main(["--decode", str(tokens), str(weights_dir), str(second)]) == 0
    assert f"-> {second}" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))


def _fail(argv, capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    return captured.err


def test_bad_inputs_exit_2_with_a_message(tmp_path, weights_dir, image_path, capsys):
    out = str(tmp_path / "o.png")
    (tmp_path / "bad.txt").write_text("not an image")
    assert "no such image file" in _fail([str(tmp_path / "none.png"), str(weights_dir), out], capsys)
    assert "not an image" in _fail([str(tmp_path / "bad.txt"), str(weights_dir), out], capsys)
    np.save(tmp_path / "short.npy", np.zeros(100, np.int64))
    assert "expected 2304" in _fail(["--decode", str(tmp_path / "short.npy"), str(weights_dir), out], capsys)
    (tmp_path / "w.safetensors").write_bytes(b"\x00" * 10)
    assert "not a valid safetensors" in _fail([str(image_path), str(tmp_path / "w.safetensors"), out], capsys)


def test_missing_shipped_weights_are_explained(image_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("qkvae.weights.ASSETS", tmp_path)
    err = _fail([str(image_path), str(tmp_path / "o.png")], capsys)
    assert "no model.safetensors in" in err


def test_usage_errors():
    with pytest.raises(SystemExit):
        main(["only-one-arg"])
    with pytest.raises(SystemExit):
        main(["a.png", "b.png", "--tokens", "ids.txt"])


def test_truncated_image_from_a_real_process(tmp_path, weights_dir, image_path):
    """End to end in a subprocess: a truncated PNG gives one line on stderr and exit status 2."""
    cut = tmp_path / "cut.png"
    cut.write_bytes(image_path.read_bytes()[:200])
    r = subprocess.run([sys.executable, "-m", "qkvae.inference", str(cut), str(weights_dir), str(tmp_path / "o.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith("error: cut.png is corrupt or truncated")
    assert "Traceback" not in r.stderr
