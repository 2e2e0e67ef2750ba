"""Saving and loading weights: exact round trips, foreign key names, and every broken file."""

import hashlib
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

from qkvae import WeightsError, load_qkvae, save_qkvae
from qkvae.weights import LFS_POINTER_PREFIX, weights_fingerprint


def test_save_load_gives_identical_output(model, weights_dir):
    loaded = load_qkvae(weights_dir, device="cpu")
    assert not loaded.training
    assert loaded.weights_file.path == weights_dir / "model.safetensors"
    assert loaded.weights_file.sha256 == hashlib.sha256((weights_dir / "model.safetensors").read_bytes()).hexdigest()
    assert weights_fingerprint(loaded) == ("model.safetensors", loaded.weights_file.sha256)
    assert weights_fingerprint(model) == ("", "")  # built in memory, not loaded
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    assert torch.equal(loaded.encode(x), model.encode(x))
    ids = model.encode(x)
    assert torch.equal(loaded.decode(ids), model.decode(ids))


def test_load_a_bare_file_without_config(weights_dir, tmp_path):
    bare = tmp_path / "model.safetensors"
    bare.write_bytes((weights_dir / "model.safetensors").read_bytes())
    assert load_qkvae(bare, device="cpu").config.levels == (8, 8, 8, 6, 5)


def _rewritten(weights_dir, tmp_path, edit):
    """Save ``edit(state)`` of the seeded model's tensors as a new safetensors file."""
    path = tmp_path / "edited.safetensors"
    save_file(edit(load_file(weights_dir / "model.safetensors")), path)
    return path


def _assert_same_weights(model, loaded):
    for name, p in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], p), name


def test_foreign_key_names_are_mapped_by_order(model, weights_dir, tmp_path, caplog):
    """An official file with other names but the same tensors loads, and says what it did."""
    rename = lambda k: "qkvae." + k.replace("encoder.", "enc.").replace("decoder.", "dec.")  # noqa: E731
    path = _rewritten(weights_dir, tmp_path, lambda state: {rename(k): v for k, v in state.items()})
    with caplog.at_level(logging.WARNING, logger="qkvae.weights"):
        _assert_same_weights(model, load_qkvae(path, device="cpu"))
    assert "mapped 48 tensors by order" in caplog.text


def test_numbered_keys_in_definition_order_are_mapped(model, weights_dir, tmp_path):
    """Keys such as param_0 .. param_47, numbered in definition order, pair with ours in order."""
    path = _rewritten(weights_dir, tmp_path,
                      lambda state: {f"param_{i}": state[k] for i, k in enumerate(model.state_dict())})
    _assert_same_weights(model, load_qkvae(path, device="cpu"))


def _edited(state, key, value):
    state = dict(state)
    if value is None:
        del state[key]
    else:
        state[key] = value
    return state


@pytest.mark.parametrize("edit,message", [
    (lambda state: {f"t{i}": v for i, v in enumerate(sorted(state.values(), key=lambda t: t.numel()))},
     r"key names differ from ours and tensor 't0' has shape"),
    (lambda state: _edited(state, "decoder.conv_out.weight", torch.zeros(3, 104, 5, 5)),
     r"decoder\.conv_out\.weight.*\(3, 104, 5, 5\)"),
    (lambda state: _edited(state, "encoder.conv_in.bias", None), "holds 47 tensors but QKVAE-1m has 48"),
], ids=["scrambled names", "wrong shape", "missing tensor"])
def test_mismatched_tensors_are_refused_with_the_first_problem(weights_dir, tmp_path, edit, message):
    with pytest.raises(WeightsError, match=message):
        load_qkvae(_rewritten(weights_dir, tmp_path, edit), device="cpu")


def test_git_lfs_pointer_gets_its_own_message(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(LFS_POINTER_PREFIX + b"v1\noid sha256:abc\nsize 4253120\n")
    with pytest.raises(WeightsError, match="git-lfs pointer"):
        load_qkvae(path, device="cpu")


@pytest.mark.parametrize("payload", [b"", b"not a safetensors file at all", b"\x00" * 64])
def test_corrupt_file(tmp_path, payload):
    path = tmp_path / "model.safetensors"
    path.write_bytes(payload)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_qkvae(path, device="cpu")


def test_truncated_file(weights_dir, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes((weights_dir / "model.safetensors").read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_qkvae(path, device="cpu")


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file"):
        load_qkvae(tmp_path / "nope.safetensors", device="cpu")
    with pytest.raises(WeightsError, match="no model.safetensors in"):
        load_qkvae(tmp_path, device="cpu")


def test_bad_config_json(weights_dir, tmp_path):
    folder = save_qkvae(load_qkvae(weights_dir, device="cpu"), tmp_path / "w")
    (folder / "config.json").write_text('{"levels": [8, 8], "colour": 1}')
    with pytest.raises(WeightsError, match="not a QKVAE config"):
        load_qkvae(folder, device="cpu")
