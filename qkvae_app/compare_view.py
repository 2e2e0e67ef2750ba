"""The Compare tab's outputs: ``CompareView`` for one image under A and B, ``CompareSetView`` for
a set, one field per output component (``qkvae_app.outputs``).

The one-image view is also the API endpoint ``/compare``: its fields, in order, are what a
client receives (README, "The app's API").
"""

from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import plots
from analysis.compare import ImageComparison
from qkvae.model import QKVAEConfig
from qkvae_app import files, views
from qkvae_app.compare_pass import ComparedSet
from qkvae_app.outputs import Outputs

DIFFERENCE_VMAX = 16.0  # 8-bit levels at either end of the error-difference scale
DIFFERENCE_CMAP = "RdBu_r"  # red: B's error larger, blue: smaller, white: equal
FLIP_CMAP = "Reds"  # white: same id under A and B, dark red: a different id
TABLE_COLUMNS = {"name": "name", "psnr_a": "PSNR A (dB)", "psnr_b": "PSNR B (dB)", "delta": "dPSNR (dB)",
                 "ssim_a": "SSIM A", "ssim_b": "SSIM B", "token_agreement": "token agreement"}


def flips_html(c: ImageComparison, config_a: QKVAEConfig, config_b: QKVAEConfig) -> str:
    """How many tokens B encodes differently, per FSQ digit too; or why ids cannot be compared."""
    if c.token_flips is None:
        return (f'<p class="qk-note">No token-flip map: B\'s tokens (levels {tuple(config_b.levels)}, '
                f"{config_b.grid_size}×{config_b.grid_size}) are not A's (levels {tuple(config_a.levels)}, "
                f"{config_a.grid_size}×{config_a.grid_size}), so equal ids would not mean equal codes.</p>")
    flipped, digits = int(c.token_flips.sum()), c.pair.digit_agreement
    per_digit = ", ".join(f"{d:.3f}" for d in digits)
    return (f'<p class="qk-note"><b>{flipped:,}</b> of {c.token_flips.size:,} tokens differ (agreement '
            f"{c.pair.token_agreement:.4f}); equal FSQ digits per dimension: {per_digit}.</p>")


@dataclass(frozen=True)
class CompareView(Outputs):
    compare_opened: str  # which image, and which B
    compare_input: np.ndarray  # uint8 (96, 96, 3), what both models encode
    reconstruction_a: np.ndarray
    reconstruction_b: np.ndarray
    psnr_a: float  # dB, rounded to 2 decimals
    ssim_a: float  # rounded to 4 decimals
    psnr_b: float
    ssim_b: float
    error_difference: np.ndarray  # |x - x_b| - |x - x_a|, coloured on +-DIFFERENCE_VMAX
    token_flips: np.ndarray | None  # the 48x48 grid, 10 pixels a token; None when the levels differ
    flips_note: str

    @classmethod
    def of(cls, c: ImageComparison, original: np.ndarray, reconstruction_a: np.ndarray,
           reconstruction_b: np.ndarray, config_a: QKVAEConfig, config_b: QKVAEConfig, b_name: str) -> "CompareView":
        p = c.pair
        flips = None if c.token_flips is None else views.clickable(
            plots.colorize(c.token_flips.astype(np.float32), FLIP_CMAP, 0.0, 1.0))
        return cls(
            compare_opened=f'<p class="qk-opened">Showing <b>{escape(p.name)}</b>: A (the app\'s model) against '
                           f"B = <b>{escape(b_name)}</b></p>",
            compare_input=original, reconstruction_a=reconstruction_a, reconstruction_b=reconstruction_b,
            psnr_a=round(p.psnr_a, 2), ssim_a=round(p.ssim_a, 4), psnr_b=round(p.psnr_b, 2), ssim_b=round(p.ssim_b, 4),
            error_difference=plots.colorize(c.error_difference, DIFFERENCE_CMAP, -DIFFERENCE_VMAX, DIFFERENCE_VMAX),
            token_flips=flips, flips_note=flips_html(c, config_a, config_b),
        )


def summary_html(s: ComparedSet, shown: int = 10) -> str:
    """A and B on the set, mean dPSNR with its interval, where B wins, the paired test, skipped entries."""
    c, m = s.comparison, s.comparison.summary
    d, ds = m.delta_psnr, m.delta_ssim
    tokens = (f"<p>Token agreement (share of equal ids): <b>{m.token_agreement:.4f}</b> on average.</p>"
              if m.token_agreement is not None else "<p>No token agreement: A's and B's ids name different codes.</p>")
    text = (f"<p><b>{m.images}</b> images. A <b>{escape(c.a.name)}</b>: {c.a.psnr:.2f} dB, SSIM {c.a.ssim:.4f}; "
            f"B <b>{escape(c.b.name)}</b>: {c.b.psnr:.2f} dB, SSIM {c.b.ssim:.4f}.</p>"
            f'<p class="qk-big">dPSNR (B − A) {d.mean:+.3f} dB <small>95 % interval [{d.low:+.3f}, {d.high:+.3f}] '
            f"(bootstrap, BCa)</small></p>"
            f"<p>dSSIM {ds.mean:+.4f} [{ds.low:+.4f}, {ds.high:+.4f}]. B is better on <b>{m.b_better:.0%}</b> of the "
            f"images (ties {m.ties:.0%}); Wilcoxon signed-rank p = {m.wilcoxon_p:.3g}.</p>{tokens}")
    if c.skipped:
        listed = "".join(f"<li><code>{escape(k['name'])}</code>: {escape(k['reason'])}</li>" for k in c.skipped[:shown])
        more = f"<li>and {len(c.skipped) - shown} more</li>" if len(c.skipped) > shown else ""
        text += f"<p><b>{len(c.skipped)}</b> skipped:</p><ul>{listed}{more}</ul>"
    return f'<div class="qk-card">{text}</div>'


def table(s: ComparedSet) -> pd.DataFrame:
    """One row per image: both PSNRs and SSIMs, dPSNR and token agreement, rounded for display."""
    rows = [{"name": p.name, "psnr_a": p.psnr_a, "psnr_b": p.psnr_b, "delta": p.psnr_b - p.psnr_a, "ssim_a": p.ssim_a,
             "ssim_b": p.ssim_b, "token_agreement": p.token_agreement} for p in s.comparison.images]
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return frame.round({"psnr_a": 2, "psnr_b": 2, "delta": 2, "ssim_a": 4, "ssim_b": 4, "token_agreement": 4}
                       ).rename(columns=TABLE_COLUMNS)


def gallery(s: ComparedSet) -> list[tuple[str, str]]:
    """The worst regressions as (PNG path, caption): original, A and B side by side, each PSNR under
    them; captioned with dPSNR, then the name."""
    items = []
    for i in s.worst():
        p = s.comparison.images[i]
        tile = plots.image_rows([[s.originals[i], s.reconstructions_a[i], s.reconstructions_b[i]]],
                                ["original", f"A {p.psnr_a:.2f}", f"B {p.psnr_b:.2f}"])
        items.append((files.png_file(tile), f"{p.psnr_b - p.psnr_a:+.2f} dB · {p.name}"))
    return items


@dataclass(frozen=True)
class CompareSetView(Outputs):
    compared: ComparedSet | None  # the run's result (state)
    compare_summary: str
    compare_scatter: Figure | None
    compare_gallery: list | None
    compare_table: pd.DataFrame | None

    @classmethod
    def of(cls, s: ComparedSet) -> "CompareSetView":
        pairs = s.comparison.images
        scatter = plots.psnr_scatter([p.psnr_a for p in pairs], [p.psnr_b for p in pairs], "A", "B")
        return cls(s, summary_html(s), scatter, gallery(s), table(s))
