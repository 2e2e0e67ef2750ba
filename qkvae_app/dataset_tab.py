"""The Dataset tab: the configured dataset's whole split measured once (``qkvae_app.dataset``),
its worst (or best) images in a grid, and its PSNR, SSIM and codebook figures.

``DatasetTab(studio)`` holds the handlers; ``build`` lays the tab out and wires its events.
Opening the tab starts the pass; a timer polls it until it is done.
"""

from dataclasses import dataclass

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from analysis import plots
from qkvae_app import dataset, panels
from qkvae_app.components import output_image
from qkvae_app.outputs import Outputs, skip
from qkvae_app.studio import Studio


@dataclass(frozen=True)
class DatasetView(Outputs):
    sample_grid: np.ndarray | None = skip()
    dataset_summary: str = skip()
    dataset_codebook: Figure = skip()
    dataset_levels: Figure = skip()
    dataset_shown: str = skip()  # what this session has been sent: "", "grid" or "all" (state)
    dataset_poll: gr.Timer = skip()


class DatasetTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def _pass(self) -> dataset.DatasetPass:
        self.studio.require_model()  # says so when there is none
        self.studio.dataset.start()  # once: later calls find it running or done
        return self.studio.dataset

    def dataset_grid(self, order: str):
        """Sixteen images of the set in the chosen order: originals above, reconstructions below,
        PSNR under each (None until they are reconstructed)."""
        images = self._pass().grid(order)
        return None if images is None else plots.sample_grid(images.originals, images.reconstructions, images.psnr)

    def evaluate_dataset(self, order: str, shown: str = "") -> DatasetView:
        """The tab as it stands, started on first use: its grid, summary (or progress, or what is
        missing), codebook charts over the whole set, what this session now has, and whether to
        keep polling. The grid and the charts go out once each per session (the charts alone take
        Gradio a second to send), and the grid again when the whole set's order is known."""
        job = self._pass()
        status = job.status()
        now = "all" if job.metrics is not None else "grid" if job.first is not None else ""
        view = {}
        if now and now != shown:
            view["sample_grid"] = self.dataset_grid(order)
        if job.metrics is not None:
            codebook = job.metrics.codebook(self.studio.config)
            if shown != "all":
                view["dataset_codebook"] = plots.codebook_histogram(codebook.counts)
                view["dataset_levels"] = plots.level_histograms_figure(codebook.level_histograms,
                                                                       self.studio.config.levels)
        else:
            codebook = None
        summary = panels.dataset_html(job.description, status, job.metrics, codebook, job.grid_note())
        return DatasetView(**view, dataset_summary=summary, dataset_shown=now,
                           dataset_poll=gr.Timer(active=status.stage not in ("done", "failed")))

    def build(self) -> "DatasetTab":
        studio = self.studio
        with gr.Tab("Dataset", id="dataset") as tab:
            gr.Markdown(f"Images from `{studio.settings.data}` (set `QKVAE_DATA`, and `QKVAE_DATA_SPLIT` for a Hub "
                        "dataset or Parquet files, to use another: an image folder, an STL-10 `.bin`, Parquet "
                        "files). The first time this tab opens, the data is fetched and every image is measured in "
                        "the background, once; the figures below cover them all, and the grid shows the set's "
                        f"{dataset.GRID_SIZE} worst (or best) images once every image is measured.")
            order = gr.Radio(list(dataset.ORDERS), value="worst first", label="Order")
            self.dataset_shown = gr.State("")
            self.dataset_poll = gr.Timer(2.0, active=False)
            self.sample_grid = output_image(f"{dataset.GRID_SIZE} images: originals above, reconstructions "
                                            "below, PSNR under each", elem_classes="framed")
            self.dataset_summary = gr.HTML()
            self.dataset_codebook = gr.Plot(label="Codebook usage over the dataset", show_label=False)
            self.dataset_levels = gr.Plot(label="FSQ levels over the dataset", show_label=False)
        outputs = DatasetView.components(self)
        evaluate = DatasetView.handler(self.evaluate_dataset, len(outputs))
        tab.select(evaluate, [order, self.dataset_shown], outputs, api_name="evaluate_dataset")
        self.dataset_poll.tick(evaluate, [order, self.dataset_shown], outputs, api_visibility="undocumented",
                               show_progress="hidden")
        order.change(self.dataset_grid, order, self.sample_grid, api_name="dataset_grid")
        return self
