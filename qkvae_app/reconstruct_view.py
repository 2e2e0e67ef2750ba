"""The Reconstruct tab's outputs, derived from one ``analysis.report.ImageReport``: one field per
output component (``qkvae_app.outputs``)."""

from dataclasses import dataclass
from html import escape
from pathlib import PurePosixPath

import gradio as gr
import numpy as np
import pandas as pd

from analysis import plots
from analysis.complexity import expectation
from analysis.report import ImageReport
from qkvae_app import panels, views
from qkvae_app.outputs import Outputs, per_item
from qkvae_app.tokens_tab import TokenState


@dataclass(frozen=True)
class ReconstructView(Outputs):
    model_input: np.ndarray
    reconstruction: np.ndarray
    jpeg: np.ndarray
    psnr: float
    ssim: float
    token_map: np.ndarray
    error_map: np.ndarray
    ood_map: np.ndarray | None
    ood_panel: str
    rate_panel: str
    codebook_chart: gr.BarPlot
    level_charts: list[pd.DataFrame] = per_item()  # one per FSQ dimension
    opened: str  # which image is shown, by its own name
    tokens: TokenState  # the Tokens tab's state
    expected: str  # the PSNR against a photo's as detailed (analysis.complexity)

    @classmethod
    def of(cls, report: ImageReport, thresholds: tuple[float, float] | None, codebook_size: int,
           name: str) -> "ReconstructView":
        """The view of ``report`` for the image file called ``name``; ``thresholds`` are the OOD
        reference's (None without one)."""
        cb = report.codebook
        return cls(
            model_input=report.original, reconstruction=report.reconstruction, jpeg=report.summary.rate.jpeg_equal_bytes.rgb,
            psnr=round(float(report.summary.psnr), 2), ssim=round(float(report.summary.ssim), 4),
            token_map=views.clickable(plots.token_heatmap(report.indices, codebook_size)),
            error_map=views.clickable(plots.error_heatmap(report.token_error)),
            ood_map=None if report.ood_map is None else views.clickable(plots.ood_map_heatmap(report.ood_map)),
            ood_panel=panels.ood_html(report.summary.ood_score, thresholds), rate_panel=panels.rate_html(report),
            codebook_chart=gr.BarPlot(views.codebook_frame(cb.counts),
                                      label=panels.codebook_label(cb, views.bin_width(codebook_size))),
            level_charts=views.level_frames(cb.level_histograms),
            opened=f'<p class="qk-opened">Showing <b>{escape(name)}</b></p>',
            tokens=TokenState(report.indices, report.reconstruction, PurePosixPath(name).stem),
            expected=panels.expectation_html(expectation(report.original, float(report.summary.psnr))),
        )
