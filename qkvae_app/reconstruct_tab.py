"""The Reconstruct tab: one image in, its reconstruction, JPEG at equal bytes, scores, maps and charts out.

``ReconstructTab(studio)`` holds the handler (callable without a server); ``build`` lays the tab
out inside the demo's ``gr.Tabs`` and wires its own event, the API endpoint ``/reconstruct``.
"""

from pathlib import Path

import gradio as gr

from analysis import plots
from analysis.ood import MAP_VMAX, MAP_VMIN
from qkvae import load_image
from qkvae_app import gpu, views
from qkvae_app.components import fit_choice, pixel_view
from qkvae_app.errors import refuse
from qkvae_app.reconstruct_view import ReconstructView
from qkvae_app.settings import EXAMPLES_DIR
from qkvae_app.studio import Studio


def _name(image) -> str:
    """The file name the person gave the image (Gradio's ``orig_name``), else the path's."""
    if isinstance(image, dict):
        return image.get("orig_name") or Path(image["path"]).name
    return Path(image).name


class ReconstructTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def reconstruct(self, image, mode: str) -> ReconstructView | None:
        """An image file and a resize mode -> input, reconstruction, JPEG at equal bytes, PSNR, SSIM,
        token / error / OOD maps, OOD and rate panels, codebook and level charts, the image's name.

        The event runs with ``preprocess=False``: ``image`` is Gradio's file payload (or a path when
        called directly), so this app, not Pillow inside Gradio, decodes the file and explains failures.
        """
        path = image.get("path") if isinstance(image, dict) else image
        if path is None:  # a cleared input clears the outputs
            return None
        model = self.studio.require_model()
        try:
            x = load_image(path, model.config.image_size, mode)
        except ValueError as e:  # ImageError, or an unknown mode
            raise refuse("Cannot read this image", str(e)) from None
        report = gpu.analyze(x.numpy())
        return ReconstructView.of(report, self.studio.thresholds, model.config.codebook_size, _name(image))

    def build(self, tokens: gr.State) -> "ReconstructTab":
        """Lay the tab out (inside ``gr.Tabs``); ``tokens`` is the Tokens tab's state it fills."""
        config, self.tokens = self.studio.config, tokens
        examples = sorted(EXAMPLES_DIR.glob("*.png"))
        with gr.Tab("Reconstruct", id="reconstruct"):
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    self.image = gr.Image(label="Image", type="filepath", height=260,
                                          sources=["upload", "clipboard", "webcam"])
                    self.mode = fit_choice()
                    gr.Examples([[str(p)] for p in examples], inputs=[self.image], examples_per_page=len(examples),
                                example_labels=[p.stem.replace("-", ": ") for p in examples], label="Examples")
                with gr.Column(scale=3):
                    self.opened = gr.HTML()
                    with gr.Row():
                        self.model_input = pixel_view(f"Model input ({config.image_size}×{config.image_size})")
                        self.reconstruction = pixel_view("Reconstruction")
                        self.jpeg = pixel_view("JPEG at the same bytes")
                    with gr.Row():
                        self.psnr = gr.Number(label="PSNR (dB)", interactive=False)
                        self.ssim = gr.Number(label="SSIM", interactive=False)
                    with gr.Row():
                        self.token_map = pixel_view("Token ids: click to inspect")
                        self.error_map = pixel_view(f"Error per token (0–{plots.ERROR_VMAX:.0f})")
                        self.ood_map = pixel_view(f"OOD map ({MAP_VMIN:+.0f}…{MAP_VMAX:+.0f} bits)")
            with gr.Row():
                self.ood_panel = gr.HTML()
                self.rate_panel = gr.HTML()
            self.codebook_chart = gr.BarPlot(x="first id", y="tokens", label="Codebook usage", height=260,
                                             x_title=f"code id (bins of {views.bin_width(config.codebook_size)})",
                                             y_title="tokens",
                                             x_lim=[0, config.codebook_size], x_axis_format="d")
            with gr.Row():
                self.level_charts = [gr.BarPlot(x="level", y="share", label=f"FSQ dim {k}: share of tokens per level (0..{n - 1})", height=230,
                                                y_title="share of tokens", y_lim=[0, 1], min_width=120)
                                     for k, n in enumerate(config.levels)]
        self.outputs = outputs = ReconstructView.components(self)
        self.event = gr.on([self.image.change, self.mode.change],
                           ReconstructView.handler(self.reconstruct, len(outputs)), [self.image, self.mode],
                           outputs, api_name="reconstruct", preprocess=False)
        return self
