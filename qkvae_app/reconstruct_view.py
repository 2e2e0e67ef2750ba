"""The Reconstruct tab's outputs, derived from one ``analysis.report.ImageReport``.

``ReconstructView`` has one field per output (a list field feeds one component per item), and
``outputs`` lists the app's components in the same order, so the handler's return value and the
event's outputs cannot drift apart.
"""

from dataclasses import dataclass, fields

import gradio as gr
import numpy as np
import pandas as pd

from analysis import plots
from analysis.report import ImageReport
from qkvae_app import panels, views


@dataclass(frozen=True)
class ReconstructView:
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
    level_charts: list[pd.DataFrame]  # one per FSQ dimension
    tokens: dict  # the Tokens tab's state: grid, decoded image, file stem

    @classmethod
    def of(cls, report: ImageReport, thresholds: tuple[float, float] | None, codebook_size: int,
           name: str) -> "ReconstructView":
        """The view of ``report``; ``thresholds`` are the OOD reference's (None without one)."""
        cb = report.codebook
        return cls(
            model_input=report.original, reconstruction=report.reconstruction, jpeg=report.summary.rate.jpeg_equal_bytes.rgb,
            psnr=round(float(report.summary.psnr), 2), ssim=round(float(report.summary.ssim), 4),
            token_map=views.clickable(plots.token_heatmap(report.indices, codebook_size)),
            error_map=views.clickable(plots.error_heatmap(report.token_error)),
            ood_map=None if report.ood_map is None else views.clickable(plots.ood_map_heatmap(report.ood_map)),
            ood_panel=panels.ood_html(report.summary.ood_score, thresholds), rate_panel=panels.rate_html(report),
            codebook_chart=gr.BarPlot(views.codebook_frame(cb.counts), label=panels.codebook_label(cb)),
            level_charts=views.level_frames(cb.level_histograms),
            tokens={"grid": report.indices, "decoded": report.reconstruction, "name": name},
        )

    def values(self) -> list:
        """The field values in order, list fields spread out: what the event handler returns."""
        values = [getattr(self, f.name) for f in fields(self)]
        return [v for value in values for v in (value if isinstance(value, list) else [value])]


def outputs(components: dict) -> list:
    """The components named by ``ReconstructView``'s fields, in its order, list entries spread out."""
    names = [f.name for f in fields(ReconstructView)]
    if set(components) != set(names):
        raise ValueError(f"components must be named exactly {names}")
    return [c for name in names for c in (components[name] if isinstance(components[name], list) else [components[name]])]
