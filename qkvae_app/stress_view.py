"""The Reconstruct tab's stress test: the open image through ``analysis.stress``'s five families
(scale, shift, corruption, quantization, token noise), on demand: it costs about 150 encodes and
decodes.

``StressView`` holds the outputs, one field per component (``qkvae_app.outputs``): the image's
``stress.json`` entry, a summary, one chart per family (``analysis.plots.stress_figures`` of the
one image) and the map of where rounding the latent to the ids costs most. ``stress_panel`` lays
the components out; ``qkvae_app.reconstruct_tab`` wires the button, the API endpoint ``/stress``.
"""

from dataclasses import dataclass
from html import escape

import gradio as gr
import numpy as np
from matplotlib.figure import Figure

from analysis import plots
from analysis.figures import jsonable
from analysis.stress import ImageStress, aggregate
from qkvae_app.components import pixel_view
from qkvae_app.outputs import Outputs

ROUNDING_VMAX = 8.0  # mean absolute RGB change from rounding, 8-bit units, at the top of the map's scale
FAMILIES = ("scale", "shift", "corruption", "token_noise")  # charted; quantization is the summary and the map


def _point(points, **setting):
    return next(p for p in points if all(getattr(p, k) == v for k, v in setting.items()))


def summary_html(result: ImageStress) -> str:
    """A few readings of the curves, in words."""
    q = result.quantization
    zoom, tiled, moved = _point(result.scale, scale=2.0), _point(result.scale, scale=0.25), _point(result.shift, pixels=2)
    noise = _point(result.token_noise, kind="digit", fraction=0.05)
    return ('<div class="qk-card"><h4>Stress test of ' + escape(result.name) + f" ({result.seconds:.1f} s)</h4>"
            f"<p>Quantization against capacity: <b>{q.psnr_quantized:.2f} dB</b> decoding the ids, "
            f"{q.psnr_continuous:.2f} dB decoding the latent before rounding (rounding costs "
            f"{q.psnr_continuous - q.psnr_quantized:.2f} dB; the map shows where).</p>"
            f"<p>Scale: {tiled.psnr:.2f} dB at 0.25× (tiled), {zoom.psnr:.2f} dB at 2× (zoomed in). "
            f"Shift: after a 2 px (one-token) shift {moved.agreement:.1%} of the tokens match. "
            f"Token noise: one digit moved on 5 % of the tokens gives {noise.psnr:.2f} dB.</p></div>")


@dataclass(frozen=True)
class StressView(Outputs):
    stress_curves: dict  # the image's entry of stress.json (analysis.stress.ImageStress.to_json)
    stress_summary: str
    stress_scale: Figure
    stress_shift: Figure
    stress_corruption: Figure
    stress_token_noise: Figure
    rounding_map: np.ndarray  # (48, 48, 3): per token, how much rounding changes the decoded pixels

    @classmethod
    def of(cls, result: ImageStress) -> "StressView":
        figures = plots.stress_figures(aggregate([result]).to_json())
        return cls(jsonable(result.to_json()), summary_html(result), *(figures[f] for f in FAMILIES),
                   plots.error_heatmap(result.quantization.rounding_cost, ROUNDING_VMAX))


def stress_panel(holder) -> None:
    """The stress test's button and outputs, set as ``holder``'s attributes (inside a tab)."""
    with gr.Group():
        gr.Markdown("### Stress test\nHow this image's reconstruction and tokens respond to scale, shift, "
                    "corruption (ImageNet-C severities), rounding the latent and token noise: about 150 encodes "
                    "and decodes, so it runs only when asked.")
        holder.stress_button = gr.Button("Stress-test this image")
        holder.stress_summary = gr.HTML()
        with gr.Row():
            holder.stress_scale = gr.Plot(label="Scale", format="png")
            holder.stress_shift = gr.Plot(label="Shift", format="png")
        with gr.Row():
            holder.stress_corruption = gr.Plot(label="Corruptions", format="png")
        with gr.Row():
            holder.stress_token_noise = gr.Plot(label="Token noise", format="png")
            holder.rounding_map = pixel_view(f"Rounding cost per token (0–{ROUNDING_VMAX:.0f})")
        with gr.Accordion("The curves (stress.json entry)", open=False):
            holder.stress_curves = gr.JSON(label="stress.json entry")
