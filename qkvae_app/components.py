"""The app's shared component makers: output images whose files are never rewritten while a
browser fetches them, enlarged pixel views, and the fit-to-square choices."""

import gradio as gr
import numpy as np

from qkvae.image import RESIZE_MODES
from qkvae_app.files import png_file

IMAGE_HEIGHT = 240  # every enlarged 96x96 image and 48x48 map is shown at this height
MODE_LABELS = {"resize": "stretch (as the card)", "center_crop": "centre crop", "pad": "pad with grey"}
MODE_CHOICES = [(MODE_LABELS[m], m) for m in RESIZE_MODES]


class ServedImage(gr.Image):
    """A gr.Image that hands its arrays to Gradio as files from ``png_file``.

    ``is_template`` makes the browser draw it as a plain gr.Image. It keeps gr.Image's
    constructor: Gradio sends the browser only the props named in the constructor's signature.
    """

    is_template = True

    def postprocess(self, value):
        return super().postprocess(png_file(value) if isinstance(value, np.ndarray) else value)


def output_image(label: str, **kwargs) -> ServedImage:
    """A read-only PNG output image with download and fullscreen buttons."""
    return ServedImage(label=label, format="png", interactive=False, buttons=["download", "fullscreen"], **kwargs)


def pixel_view(label: str, height: int = IMAGE_HEIGHT) -> ServedImage:
    """An output image enlarged with square pixels (PNG, so nothing is blurred by compression)."""
    return output_image(label, height=height, elem_classes=["framed", "pixelated"])


def fit_choice() -> gr.Radio:
    """How an image is fit to the model's square."""
    return gr.Radio(MODE_CHOICES, value="resize", label="Fit to 96×96")
