"""Noise and flat colour: uniform, Gaussian, block and salt-and-pepper noise, flat fills, smooth gradients.

Made at the model's size so that no resampling smooths the noise.
"""

import numpy as np

from analysis.ood_images.common import rng

FLAT = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "red": (220, 20, 30),
        "green": (30, 180, 60), "blue": (20, 60, 200), "yellow": (250, 220, 0), "beige": (235, 220, 190)}


def uniform(g, size: int, grey: bool) -> np.ndarray:
    a = g.integers(0, 256, (size, size, 1 if grey else 3), dtype=np.uint8)
    return np.repeat(a, 3, axis=-1) if grey else a


def gaussian(g, size: int, mean, sigma: float) -> np.ndarray:
    return np.clip(np.round(g.normal(mean, sigma, (size, size, 3))), 0, 255).astype(np.uint8)


def blocks(g, size: int, cells: int) -> np.ndarray:
    """Random colours in a coarse grid of ``cells`` x ``cells`` squares (nearest-neighbour upsampled)."""
    a = g.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    return a.repeat(-(-size // cells), axis=0).repeat(-(-size // cells), axis=1)[:size, :size]


def salt_and_pepper(g, size: int, base, amount: float) -> np.ndarray:
    a = np.full((size, size, 3), base, dtype=np.uint8)
    hit = g.uniform(0, 1, (size, size))
    a[hit < amount / 2] = 0
    a[hit > 1 - amount / 2] = 255
    return a


def gradient(size: int, a, b, angle: float = 0.0, radial: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    if radial:
        t = np.hypot(xx - 0.5, yy - 0.5) / np.sqrt(0.5)
    else:
        t = xx * np.cos(np.deg2rad(angle)) + yy * np.sin(np.deg2rad(angle))
        t = (t - t.min()) / np.ptp(t)
    t = t[..., None]
    return np.round((1 - t) * np.asarray(a, float) + t * np.asarray(b, float)).astype(np.uint8)


def images(size: int) -> dict[str, np.ndarray]:
    out = {
        "uniform_rgb": uniform(rng("uniform_rgb"), size, grey=False),
        "uniform_grey": uniform(rng("uniform_grey"), size, grey=True),
        "gaussian_20": gaussian(rng("gaussian_20"), size, 128, 20),
        "gaussian_60": gaussian(rng("gaussian_60"), size, 128, 60),
        "gaussian_dark": gaussian(rng("gaussian_dark"), size, 40, 15),
        "uniform_low_contrast": rng("uniform_low_contrast").integers(108, 148, (size, size, 3), dtype=np.uint8),
        "blocks": blocks(rng("blocks"), size, 8),
        "gaussian_tinted": gaussian(rng("gaussian_tinted"), size, (200, 80, 40), 35),
        "salt_pepper_grey": salt_and_pepper(rng("salt_pepper_grey"), size, 128, 0.2),
        "salt_pepper_white": salt_and_pepper(rng("salt_pepper_white"), size, 255, 0.05),
        "salt_pepper_black": salt_and_pepper(rng("salt_pepper_black"), size, 0, 0.5),
    }
    out.update({f"flat_{name}": np.full((size, size, 3), rgb, dtype=np.uint8) for name, rgb in FLAT.items()})
    out["gradient_horizontal"] = gradient(size, (0, 0, 0), (255, 255, 255))
    out["gradient_vertical"] = gradient(size, (20, 40, 160), (250, 170, 60), 90)
    out["gradient_diagonal"] = gradient(size, (230, 30, 120), (30, 220, 200), 45)
    out["gradient_subtle"] = gradient(size, (120, 120, 120), (150, 150, 150), 120)
    out["gradient_radial"] = gradient(size, (255, 250, 220), (40, 20, 60), radial=True)
    out["gradient_radial_dark"] = gradient(size, (0, 0, 0), (90, 90, 255), radial=True)
    return out
