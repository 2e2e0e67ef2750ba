"""Textures: seeded synthetic patterns and crops of scikit-image's bundled texture photos.

Synthetic: fractal value noise, stripes, checkerboards at several scales and angles, Voronoi
cells, plaid, wood rings, marble, bricks, polka dots and zigzags. From ``skimage.data``:
brick, grass and gravel cropped at three scales, and the moon's surface.
"""

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from analysis.ood_images.common import rng

CANVAS = 128
YY, XX = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float64)


def blend(t: np.ndarray, a, b) -> np.ndarray:
    """A (H, W) field in [0, 1] -> uint8 RGB between colours ``a`` and ``b``."""
    t = np.clip(t, 0, 1)[..., None]
    return np.round((1 - t) * np.asarray(a, float) + t * np.asarray(b, float)).astype(np.uint8)


def value_noise(g, cells: int, octaves: int) -> np.ndarray:
    """Fractal noise in [0, 1]: random grids of 2^k * ``cells`` cells, smoothly upsampled and summed."""
    total = np.zeros((CANVAS, CANVAS))
    for k in range(octaves):
        grid = g.uniform(0, 1, (cells * 2 ** k,) * 2).astype(np.float32)
        total += np.asarray(Image.fromarray(grid).resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)) / 2 ** k
    return (total - total.min()) / np.ptp(total)


def rotated(angle: float) -> tuple[np.ndarray, np.ndarray]:
    a = np.deg2rad(angle)
    return XX * np.cos(a) + YY * np.sin(a), -XX * np.sin(a) + YY * np.cos(a)


def stripes(angle: float, period: float, a, b, soft: bool) -> np.ndarray:
    u, _ = rotated(angle)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    return blend(wave if soft else wave > 0.5, a, b)


def checkerboard(angle: float, period: float, a, b) -> np.ndarray:
    u, v = rotated(angle)
    return blend((np.floor(u / period) + np.floor(v / period)) % 2, a, b)


def voronoi(g, points: int, edges: bool) -> np.ndarray:
    seeds = g.uniform(0, CANVAS, (points, 2))
    d = np.hypot(YY[..., None] - seeds[:, 0], XX[..., None] - seeds[:, 1])  # (H, W, points)
    nearest = np.sort(d, axis=-1)
    out = g.integers(40, 230, (points, 3), dtype=np.uint8)[d.argmin(axis=-1)]
    if edges:
        out[nearest[..., 1] - nearest[..., 0] < 1.5] = 20
    return out


def plaid(g) -> np.ndarray:
    colours = g.integers(0, 256, (3, 3)).astype(float)
    h = (np.sin(2 * np.pi * XX / g.uniform(12, 30)) > 0.3)[..., None]
    v = (np.sin(2 * np.pi * YY / g.uniform(12, 30)) > 0.3)[..., None]
    return np.round(colours[0] * (1 - 0.5 * h - 0.5 * v) + colours[1] * 0.5 * h + colours[2] * 0.5 * v).astype(np.uint8)


def wood(g) -> np.ndarray:
    r = np.hypot(XX - g.uniform(-40, 0), YY - g.uniform(0, CANVAS))
    rings = 0.5 + 0.5 * np.sin(r / g.uniform(2, 4) + 6 * value_noise(g, 4, 2))
    return blend(rings, (120, 70, 30), (210, 160, 100))


def marble(g) -> np.ndarray:
    veins = np.abs(np.sin(XX / 14 + YY / 30 + 8 * value_noise(g, 3, 4)))
    return blend(veins ** 0.4, (60, 60, 70), (235, 235, 230))


def bricks(g, height: int) -> Image.Image:
    im = Image.new("RGB", (CANVAS, CANVAS), (200, 195, 185))
    d = ImageDraw.Draw(im)
    for row in range(CANVAS // height + 1):
        offset = (row % 2) * height
        for x in range(-offset, CANVAS, 2 * height):
            red = g.integers(130, 190)
            d.rectangle((x + 1, row * height + 1, x + 2 * height - 2, (row + 1) * height - 2),
                        fill=(int(red), int(red * 0.45), int(red * 0.35)))
    return im


def dots(g, period: int, a, b) -> np.ndarray:
    r = np.hypot(XX % period - period / 2, YY % period - period / 2)
    return blend(r < period * g.uniform(0.2, 0.4), a, b)


def zigzag(period: int, a, b) -> np.ndarray:
    tri = np.abs((XX / period) % 2 - 1) * period
    return blend(((YY + tri) // (period / 2)) % 2, a, b)


NOISES = (  # name, cells of the coarsest grid, octaves, the two colours
    ("noise_fine", 16, 3, (0, 0, 0), (255, 255, 255)),
    ("noise_coarse", 3, 5, (30, 60, 20), (170, 200, 90)),
    ("clouds", 4, 6, (60, 120, 220), (255, 255, 255)),
    ("lava", 6, 4, (90, 0, 0), (255, 200, 0)),
)


def synthetic() -> dict[str, np.ndarray | Image.Image]:
    out = {}
    for name, cells, octaves, a, b in NOISES:
        out[name] = blend(value_noise(rng(name), cells, octaves), a, b)
    for i, (angle, period, soft) in enumerate(((0, 8, False), (45, 14, True), (80, 5, False), (-30, 24, True))):
        out[f"stripes_{i}"] = stripes(angle, period, (20, 20, 90 + 40 * i), (240, 220 - 30 * i, 200), soft)
    white, red = (245, 245, 245), (220, 40, 40)
    for i, (angle, period, light) in enumerate(((0, 8, white), (30, 16, red), (12, 4, white))):
        out[f"checkerboard_{i}"] = checkerboard(angle, period, (10, 10, 10), light)
    for i, (points, edges) in enumerate(((12, True), (40, False), (80, True))):
        out[f"voronoi_{i}"] = voronoi(rng(f"voronoi_{i}"), points, edges)
    out.update({f"plaid_{i}": plaid(rng(f"plaid_{i}")) for i in range(2)})
    out.update({f"wood_{i}": wood(rng(f"wood_{i}")) for i in range(2)})
    out.update({f"marble_{i}": marble(rng(f"marble_{i}")) for i in range(2)})
    out.update({f"bricks_{i}": bricks(rng(f"bricks_{i}"), height) for i, height in enumerate((10, 18))})
    out["dots_0"] = dots(rng("dots_0"), 12, (250, 245, 230), (200, 30, 60))
    out["dots_1"] = dots(rng("dots_1"), 20, (20, 30, 80), (250, 220, 0))
    out["zigzag_0"] = zigzag(10, (0, 0, 0), (255, 255, 255))
    out["zigzag_1"] = zigzag(18, (0, 120, 110), (250, 180, 150))
    return out


def photographed() -> dict[str, np.ndarray]:
    out = {}
    for name in ("brick", "grass", "gravel"):
        photo = getattr(skimage.data, name)()
        out.update({f"{name}_{side}": photo[:side, -side:] for side in (64, 160, 512)})
    out["moon"] = skimage.data.moon()[100:400, 100:400]
    return out


def images() -> dict[str, np.ndarray | Image.Image]:
    return synthetic() | photographed()
