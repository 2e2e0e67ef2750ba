"""Rendered text: prose, code, number tables and headlines in DejaVu, STIX and Pillow fonts.

Sizes run from small print to a few large words, in light, dark and coloured themes; a few
are rotated; two are the scanned pages bundled with scikit-image.
"""

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from analysis.ood_images.common import MONO, PILLOW_DEFAULT, SANS, SERIF, font, rng

PROSE = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "A tokenizer keeps what it has seen and loses what it has not: thin strokes, sharp edges "
    "and flat colour are where small codebooks fail first. Sphinx of black quartz, judge my vow."
).split()
CODE = (
    "def encode(model, rgb):", "    x = to_tensor(rgb)", "    # (B, 5, 48, 48)",
    "    z = model.encoder(x)", "    return quantize(z)", "", "for i in range(10):",
    "    print(i ** 2, end=' ')", "if __name__ == '__main__':", "    main(sys.argv[1:])",
)
HEADLINES = ("STOP", "SALE 50%", "Hello!", "QKVAE", "Exit →", "Ω ≈ 42", "OPEN", "News")
THEMES = (  # (background, text)
    ("white", "black"), ("#fdf6e3", "#333333"), ("#0b1f3a", "white"), ("black", "#ffd400"),
    ("white", "#c0102b"), ("#e8e8e8", "#1030a0"), ("#1e1e1e", "#d4d4d4"), ("#ffe4ec", "#5a1040"),
    ("#004d26", "#f0fff0"), ("#fff200", "black"),
)
FONTS = (SANS, SERIF, f"{SANS}-Oblique", f"{SERIF}-Italic", f"{SANS}-Bold", "STIXGeneral",
         f"{SERIF}-Bold", PILLOW_DEFAULT)


def wrap(words: list[str], face, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    lines, line = [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and face.getlength(trial) > width:
            lines.append(line)
            trial = word
        line = trial
    return lines + [line]


def text_block(lines, font_name: str, px: int, theme, canvas: int = 96, angle: float = 0.0) -> Image.Image:
    """Lines of text from the top-left corner, cut where the canvas ends, optionally rotated."""
    bg, fg = theme
    im = Image.new("RGB", (canvas, canvas), bg)
    draw, face = ImageDraw.Draw(im), font(font_name, px)
    y, step = max(2, px // 4), round(px * 1.25)
    for line in lines:
        draw.text((max(2, px // 4), y), line, font=face, fill=fg)
        y += step
    return im.rotate(angle, Image.Resampling.BICUBIC, fillcolor=bg) if angle else im


def prose(start: int, font_name: str, px: int, theme, canvas: int, angle: float = 0.0) -> Image.Image:
    """The prose from its ``start``-th word, wrapped to the canvas."""
    words = PROSE[start % len(PROSE):] + PROSE
    return text_block(wrap(words, font(font_name, px), canvas - px // 2), font_name, px, theme, canvas, angle)


def numbers(name: str, px: int, theme) -> Image.Image:
    """A table of seeded numbers in the monospaced font."""
    values = rng(name).normal(0, 100, (12, 3))
    return text_block([" ".join(f"{v:7.2f}" for v in row) for row in values], MONO, px, theme, 128)


def headline(word: str, font_name: str, theme) -> Image.Image:
    """One or two words as large as fit, centred."""
    px = 64
    while font(font_name, px).getlength(word) > 88 and px > 12:
        px -= 2
    im = Image.new("RGB", (96, 96), theme[0])
    ImageDraw.Draw(im).text((48, 48), word, font=font(font_name, px), fill=theme[1], anchor="mm")
    return im


def images() -> dict[str, Image.Image | np.ndarray]:
    out = {}
    for i, px in enumerate((8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 24, 28)):
        canvas = 192 if i % 3 == 0 else 96  # every third one is a page shrunk to a thumbnail
        out[f"prose_{i:02d}"] = prose(7 * i, FONTS[i % len(FONTS)], px * canvas // 96, THEMES[i % len(THEMES)], canvas)
    for i, px in enumerate((8, 10, 12, 14, 9, 11, 13, 16)):
        theme = THEMES[(3 * i + 6) % len(THEMES)]
        mono = (MONO, f"{MONO}-Bold", f"{MONO}-Oblique")[i % 3]
        out[f"code_{i:02d}"] = text_block(CODE[2 * i % len(CODE):] + CODE, mono, px, theme)
    for i, px in enumerate((9, 11, 13, 15, 17, 20)):
        out[f"numbers_{i:02d}"] = numbers(f"numbers_{i}", px, THEMES[(i + 2) % len(THEMES)])
    for i, word in enumerate(HEADLINES):
        out[f"headline_{i:02d}"] = headline(word, FONTS[(i + 4) % len(FONTS)], THEMES[(7 * i + 1) % len(THEMES)])
    for i, angle in enumerate((-12, 20, 35, 90)):
        out[f"rotated_{i:02d}"] = prose(11 * i + 3, FONTS[i], 12 + 2 * i, THEMES[(i + 5) % len(THEMES)], 96, angle)
    out["scan_text"] = skimage.data.text()
    out["scan_page"] = skimage.data.page()
    return out
