"""The app's model work, in small functions of arrays, each run on a GPU on a ZeroGPU Space.

On a ZeroGPU Space the ``spaces`` package is installed: it must be imported before anything
touches CUDA (``app.py`` imports this module before the model is loaded), and each function
decorated with ``gpu(duration=...)`` then runs on a GPU lent for at most that many seconds, in
another process: its arguments and results are pickled, so they are arrays and dataclasses of
arrays, never Gradio objects or caches. Elsewhere ``spaces`` is absent and the decorator changes
nothing. The model itself is loaded once by the app and handed over with ``use_model``.
"""

try:
    import spaces  # first: ZeroGPU patches torch's CUDA calls when it is imported
except ImportError:
    spaces = None

import copy
import functools
from collections.abc import Callable

import numpy as np
import torch

from analysis.ood import OODReference
from analysis.report import ImageReport, analyze_image
from analysis.stress import ImageStress, stress_image
from qkvae.image import to_uint8
from qkvae.model import QKVAE
from qkvae.pipeline import reconstruct_set
from qkvae.stream import FittedImages, SetReconstruction

_loaded: dict = {}  # "model": the QKVAE, "reference": its OOD reference or None


def gpu(duration: int):
    """``@spaces.GPU(duration=duration)`` where ``spaces`` is installed, else a no-op decorator."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def use_model(model: QKVAE) -> None:
    """The model that the functions below run (loaded once by the app, on CUDA when there is one)."""
    _loaded["model"] = model


def use_reference(reference: OODReference | None) -> None:
    """The OOD reference ``analyze`` scores against (None: no OOD score or map); kept here, not
    passed, so that a ZeroGPU call does not pickle it every time."""
    _loaded["reference"] = reference


def _model() -> QKVAE:
    if "model" not in _loaded:
        raise RuntimeError("no model: the app calls qkvae_app.gpu.use_model first")
    return _loaded["model"]


@gpu(duration=10)
def analyze(x: np.ndarray) -> ImageReport:
    """One image (3, 96, 96) float32 in [-1, 1] -> its report (``analysis.report``; tensors on the CPU)."""
    return analyze_image(_model(), torch.from_numpy(x), _loaded.get("reference"), stability=False)


@gpu(duration=10)
def encode(x: np.ndarray) -> np.ndarray:
    """One image (3, 96, 96) float32 in [-1, 1] -> its ids, int64 (48, 48)."""
    model = _model()
    ids = model.encode(torch.from_numpy(x)[None].to(model.device))
    return ids.cpu().numpy().reshape(model.config.grid_size, model.config.grid_size)


@gpu(duration=10)
def decode(indices: np.ndarray) -> np.ndarray:
    """ids (N, 2304) or (N, 48, 48) -> uint8 images (N, 96, 96, 3)."""
    model = _model()
    return to_uint8(model.decode(torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(model.device)))


@gpu(duration=60)
def stress(rgb: np.ndarray, name: str) -> ImageStress:
    """One uint8 (96, 96, 3) model input -> its stress suite (``analysis.stress``: about 150 encodes and decodes)."""
    return stress_image(_model(), rgb, name)


@gpu(duration=60)
def reconstruct_images(images: FittedImages) -> SetReconstruction:
    """One chunk of a dataset pass: every image encoded and decoded, with its PSNR and SSIM."""
    return reconstruct_set(_model(), images)


@gpu(duration=60)
def reconstruct_with(model: QKVAE, images: FittedImages) -> SetReconstruction:
    """``reconstruct_images`` with another model (the Compare tab's checkpoint B, passed, not held)."""
    return reconstruct_set(model, images)


def background_reconstruct() -> Callable[[FittedImages], SetReconstruction]:
    """``reconstruct_images`` for work outside any visitor's request (the Dataset tab's pass, in a
    thread). On ZeroGPU a GPU call there carries no visitor and spends the Space's own quota (it
    can fail with "reached its GPU limit"), so it runs a CPU copy of the model instead; elsewhere
    it is ``reconstruct_images`` itself."""
    if spaces is None:
        return reconstruct_images
    return functools.partial(reconstruct_set, copy.deepcopy(_model()).to("cpu"))
