"""Build the app's example images (96x96 PNGs in assets/examples/) from images bundled with scikit-image.

    python -m scripts.make_examples [OUT_DIR]

``photo-*`` are natural photos like the STL-10 training distribution; ``ood-*`` are
out-of-distribution cases (text, a close-up face, a logo, a fine texture) on which the
tokenizer is expected to do worse. Everything comes from ``skimage.data`` files shipped with
the package, so the script needs no network.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from qkvae.atomic import atomic_path
from qkvae.image import fit, open_rgb

OUT_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
SIZE = 96


def _crop(a: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    return a[top:top + side, left:left + side]


# file name -> the source image (uint8 array); build() then takes its centre square
EXAMPLES = {
    "photo-cat": lambda: data.chelsea(),
    "photo-coffee": lambda: data.coffee(),
    "photo-rocket": lambda: data.rocket(),
    "photo-motorcycle": lambda: data.stereo_motorcycle()[0],
    "photo-astronaut": lambda: data.astronaut(),
    "ood-face": lambda: _crop(data.astronaut(), 20, 150, 190),  # a close-up face fills the frame
    "ood-text": lambda: _crop(data.page(), 10, 10, 150),  # a scanned page, lines of small print
    "ood-logo": lambda: data.logo(),  # flat colours and sharp edges, alpha on white
    "ood-texture": lambda: _crop(data.gravel(), 200, 200, SIZE),  # gravel at full resolution
}


def build(name: str) -> Image.Image:
    """One example as a 96x96 RGB image: centre-cropped and downsampled with Pillow's bicubic filter."""
    return fit(open_rgb(EXAMPLES[name]()), SIZE, "center_crop")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        path = out / f"{name}.png"
        with atomic_path(path) as staging:
            build(name).save(staging, format="PNG", optimize=True)
        print(f"{path}  {path.stat().st_size / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
