"""The app's output image component: a gr.Image whose file is never rewritten while a browser fetches it."""

import gradio as gr
import numpy as np

from qkvae_app.files import png_file


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
