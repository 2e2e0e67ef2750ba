"""Shared pieces of the OOD generators: name-seeded random generators, fonts, figure rendering.

Fonts come from matplotlib's wheel (DejaVu and STIX) and Pillow's bundled default font, so
the set looks the same on any machine, whatever fonts the system has.
"""

import zlib
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import ImageFont

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SANS, SERIF, MONO = "DejaVuSans", "DejaVuSerif", "DejaVuSansMono"
PILLOW_DEFAULT = "pillow-default"  # Pillow's bundled font (Aileron), via ImageFont.load_default


def rng(name: str) -> np.random.Generator:
    """A generator seeded by a name: the same numbers in every process (unlike ``hash``)."""
    return np.random.default_rng(zlib.crc32(name.encode()))


@lru_cache(maxsize=None)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A font by file stem in matplotlib's font folder (``"DejaVuSerif-Italic"``), or Pillow's default."""
    if name == PILLOW_DEFAULT:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(FONT_DIR / f"{name}.ttf"), size)


def render(fig: Figure) -> np.ndarray:
    """A matplotlib figure drawn with Agg -> uint8 (H, W, 3)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
