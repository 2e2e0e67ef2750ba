"""The Compare tab: the app's model (A) against a checkpoint B, on one image or on a set.

B is a shipped variant, an uploaded ``model.safetensors`` (+ ``config.json``) or a Hub model
(``qkvae_app.checkpoints``); it is kept in the session's state, its model in the tab's bounded
cache. On one image (the API endpoint ``/compare``): A and B side by side with their PSNR and
SSIM, the difference of their error maps and, when the levels match, the token-flip map. On a
set (the Explore tab's upload, or the Dataset tab's images): the PSNR_A vs PSNR_B scatter, the
summary, the worst regressions and a table; a click on either opens that image above.
``CompareTab(studio)`` holds the handlers; ``build`` lays the tab out and wires its own events;
the set run on Explore's upload is wired by ``qkvae_app.demo``, with the other flows between tabs.
"""

import functools
from pathlib import Path

import gradio as gr
import numpy as np

from analysis.compare import SHIPPED_NAME, CompareError, checkpoint_name
from qkvae import SourceError, WeightsError, open_source
from qkvae.hub import is_hub_ref
from qkvae.image import ImageError, fit_rgb, open_rgb
from qkvae_app import checkpoints, explore, files, gpu
from qkvae_app.checkpoints import CheckpointB, CheckpointCache
from qkvae_app.compare_pass import Named, compare_image, compare_source
from qkvae_app.compare_view import TABLE_COLUMNS, CompareSetView, CompareView
from qkvae_app.components import fit_choice, pixel_view
from qkvae_app.errors import refuse
from qkvae_app.explore_tab import _paths
from qkvae_app.reconstruct_tab import _name
from qkvae_app.studio import Studio

DATASET_LIMIT = 500  # images of the Dataset tab's set compared (its first ones), as many as an upload may hold


class CompareTab:
    def __init__(self, studio: Studio, variants_folder: Path = checkpoints.VARIANTS):
        self.studio, self.variants_folder = studio, variants_folder
        self.cache = CheckpointCache(device=studio.model.device if studio.model is not None else None)

    # ---- checkpoint B
    def _choose(self, name: str, spec) -> tuple[CheckpointB, str]:
        model = self.studio.require_model()
        try:
            b = self.cache.load(name, spec(), model.config.image_size)
        except (WeightsError, CompareError, OSError) as e:
            raise refuse("Cannot load checkpoint B", str(e)) from None
        return b, f'<p class="qk-note">B = {b.describe()}</p>'

    def choose_variant(self, name: str | None):
        """A shipped variant's name -> B, and the line that describes it."""
        if not name:
            raise refuse("No variant", "Choose one of the shipped variants.")
        return self._choose(name, lambda: checkpoints.variant_spec(name, self.variants_folder))

    def choose_upload(self, uploads):
        """Uploaded ``.safetensors`` weights (+ ``config.json``) -> B, and its line."""
        paths = [Path(p) for p in _paths(uploads)]
        if not paths:
            raise refuse("Nothing uploaded", "Upload a .safetensors weights file (and its config.json).")
        return self._choose(next((p.name for p in paths if p.suffix == ".safetensors"), paths[0].name),
                            lambda: checkpoints.stage_upload(paths))

    def choose_hub(self, ref: str):
        """``hf://OWNER/NAME[@revision]`` -> B, and its line."""
        ref = (ref or "").strip()
        if not is_hub_ref(ref):
            raise refuse("Not a Hub reference", f"Write a Hub model as hf://OWNER/NAME[@revision], not {ref!r}.")
        return self._choose(ref, lambda: ref)

    # ---- the two sides
    def _sides(self, b: CheckpointB | None) -> tuple[Named, Named]:
        model = self.studio.require_model()
        if b is None:
            raise refuse("No checkpoint B", "Choose checkpoint B first: a shipped variant, an upload or a Hub model.")
        try:
            model_b = self.cache.model(b)
        except (WeightsError, OSError) as e:
            raise refuse("Cannot load checkpoint B", str(e)) from None
        weights = self.studio.settings.weights
        a = Named(model, SHIPPED_NAME if weights is None else checkpoint_name(str(weights)),
                  model.weights_file.sha256 if model.weights_file else "", gpu.reconstruct_images)
        return a, Named(model_b, b.name, b.sha256, functools.partial(gpu.reconstruct_with, model_b))

    def compare(self, image, mode: str, b: CheckpointB | None) -> CompareView | None:
        """An image file, a fit mode and checkpoint B -> the image as both models take it, A's and
        B's reconstructions, their PSNR (dB) and SSIM, the error difference (|x - x_b| - |x - x_a|:
        red where B is worse) and the token-flip map with a line of counts (or why there is none)."""
        path = image.get("path") if isinstance(image, dict) else image
        if path is None:
            return None
        a, b_side = self._sides(b)
        try:
            rgb = fit_rgb(np.asarray(open_rgb(path, name=_name(image))), a.model.config.image_size, mode)
        except (ImageError, ValueError) as e:
            raise refuse("Cannot read this image", str(e)) from None
        c, ra, rb = compare_image(_name(image), rgb, a, b_side)
        return CompareView.of(c, rgb, ra.reconstructions[0], rb.reconstructions[0], a.model.config,
                              b_side.model.config, b.name)

    # ---- sets
    def compare_upload(self, uploads, mode: str, b: CheckpointB | None, progress=gr.Progress()) -> CompareSetView:
        """The Explore tab's upload (image files and .zip archives) through A and B: summary, scatter,
        worst regressions, table."""
        a, b_side = self._sides(b)
        if not uploads:
            raise refuse("Nothing to compare", "Upload images or a .zip archive in the Explore tab first.")
        try:
            source = explore.open_uploads(_paths(uploads))
        except explore.UploadError as e:
            raise refuse("Cannot compare this upload", str(e)) from None
        try:
            return CompareSetView.of(compare_source(source, a, b_side, mode, progress=progress,
                                                    unlisted=source.unlisted))
        except SourceError as e:
            raise refuse("Cannot compare this upload", str(e)) from None
        finally:
            source.close()

    def compare_dataset(self, mode: str, b: CheckpointB | None, progress=gr.Progress()) -> CompareSetView:
        """The first ``DATASET_LIMIT`` images of the Dataset tab's set through A and B."""
        a, b_side = self._sides(b)
        settings = self.studio.settings
        try:
            source = open_source(str(settings.data), settings.data_split)
            return CompareSetView.of(compare_source(source, a, b_side, mode, DATASET_LIMIT, progress))
        except (SourceError, OSError) as e:
            raise refuse("Cannot read the Dataset tab's images", str(e)) from None

    def open_worst(self, compared, evt: gr.SelectData) -> str:
        """A click on a worst regression -> that image in the one-image comparison above."""
        return self._open(compared, compared.worst()[evt.index])

    def open_row(self, compared, evt: gr.SelectData) -> str:
        """A click on a row of the table (sorted or not) -> that image in the one-image comparison."""
        return self._open(compared, compared.position(evt.row_value[0]))

    @staticmethod
    def _open(compared, position: int) -> str:
        name = compared.comparison.images[position].name
        return files.named_png(compared.originals[position], Path(name).name)

    def build(self) -> "CompareTab":
        names = checkpoints.variants(self.variants_folder)
        with gr.Tab("Compare", id="compare"):
            gr.Markdown("Put the app's model (**A**) next to another checkpoint (**B**): a variant shipped in "
                        "`assets/variants/`, your own `model.safetensors` with its `config.json`, or a Hub model. "
                        f"The last {checkpoints.CACHE_SIZE} checkpoints loaded are kept in memory.")
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    self.variant = gr.Dropdown(names, value=None, label="Checkpoint B: a shipped variant",
                                               info=None if names else "none shipped yet", interactive=bool(names))
                    self.b_upload = gr.File(label="or upload model.safetensors (+ config.json)", file_count="multiple",
                                            file_types=[".safetensors", ".json"], height=110,
                                            elem_id="compare-b-upload")
                    with gr.Row():
                        self.hub = gr.Textbox(label="or a Hub model", placeholder="hf://OWNER/NAME[@revision]",
                                              scale=3)
                        self.hub_button = gr.Button("Load B", scale=1)
                    self.b = gr.State()
                    self.b_note = gr.HTML('<p class="qk-note">No checkpoint B yet.</p>')
                    self.image = gr.Image(label="Image", type="filepath", height=220, sources=["upload", "clipboard"],
                                          elem_id="compare-image")
                    self.mode = fit_choice()
                with gr.Column(scale=3):
                    self.compare_opened = gr.HTML(elem_id="compare-opened")
                    with gr.Row():
                        self.compare_input = pixel_view("Model input")
                        self.reconstruction_a = pixel_view("A's reconstruction")
                        self.reconstruction_b = pixel_view("B's reconstruction")
                    with gr.Row():
                        self.psnr_a = gr.Number(label="PSNR A (dB)", interactive=False)
                        self.ssim_a = gr.Number(label="SSIM A", interactive=False)
                        self.psnr_b = gr.Number(label="PSNR B (dB)", interactive=False)
                        self.ssim_b = gr.Number(label="SSIM B", interactive=False)
                    with gr.Row():
                        self.error_difference = pixel_view("Error B − A (blue: B closer, red: A closer)")
                        self.token_flips = pixel_view("Token flips (dark: a different id)")
                    self.flips_note = gr.HTML()
            gr.Markdown("### On a set\nThe images uploaded in the Explore tab, or the first "
                        f"{DATASET_LIMIT} of the Dataset tab's set, through A and B. Click a worst regression or a "
                        "row to open it above.")
            with gr.Row():
                self.upload_button = gr.Button("Compare on the Explore tab's upload", variant="primary")
                self.dataset_button = gr.Button("Compare on the Dataset tab's images")
            self.compared = gr.State()
            self.compare_summary = gr.HTML(elem_id="compare-summary")
            with gr.Row():
                self.compare_scatter = gr.Plot(label="PSNR B against PSNR A", show_label=False)
                self.compare_gallery = gr.Gallery(label="Worst regressions: original, A, B (click to open)",
                                                  columns=3, height="auto", object_fit="contain",
                                                  allow_preview=False, elem_classes="qk-gallery",
                                                  elem_id="compare-gallery", scale=2)
            self.compare_table = gr.Dataframe(headers=list(TABLE_COLUMNS.values()), interactive=False,
                                              label="Every image (sort with a header's menu)", elem_id="compare-table")
        self._wire()
        return self

    def _wire(self) -> None:
        self.outputs = outputs = CompareView.components(self)
        self.set_outputs = CompareSetView.components(self)
        compare = CompareView.handler(self.compare, len(outputs))
        inputs = [self.image, self.mode, self.b]
        self.event = gr.on([self.image.change, self.mode.change], compare, inputs, outputs, api_name="compare",
                           preprocess=False)
        for trigger, handler, source, api_name in ((self.variant.input, self.choose_variant, self.variant, "b_variant"),
                                                   (self.b_upload.upload, self.choose_upload, self.b_upload, "b_upload"),
                                                   (self.hub_button.click, self.choose_hub, self.hub, "b_hub"),
                                                   (self.hub.submit, self.choose_hub, self.hub, None)):
            trigger(handler, source, [self.b, self.b_note], api_name=api_name, preprocess=False,
                    api_visibility="public" if api_name else "undocumented"
                    ).success(compare, inputs, outputs, api_visibility="undocumented", preprocess=False)
        self.dataset_button.click(CompareSetView.handler(self.compare_dataset, len(self.set_outputs)),
                                  [self.mode, self.b], self.set_outputs, api_name="compare_dataset",
                                  concurrency_id="explore", concurrency_limit=1)
        self.compare_gallery.select(self.open_worst, self.compared, self.image, api_visibility="undocumented")
        self.compare_table.select(self.open_row, self.compared, self.image, api_visibility="undocumented")

    def upload_event(self, uploads: gr.File):
        """Wire the set comparison on ``uploads`` (the Explore tab's file box); called by the demo."""
        return self.upload_button.click(CompareSetView.handler(self.compare_upload, len(self.set_outputs)),
                                        [uploads, self.mode, self.b], self.set_outputs, api_name="compare_upload",
                                        preprocess=False, concurrency_id="explore", concurrency_limit=1)
