"""Photo-like OOD images: scikit-image's bundled photos seen at the wrong scale or damaged.

The card's "very large structures" (``zoomed_in``: a centre or off-centre crop of a third or a
half of the photo's side, enlarged) and "very small structures" (``tiled``: the photo shrunk to
a half, a third or a quarter of the side and tiled), and four kinds of damage made at the
model's size, so that no resampling undoes them: ``low_light`` (exposure cut to an eighth or a
twentieth, gamma 2.2, with photon noise), ``noisy`` (Gaussian noise), ``jpeg`` (quality 10 and 5)
and ``blurred`` (Gaussian blur). Noise is seeded by the image's name.
"""

import numpy as np
import skimage.data
from PIL import Image

from analysis.corruptions import corrupt
from analysis.ood_images.common import rng

ZOOMS = {"2x": (2, 0.5, 0.5), "3x": (3, 0.5, 0.5), "2x_corner": (2, 0.3, 0.7)}  # zoom, centre (row, col) as shares
TILES = (2, 3, 4)
LOW_LIGHT = {"dim": 1 / 8, "dark": 1 / 20}  # exposure
LOW_LIGHT_PHOTONS = 400  # photons at full exposure (shot noise)
DAMAGE = {"noisy": ("gaussian_noise", (1, 3)), "jpeg": ("jpeg_compression", (4, 5)), "blurred": ("gaussian_blur", (1, 2))}


def photos() -> dict[str, np.ndarray]:
    """The bundled colour photos and the grey cameraman, each as its centre square."""
    raw = {"astronaut": skimage.data.astronaut(), "coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea(),
           "rocket": skimage.data.rocket(), "motorcycle": skimage.data.stereo_motorcycle()[0],
           "camera": np.repeat(skimage.data.camera()[..., None], 3, axis=-1)}
    return {name: square(a) for name, a in raw.items()}


def square(a: np.ndarray) -> np.ndarray:
    side = min(a.shape[:2])
    r, c = (a.shape[0] - side) // 2, (a.shape[1] - side) // 2
    return a[r:r + side, c:c + side]


def resized(a: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.LANCZOS))


def zoomed(a: np.ndarray, zoom: int, row: float, col: float) -> np.ndarray:
    """The crop of ``1 / zoom`` of the side centred at (``row``, ``col``) shares of the side."""
    crop = a.shape[0] // zoom
    r = int(np.clip(row * a.shape[0] - crop / 2, 0, a.shape[0] - crop))
    c = int(np.clip(col * a.shape[1] - crop / 2, 0, a.shape[1] - crop))
    return a[r:r + crop, c:c + crop]


def tiled(a: np.ndarray, tiles: int, size: int) -> np.ndarray:
    small = resized(a, -(-size // tiles))
    return np.tile(small, (tiles, tiles, 1))[:size, :size]


def low_light(a: np.ndarray, exposure: float, g: np.random.Generator) -> np.ndarray:
    """Linear light cut to ``exposure``, photon noise, back through gamma 2.2."""
    linear = (a / 255.0) ** 2.2 * exposure
    noisy = g.poisson(linear * LOW_LIGHT_PHOTONS) / LOW_LIGHT_PHOTONS
    return np.rint(np.clip(noisy, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)


def images(size: int) -> dict[str, dict[str, np.ndarray]]:
    """Category -> name -> image."""
    out = {"zoomed_in": {}, "tiled": {}, "low_light": {}, **{kind: {} for kind in DAMAGE}}
    for name, a in photos().items():
        small = resized(a, size)
        out["zoomed_in"].update({f"{name}_{z}": zoomed(a, *spec) for z, spec in ZOOMS.items()})
        out["tiled"].update({f"{name}_{t}x{t}": tiled(a, t, size) for t in TILES})
        out["low_light"].update({f"{name}_{k}": low_light(small, e, rng(f"low_light/{name}_{k}"))
                                 for k, e in LOW_LIGHT.items()})
        for kind, (corruption, severities) in DAMAGE.items():
            out[kind].update({f"{name}_s{s}": corrupt(small, corruption, s, rng(f"{kind}/{name}_s{s}"))
                              for s in severities})
    return out
