"""Common image corruptions at severities 1-5, with ImageNet-C's parameters (Hendrycks & Dietterich, 2019).

Each function takes a uint8 (H, W, 3) image, a severity (0 returns the image unchanged) and a
``numpy.random.Generator`` for the noises, and returns a uint8 image of the same shape. The
parameters are those of ImageNet-C's ``make_imagenet_c.py`` as packaged by ``imagecorruptions``
1.1.2, made for 224-pixel images and used here unchanged on 96-pixel ones: at a given severity a
blur or a pixelation removes more of a 96-pixel image's content than of an ImageNet photo's.

The transforms are written here rather than imported: ``imagecorruptions`` 1.1.2 (its latest
release) imports OpenCV and ``pkg_resources`` at module level, neither of which our environment
has (setuptools 84 no longer ships ``pkg_resources``), and its blurs call
``skimage.filters.gaussian`` with ``multichannel=True``, which scikit-image 0.26 no longer
accepts. The ten we use are a few lines each over scikit-image and Pillow.
"""

import io

import numpy as np
import skimage.color
import skimage.filters
from PIL import Image

SEVERITIES = (1, 2, 3, 4, 5)

GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)  # standard deviation, on [0, 1]
SHOT_NOISE = (60, 25, 12, 5, 3)  # photons per unit intensity
IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)  # share of salt-and-pepper pixels
SPECKLE_NOISE = (0.15, 0.2, 0.35, 0.45, 0.6)  # multiplicative standard deviation
GAUSSIAN_BLUR = (1, 2, 3, 4, 6)  # sigma in pixels
JPEG_QUALITY = (25, 18, 15, 10, 7)
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)  # box-downscaled to this share of the side, then nearest-upscaled
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)  # deviations from the mean scaled by this
SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))  # HSV saturation * a + b


def _unit(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float64) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def gaussian_noise(rgb, severity, g):
    x = _unit(rgb)
    return _to_uint8(x + g.normal(scale=GAUSSIAN_NOISE[severity - 1], size=x.shape))


def shot_noise(rgb, severity, g):
    c = SHOT_NOISE[severity - 1]
    return _to_uint8(g.poisson(_unit(rgb) * c) / c)


def impulse_noise(rgb, severity, g):
    x = _unit(rgb).copy()
    hit = g.uniform(size=x.shape)
    amount = IMPULSE_NOISE[severity - 1]
    x[hit < amount / 2] = 0.0  # per channel, as scikit-image's random_noise(mode="s&p") does
    x[hit > 1 - amount / 2] = 1.0
    return _to_uint8(x)


def speckle_noise(rgb, severity, g):
    x = _unit(rgb)
    return _to_uint8(x + x * g.normal(scale=SPECKLE_NOISE[severity - 1], size=x.shape))


def gaussian_blur(rgb, severity, g):
    return _to_uint8(skimage.filters.gaussian(_unit(rgb), sigma=GAUSSIAN_BLUR[severity - 1], channel_axis=-1))


def jpeg_compression(rgb, severity, g):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, "JPEG", quality=JPEG_QUALITY[severity - 1])
    return np.asarray(Image.open(buffer).convert("RGB"))


def pixelate(rgb, severity, g):
    h, w = np.asarray(rgb).shape[:2]
    c = PIXELATE[severity - 1]
    small = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).resize((int(w * c), int(h * c)), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def brightness(rgb, severity, g):
    hsv = skimage.color.rgb2hsv(_unit(rgb))
    hsv[..., 2] = np.clip(hsv[..., 2] + BRIGHTNESS[severity - 1], 0, 1)
    return _to_uint8(skimage.color.hsv2rgb(hsv))


def contrast(rgb, severity, g):
    x = _unit(rgb)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _to_uint8((x - means) * CONTRAST[severity - 1] + means)


def saturate(rgb, severity, g):
    a, b = SATURATE[severity - 1]
    hsv = skimage.color.rgb2hsv(_unit(rgb))
    hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
    return _to_uint8(skimage.color.hsv2rgb(hsv))


CORRUPTIONS = {f.__name__: f for f in (gaussian_noise, shot_noise, impulse_noise, speckle_noise, gaussian_blur,
                                       jpeg_compression, pixelate, brightness, contrast, saturate)}


def corrupt(rgb: np.ndarray, name: str, severity: int, g: np.random.Generator | None = None) -> np.ndarray:
    """``rgb`` with corruption ``name`` at ``severity`` (0: unchanged; 1..5: ImageNet-C's levels).
    ``g`` drives the noises (default: a generator seeded with 0)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"no corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if severity not in (0, *SEVERITIES):
        raise ValueError(f"severity must be 0..{SEVERITIES[-1]}, not {severity}")
    rgb = np.asarray(rgb, dtype=np.uint8)
    return rgb.copy() if severity == 0 else CORRUPTIONS[name](rgb, severity, g or np.random.default_rng(0))
