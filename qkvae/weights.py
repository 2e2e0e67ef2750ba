"""Saving and loading QKVAE weights: ``model.safetensors`` plus ``config.json``, one loader for all.

``load_qkvae`` takes our own files, the official Hub file (whose key names we do not know: it is
mapped by parameter order when every shape matches), a Hub reference such as
``hf://Glint-Research/QKVAE-1m[@revision]`` (see ``qkvae.hub``), or nothing, meaning the weights
shipped in ``assets/``. Every failure raises ``WeightsError`` naming the file and what is wrong with it.
"""

import hashlib
import json
import logging
import posixpath
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from qkvae.atomic import atomic_path, atomic_write
from qkvae.hub import HubError, HubRef, hub_file, is_hub_ref
from qkvae.model import MEMORY_FORMAT, QKVAE, QKVAEConfig, WeightsFile

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent
# The shipped weights and statistics: qkvae/assets in an installed package, assets/ in a checkout.
ASSETS = next((p for p in (_PACKAGE / "assets", _PACKAGE.parent / "assets") if p.is_dir()), _PACKAGE.parent / "assets")
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"


class WeightsError(ValueError):
    """A weights file that cannot be loaded into QKVAE."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def file_sha256(path) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_fingerprint(model: QKVAE) -> tuple[str, str]:
    """(file name, SHA-256) of the weights a model was loaded from (``model.weights_file``, as
    hashed when loaded); empty strings if none."""
    w = model.weights_file
    return (w.path.name, w.sha256) if w is not None else ("", "")


def save_qkvae(model: QKVAE, folder) -> Path:
    """Write ``model.safetensors`` (fp32) and ``config.json`` into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_NAME) as staging:
        save_file(state, staging, metadata={"format": "pt"})
    atomic_write(folder / CONFIG_NAME, json.dumps(model.config.to_dict(), indent=2) + "\n")
    return folder


def _resolve_hub(spec: str) -> tuple[Path, Path | None]:
    """(weights file, config file or None) of a model repo on the Hub, from the local cache or downloaded."""
    try:
        ref = HubRef.parse(spec, "model")
        weights = ref.path if ref.path.endswith(".safetensors") else posixpath.join(ref.path, WEIGHTS_NAME)
        config = posixpath.join(posixpath.dirname(weights), CONFIG_NAME)
        return hub_file(ref, weights), hub_file(ref, config, optional=True)
    except HubError as e:
        raise WeightsError(str(e)) from None


def _resolve(path) -> tuple[Path, Path | None]:
    """(weights file, config file or None) for a file, a folder, a Hub reference, or None (the shipped weights)."""
    if is_hub_ref(path):
        return _resolve_hub(path)
    path = Path(path) if path is not None else ASSETS
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if not weights.is_file():
            hint = " (no trained weights are shipped yet)" if path == ASSETS else ""
            raise WeightsError(f"no {WEIGHTS_NAME} in {path}{hint}")
        path = weights
    if not path.is_file():
        raise WeightsError(f"no such weights file: {path}")
    config = path.parent / CONFIG_NAME
    return path, config if config.is_file() else None


def weights_sha256(path=None) -> str:
    """The SHA-256 of the weights file ``load_qkvae(path)`` would read (its ``weights_file.sha256``),
    without loading it: what names a checkpoint in a cache of loaded models."""
    return file_sha256(_resolve(path)[0])


def _read_config(config_path: Path | None) -> QKVAEConfig:
    if config_path is None:
        return QKVAEConfig()
    try:
        return QKVAEConfig.from_dict(json.loads(config_path.read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise WeightsError(f"{config_path} is not a QKVAE config ({e})") from None


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        head = f.read(len(LFS_POINTER_PREFIX))
    if head == LFS_POINTER_PREFIX:
        raise WeightsError(
            f"{path} is a git-lfs pointer, not the weights: run `git lfs pull` or download the file itself"
        )
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path} is not a valid safetensors file ({e})") from None


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _first_mismatch(pairs) -> str | None:
    for (their_key, t), (our_key, p) in pairs:
        if t.shape != p.shape:
            return (f"tensor {their_key!r} has shape {tuple(t.shape)}, "
                    f"but {our_key!r} needs {tuple(p.shape)}")
    return None


def _patch_keys_by_order(state: dict, model: QKVAE, path: Path) -> dict:
    """Rename foreign keys to ours when the tensors match our parameters one for one, in order.

    A safetensors file does not keep definition order (it lists tensors by name), so their
    tensors are taken in natural name order ("block.2" before "block.10") and paired with our
    parameters in definition order, then in natural name order; the first pairing in which
    every shape agrees wins.
    """
    ours = model.state_dict()
    theirs = sorted(state.items(), key=lambda kv: _natural_key(kv[0]))
    if len(theirs) != len(ours):
        raise WeightsError(
            f"{path} holds {len(theirs)} tensors but QKVAE-1m has {len(ours)}; "
            f"first of theirs: {theirs[0][0] if theirs else None!r}"
        )
    orders = [list(ours.items()), sorted(ours.items(), key=lambda kv: _natural_key(kv[0]))]
    for order in orders:
        if _first_mismatch(zip(theirs, order, strict=True)) is None:
            log.warning("%s: key names differ from ours; mapped %d tensors by order", path, len(order))
            return {our_key: t for (our_key, _), (_, t) in zip(order, theirs, strict=True)}
    mismatch = _first_mismatch(zip(theirs, orders[-1], strict=True))
    raise WeightsError(f"{path}: key names differ from ours and {mismatch}")


def _check_shapes(state: dict, model: QKVAE, path: Path) -> None:
    ours = model.state_dict()
    problem = _first_mismatch(((k, t), (k, ours[k])) for k, t in state.items())
    if problem:
        raise WeightsError(f"{path}: {problem}")


def load_qkvae(path=None, device=None) -> QKVAE:
    """Load an eval-mode QKVAE from a ``.safetensors`` file, a folder with ``config.json``, or a
    Hub reference ``hf://OWNER/NAME[@revision][/path]`` (through the local Hub cache).

    With no path, loads the weights shipped in ``assets/``. The model goes to CUDA when
    available unless ``device`` is given.
    """
    weights_path, config_path = _resolve(path)
    model = QKVAE(_read_config(config_path))
    state = _read_tensors(weights_path)
    if set(state) == set(model.state_dict()):
        _check_shapes(state, model, weights_path)
    else:
        state = _patch_keys_by_order(state, model, weights_path)
    model.load_state_dict(state, strict=True)
    model.weights_file = WeightsFile(weights_path, file_sha256(weights_path))
    return model.to(device or default_device(), memory_format=MEMORY_FORMAT).eval()
