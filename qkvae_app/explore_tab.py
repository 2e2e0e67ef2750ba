"""The Explore tab: many uploaded images (files and .zip archives) reconstructed and scored, to
find where the tokenizer fails: a summary, a table, the worst images, CSV and JSON downloads.

``ExploreTab(studio)`` holds the handlers; ``build`` lays the tab out and wires its events, the
API endpoint ``/explore`` among them. Opening an explored image in the Reconstruct tab is wired
by ``qkvae_app.demo``, with the other flows between tabs.
"""

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from analysis.report import image_summary
from qkvae import SourceError
from qkvae_app import explore, files, gpu
from qkvae_app.components import fit_choice
from qkvae_app.errors import refuse
from qkvae_app.groups_view import GroupsPanel
from qkvae_app.outputs import Outputs
from qkvae_app.studio import Studio

MAX_UPLOAD = "10mb"  # a bigger file is refused by Gradio ("File size exceeded maximum allowed size") before any work


@dataclass(frozen=True)
class ExploreView(Outputs):
    explored: explore.Exploration | None  # the run's result (state)
    explore_summary: str
    explore_table: pd.DataFrame | None
    explore_gallery: list | None
    explore_csv: gr.DownloadButton
    explore_json: gr.DownloadButton

    @classmethod
    def cleared(cls, summary: str = "") -> "ExploreView":
        """No results on screen, the downloads disabled: before a run, and after a refused one."""
        return cls(None, summary, None, None, gr.DownloadButton(value=None, interactive=False),
                   gr.DownloadButton(value=None, interactive=False))


def _paths(uploads) -> list[str]:
    """The uploaded files' paths, from Gradio's payloads (``preprocess=False``) or plain paths."""
    return [u["path"] if isinstance(u, dict) else str(u) for u in uploads or []]


class ExploreTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def summarize(self, image):
        """``image_summary`` with the app's OOD reference: each explored image's scores."""
        return image_summary(image, self.studio.reference, self.studio.config)

    def explore_uploads(self, uploads, mode: str, worst_by: str, progress=gr.Progress()) -> ExploreView:
        """Many images (files and .zip archives) -> a summary, a sortable table, the worst images,
        and CSV and JSON downloads. Reconstructed in batches, one run at a time."""
        if not uploads:
            raise refuse("Nothing to explore", "Upload image files or a .zip archive first.")
        self.studio.require_model()
        try:
            result = explore.explore(_paths(uploads), gpu.reconstruct_images, self.summarize,
                                     self.studio.config.image_size, mode, progress)
        except (explore.UploadError, SourceError) as e:
            raise refuse("Cannot explore this upload", str(e)) from None
        csv, json = (gr.DownloadButton(value=path, interactive=True) for path in result.write_files())
        return ExploreView(result, result.summary_html(), result.table(), result.gallery(worst_by), csv, json)

    def clear(self) -> ExploreView:
        """Before a run: the last run's results go, so a refused run leaves none on screen."""
        return ExploreView.cleared('<div class="qk-card"><p>Running…</p></div>')

    def describe_upload(self, uploads) -> str:
        """What a run of the files now in the box would take: files, images, archives, refusals."""
        return explore.describe_upload(_paths(uploads))

    def gallery(self, result, worst_by: str):
        """The worst images of the last run, by PSNR or by OOD score."""
        return None if result is None else result.gallery(worst_by)

    def build(self) -> "ExploreTab":
        with gr.Tab("Explore", id="explore"):
            gr.Markdown("Upload many images, or `.zip` archives of them, to find where the tokenizer fails: "
                        "each is fit to 96×96, reconstructed and scored. Sort the table with a column's header "
                        "menu; click a row or an image to open it in the Reconstruct tab with all its maps. "
                        + explore.LIMITS + f" Each uploaded file (a zip too) may be at most {MAX_UPLOAD}.")
            with gr.Row():
                with gr.Column():
                    self.upload = gr.File(label="Images or .zip archives", file_count="multiple", height=160)
                    self.upload_note = gr.HTML()
                with gr.Column():
                    self.button = gr.Button("Reconstruct and score them", variant="primary")
                    mode = fit_choice()
                    self.worst_by = gr.Radio(list(explore.WORST_BY), value="PSNR", label="Worst images by")
                    with gr.Row():
                        self.explore_csv = gr.DownloadButton("Download the table (.csv)", interactive=False)
                        self.explore_json = gr.DownloadButton("Download the results (.json)", interactive=False)
            self.explored = gr.State()
            self.explore_summary = gr.HTML()
            self.explore_gallery = gr.Gallery(label="Worst images, the ranking value first: original left, "
                                              "reconstruction right (click to open)",
                                              columns=4, height="auto", object_fit="contain", allow_preview=False,
                                              elem_classes="qk-gallery", elem_id="explore-gallery")
            self.explore_table = gr.Dataframe(headers=list(explore.TABLE_COLUMNS.values()), interactive=False,
                                              label="Every image (sort with a header's menu; search above)",
                                              show_search="search", elem_id="explore-table")
            self.groups = GroupsPanel().build(self.explored)
        outputs = ExploreView.components(self)
        self.upload.change(self.describe_upload, self.upload, self.upload_note, preprocess=False,
                           api_visibility="undocumented")
        # Its own queue, one run at a time: a batch never holds up other users' reconstructions.
        start = self.button.click(ExploreView.handler(self.clear, len(outputs)), None, outputs,
                                  api_visibility="undocumented", queue=False)
        self.run = start.then(ExploreView.handler(self.explore_uploads, len(outputs)),
                              [self.upload, mode, self.worst_by], outputs, api_name="explore",
                              preprocess=False, concurrency_id="explore", concurrency_limit=1)
        self.groups.follow(start, self.run)
        self.worst_by.change(self.gallery, [self.explored, self.worst_by], self.explore_gallery,
                             api_visibility="undocumented")
        return self


def _open_explored(result: explore.Exploration, position: int):
    """An explored image (its 96x96 model input) as the Reconstruct tab's input, under its own
    file name (so its token files are named after it), and that tab."""
    name = Path(result.rows[position].name).name
    return files.named_png(result.originals[position], name), gr.Tabs(selected="reconstruct")


def open_gallery_image(result: explore.Exploration, worst_by: str, evt: gr.SelectData):
    """A click on the gallery -> that image in the Reconstruct tab, with all its maps."""
    return _open_explored(result, result.worst(worst_by)[evt.index])


def open_table_row(result: explore.Exploration, evt: gr.SelectData):
    """A click on a row of the table (sorted or not) -> that image in the Reconstruct tab."""
    return _open_explored(result, result.position(evt.row_value[0]))
