"""Image I/O: decode what Pillow reads into RGB, fit it to the model's square, convert to tensors.

Every failure (missing file, not an image, truncated data, decompression bomb) raises
``ImageError`` with a message meant for a person, never a Pillow traceback.
"""

import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from qkvae.atomic import atomic_path

MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)
RESIZE_MODES = ("resize", "center_crop", "pad")
PAD_VALUE = (128, 128, 128)  # mid-grey, i.e. 0 in [-1, 1]


class ImageError(ValueError):
    """An input that cannot be turned into an RGB image."""


def _open(src, name: str) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, np.ndarray):
        return _from_array(src)
    if isinstance(src, (bytes, bytearray)):
        if not src:
            raise ImageError(f"{name} is empty (0 bytes)")
        return Image.open(io.BytesIO(src))
    path = Path(src)
    if not path.is_file():
        raise ImageError(f"no such image file: {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"{name} is empty (0 bytes)")
    return Image.open(path)


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(f"cannot read an array of shape {a.shape} as an image")
    if a.dtype != np.uint8:
        a = np.asarray(a, dtype=np.float64)
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0
        a = np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: 16-bit and float scaled to 8 bits, alpha composited on white."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        a = a / 257.0 if a.max(initial=0) > 255 else (a * 255.0 if a.max(initial=0) <= 1.0 else a)
        im = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _too_large(name: str, pixels: int) -> ImageError:
    return ImageError(f"{name} is {pixels / 1e6:,.1f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}")


def _checked(src, name: str, decode):
    """``decode(im)`` of the image opened from ``src`` (its header only read), once its size is
    checked against ``MAX_PIXELS``; every failure an ``ImageError`` naming ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = _open(src, name)
            if im.width * im.height > MAX_PIXELS:
                raise _too_large(name, im.width * im.height)
            return decode(im)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own limits (89 and 179 megapixels) fire while it reads the header: the same message.
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(name, int(pixels[1]) if pixels else MAX_PIXELS + 1) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name} is corrupt or truncated ({e})") from None


def _name(src, name: str | None) -> str:
    return name or (Path(src).name if isinstance(src, (str, Path)) else "the image")


def image_pixels(src, name: str | None = None) -> int:
    """The image's width times height, read from its header alone (nothing is decoded); raises
    ``ImageError`` as ``open_rgb`` does, for an image over the limit too."""
    return _checked(src, _name(src, name), lambda im: im.width * im.height)


def open_rgb(src, name: str | None = None) -> Image.Image:
    """Decode a path, bytes, PIL image or array into an upright RGB PIL image.

    Errors name the image as ``name``, by default the file's name. The size is checked from the
    header, before anything is decoded.
    """
    def decode(im):
        im.load()
        return _to_rgb(ImageOps.exif_transpose(im))

    return _checked(src, _name(src, name), decode)


def fit(im: Image.Image, size: int = 96, mode: str = "resize") -> Image.Image:
    """Make ``im`` a ``size``x``size`` image: stretch it, crop its centre, or pad it with grey."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {RESIZE_MODES}, not {mode!r}")
    if mode == "center_crop":
        return ImageOps.fit(im, (size, size), Image.Resampling.BICUBIC)
    if mode == "pad":
        return ImageOps.pad(im, (size, size), Image.Resampling.BICUBIC, color=PAD_VALUE)
    return im.resize((size, size), Image.Resampling.BICUBIC)


def fit_rgb(rgb: np.ndarray, size: int = 96, mode: str = "resize") -> np.ndarray:
    """A decoded uint8 (H, W, 3) image fit to ``size`` x ``size`` with ``mode`` (``fit``), the one
    way every set of images is prepared. An image already that size is returned as it is, which is
    what ``fit`` gives for it in every mode (tested), without the round trip through PIL."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"mode must be one of {RESIZE_MODES}, not {mode!r}")
    return rgb if rgb.shape[:2] == (size, size) else np.asarray(fit(open_rgb(rgb), size, mode))


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).float().div(127.5).sub(1.0)
    return x.movedim(-1, -3)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3), rounded to nearest."""
    x = x.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return x.movedim(-3, -1).to(torch.uint8).numpy()


def load_image(src, size: int = 96, mode: str = "resize") -> torch.Tensor:
    """Any image source -> (3, size, size) float32 in [-1, 1], ready for ``model.encode``."""
    return to_tensor(np.asarray(fit(open_rgb(src), size, mode)))


def save_png(x, path) -> None:
    """Save a (3, H, W) tensor in [-1, 1] or a uint8 (H, W, 3) array as a PNG."""
    rgb = to_uint8(x) if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.uint8)
    with atomic_path(path) as staging:
        Image.fromarray(rgb).save(staging, format="PNG")
