"""Image decoding: every Pillow mode, EXIF rotation, resize modes, and clear errors for bad files."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from qkvae import ImageError, load_image, save_png
from qkvae.image import RESIZE_MODES, fit, fit_rgb, open_rgb, to_tensor, to_uint8


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_sources_agree(tmp_path, rgb):
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    from_path = load_image(path)
    assert from_path.shape == (3, 96, 96) and from_path.dtype == torch.float32
    assert from_path.min() >= -1 and from_path.max() <= 1
    for src in (str(path), path.read_bytes(), Image.fromarray(rgb), rgb, rgb.transpose(2, 0, 1)):
        assert torch.equal(load_image(src), from_path)


def test_uint8_round_trip_is_exact(rgb):
    assert np.array_equal(to_uint8(to_tensor(rgb)), rgb)


def test_save_png(tmp_path, rgb):
    save_png(to_tensor(rgb), tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)


def test_exif_rotation_is_applied():
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    assert open_rgb(buf.getvalue()).size == (20, 40)


def test_rgba_is_composited_on_white():
    im = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.all(np.asarray(open_rgb(im)) == 255)
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert np.all(np.abs(np.asarray(open_rgb(half)).astype(int) - 127) <= 1)


@pytest.mark.parametrize("mode,colour,expected", [
    ("L", 100, (100, 100, 100)),
    ("1", 1, (255, 255, 255)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("LA", (50, 255), (50, 50, 50)),
])
def test_modes(mode, colour, expected):
    out = np.asarray(open_rgb(_png_bytes(Image.new(mode, (4, 4), colour)) if mode != "CMYK"
                              else Image.new(mode, (4, 4), colour)))
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == expected


def test_palette_with_transparency():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    im.info["transparency"] = 0
    assert tuple(np.asarray(open_rgb(_png_bytes(im)))[0, 0]) == (255, 255, 255)
    im.info.pop("transparency")
    assert tuple(np.asarray(open_rgb(_png_bytes(im)))[0, 0]) == (10, 20, 30)


def test_sixteen_bit_grayscale_scales_to_eight_bits():
    im = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert np.all(np.asarray(open_rgb(_png_bytes(im))) == 255)
    im = Image.fromarray(np.full((4, 4), 257 * 100, dtype=np.uint16))
    assert np.all(np.asarray(open_rgb(_png_bytes(im))) == 100)


def test_resize_modes():
    wide = np.zeros((50, 200, 3), np.uint8)
    wide[:, 75:125] = 255  # a white centre band, a quarter of the width
    stretch, crop, pad = (to_uint8(load_image(wide, mode=m)) for m in ("resize", "center_crop", "pad"))
    assert stretch.shape == crop.shape == pad.shape == (96, 96, 3)
    assert np.all(crop[:, 2:-2] == 255)  # the centre square is the white band
    assert np.all(pad[0] == 128) and np.all(pad[-1] == 128)  # grey bars above and below
    assert stretch[:, :20].max() == 0 and np.all(stretch[:, 40:56] == 255)
    with pytest.raises(ValueError, match="mode must be one of"):
        load_image(wide, mode="squash")


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge size, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82")


BAD_FILES = {
    "missing.png": (None, "no such image file"),
    "empty.png": (b"", "empty"),
    "notes.txt": (b"hello", "not an image"),
    "cut.png": (_png_bytes(Image.new("RGB", (64, 64), 7))[:60], "corrupt or truncated"),
    # One message from the header alone, whether under Pillow's own limits (89 and 179 Mpixel) or over them.
    "huge.png": (_png_header_only(20000, 20000), "huge.png is 400.0 megapixels; the limit is 40"),
    "big.png": (_png_header_only(8000, 8000), "big.png is 64.0 megapixels; the limit is 40"),
    "bigger.png": (_png_header_only(10000, 10000), "bigger.png is 100.0 megapixels; the limit is 40"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_raise_image_error(tmp_path, name):
    data, message = BAD_FILES[name]
    if data is not None:
        (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageError, match=message):
        load_image(tmp_path / name)
    if data:
        with pytest.raises(ImageError, match=message.split(":")[0].replace(name, "the image")):
            load_image(data)


def test_bad_arrays():
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((5, 5, 5)))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_fit_rgb_is_fit_and_leaves_an_image_at_size_as_it_is(mode):
    rng = np.random.default_rng(0)
    for shape in ((96, 96, 3), (60, 130, 3), (200, 80, 3)):
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        np.testing.assert_array_equal(fit_rgb(rgb, 96, mode), np.asarray(fit(Image.fromarray(rgb), 96, mode)))
    at_size = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert fit_rgb(at_size, 96, mode) is at_size
