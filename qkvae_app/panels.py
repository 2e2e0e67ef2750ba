"""HTML for the app's text panels: status line, OOD verdict, rate table, token readout, dataset summary.

Pure functions from results to strings; their look comes from the classes styled in ``CSS``
below (with the app's few layout rules), which ``qkvae_app.demo`` hands to Gradio.
"""

from html import escape

import numpy as np

from analysis.ood import (IN_DISTRIBUTION, MAP_VMAX, MAP_VMIN, OUT_OF_DISTRIBUTION, TESTS, UNUSUAL, OODReference,
                          OODScore)
from qkvae import fsq
from qkvae.tokens import LMVocab

CSS = """
.framed .image-container, .framed .image-container > button, .framed .image-frame { width: 100%; height: 100%; }
.framed .image-frame { padding: 2.2rem 0.3rem 0.3rem; box-sizing: border-box; }
.framed .image-frame img { width: 100%; height: 100%; object-fit: contain; }
.pixelated .image-frame img { image-rendering: pixelated; }
.qk-header h1 { margin: 0; font-size: 1.6rem; }
.qk-header p { margin: 0.2rem 0 0; color: var(--body-text-color-subdued); }
.qk-status { font-size: 0.85rem; padding: 0.4rem 0.7rem; border-radius: 6px; background: var(--background-fill-secondary); }
.qk-status code { font-size: 0.8rem; }
.qk-opened { margin: 0; font-size: 0.95rem; }
.qk-card { padding: 0.6rem 0.9rem; border: 1px solid var(--border-color-primary); border-radius: 8px; }
.qk-card h4 { margin: 0 0 0.4rem; }
.qk-card p { margin: 0.3rem 0; }
.qk-big { font-size: 1.5rem; font-weight: 600; }
.qk-big small, .qk-note { font-size: 0.8rem; font-weight: 400; color: var(--body-text-color-subdued); }
.qk-badge { padding: 0.1rem 0.5rem; border-radius: 999px; font-weight: 600; font-size: 0.85rem; }
.qk-ok { background: #dcfce7; color: #166534; }
.qk-warn { background: #fef3c7; color: #92400e; }
.qk-bad { background: #fee2e2; color: #991b1b; }
.qk-table tr.qk-drove td { font-weight: 600; }
.qk-table, .qk-table tr { border-collapse: collapse; font-size: 0.85rem; width: 100%; border: none; }
.qk-table td, .qk-table th { padding: 0.15rem 0.5rem; text-align: right; border: none; border-bottom: 1px solid var(--border-color-primary); background: none; }
.qk-table td:first-child, .qk-table th:first-child { text-align: left; }
.qk-gallery img { image-rendering: pixelated; }
.qk-gallery .grid-wrap { max-height: none !important; height: auto !important; overflow: visible !important; }
"""

VERDICT_CLASS = {IN_DISTRIBUTION: "qk-ok", UNUSUAL: "qk-warn", OUT_OF_DISTRIBUTION: "qk-bad"}


def status_html(model, model_error: str | None, reference_note: str) -> str:
    """One line under the title: device, weights file and reference, or why there is no model."""
    if model is None:
        return (
            '<div class="qk-status qk-bad"><b>No model loaded</b>: '
            f"{escape(model_error or '')}. Put trained weights in <code>assets/model.safetensors</code> "
            "(with <code>config.json</code>) or set <code>QKVAE_WEIGHTS</code> to a weights file or folder, "
            "then restart the app.</div>"
        )
    params = sum(p.numel() for p in model.parameters())
    return (
        f'<div class="qk-status">device <b>{escape(str(model.device))}</b> · weights '
        f"<code>{escape(str(model.weights_file.path))}</code> · {params:,} parameters · {reference_note}</div>"
    )


def reference_note(reference: OODReference | None, error: str | None) -> str:
    """Which photos the OOD score is calibrated on, or why there is no score."""
    if reference is None:
        return f'<span class="qk-warn">no OOD reference: {escape(error or "")}</span>'
    return (f"OOD reference: prior fit on {reference.num_images:,} images of {escape(reference.data_name)}, "
            f"calibrated on {len(reference.calibration.values):,} photos")


def ood_html(score: OODScore | None, thresholds: tuple[float, float]) -> str:
    """The OOD verdict in words, the combined score against the thresholds, and each test's
    feature and percentile among the calibration photos (the one that drove the verdict in bold)."""
    if score is None:
        return '<div class="qk-card"><h4>Out-of-distribution score</h4><p>Unavailable: no OOD reference is loaded.</p></div>'
    verdict = score.verdict
    unusual, outside = thresholds
    drove = {verdict.feature: ' class="qk-drove"'}
    rows = "".join(
        f"<tr{drove.get(t.name, '')}><td>{escape(t.title)}</td>"
        f"<td>{score.features.value(t.feature):.2f}</td><td>{score.percentiles[t.name]:.2f}</td></tr>"
        for t in TESTS)
    return (
        '<div class="qk-card"><h4>Out-of-distribution score</h4>'
        f'<p><span class="qk-badge {VERDICT_CLASS[verdict.label]}">{escape(verdict.label)}</span> '
        f"{escape(verdict.explanation)}.</p>"
        f'<p class="qk-big">{score.score:.2f} <small>higher is more unusual; unusual above {unusual:.2f}, '
        f"out of distribution above {outside:.2f} (95th and 99th percentiles of the calibration photos)</small></p>"
        '<table class="qk-table"><tr><th>test</th><th>bits/token</th><th>percentile in its direction</th></tr>'
        f"{rows}</table>"
        '<p class="qk-note">Each row is one test: where the image stands among the calibration photos in the '
        "direction that test flags (99 = further than 99 % of them). Prior bits are tested both ways, too few "
        "(simpler than photos) and too many (more complex), so their value shows twice, with percentiles that "
        "add up to 100.</p>"
        f'<p class="qk-note">The OOD map: per token, the bits it costs under the prior beyond what a photo '
        f"token of the same local detail costs; red more, blue less, {MAP_VMIN:+.0f} to {MAP_VMAX:+.0f} bits on "
        "every image.</p></div>"
    )


def rate_html(report) -> str:
    """Bits per image: fixed-width ids, entropy bounds, and JPEG at the same number of bytes."""
    rate, pixels = report.summary.rate, report.original.shape[0] * report.original.shape[1]
    rows = [("QKVAE ids, fixed width", rate.nominal_bits),
            ("entropy, this image's histogram", rate.own_entropy_bits)]
    if rate.reference_bits is not None:
        rows.append(("entropy, STL-10 reference", rate.reference_bits))
    body = "".join(f"<tr><td>{name}</td><td>{bits:,.0f}</td><td>{bits / 8:,.0f}</td><td>{bits / pixels:.2f}</td></tr>"
                   for name, bits in rows)
    jpeg = rate.jpeg_equal_bytes
    fits = "" if jpeg.fits else " (even quality 1 is larger)"
    return (
        '<div class="qk-card"><h4>Rate</h4><table class="qk-table">'
        f"<tr><th></th><th>bits</th><th>bytes</th><th>bits/px</th></tr>{body}"
        f'<tr><td>JPEG q{jpeg.quality}{fits}</td><td>{8 * jpeg.bytes:,}</td><td>{jpeg.bytes:,}</td>'
        f'<td>{jpeg.bits_per_pixel:.2f}</td></tr></table>'
        f'<p class="qk-note">At equal bytes JPEG reaches {jpeg.psnr:.2f} dB / SSIM {jpeg.ssim:.3f}; '
        f'QKVAE {report.summary.psnr:.2f} dB / SSIM {report.summary.ssim:.3f}.</p></div>'
    )


def token_html(grid: np.ndarray, edited: np.ndarray, row: int, col: int, levels) -> str:
    """The selected token's id and FSQ levels, before and after editing."""
    def describe(index):
        digits = fsq.indices_to_digits(index, levels).tolist()
        cells = "".join(f"<td>{d}<small>/{n - 1}</small></td>" for d, n in zip(digits, levels, strict=True))
        return f"<td><b>{int(index)}</b></td>{cells}"

    head = "".join(f"<th>dim {k}</th>" for k in range(len(levels)))
    changed = int((grid != edited).sum())
    return (
        f'<div class="qk-card"><h4>Token row {row}, column {col}</h4><table class="qk-table">'
        f"<tr><th></th><th>id</th>{head}</tr>"
        f"<tr><td>original</td>{describe(grid[row, col])}</tr>"
        f"<tr><td>edited</td>{describe(edited[row, col])}</tr></table>"
        f'<p class="qk-note">{changed} of {grid.size:,} tokens edited.</p></div>'
    )


def dataset_html(description: str, status, metrics=None, codebook=None, grid_note: str = "") -> str:
    """The Dataset tab's summary (``qkvae_app.dataset``): what went wrong and how to fix it, the
    pass's progress, or once it is done the set's PSNR and SSIM spread and codebook usage; and
    ``grid_note``, what the grid shows."""
    if status.stage == "failed":
        return f'<div class="qk-card"><p><span class="qk-badge qk-bad">no dataset</span> {escape(status.message)}</p></div>'
    if metrics is None:
        progress = (f'<progress value="{status.done}" max="{status.total}"></progress> '
                    f"{status.done:,} of {status.total:,} images" if status.total else "")
        return (f'<div class="qk-card"><p>{escape(status.message)}… {progress}</p><p class="qk-note">The whole '
                f"set is measured once, in the background, and kept; the grid shows {escape(grid_note)}.</p></div>")
    p, s = metrics.psnr, metrics.ssim
    skipped = f" ({len(metrics.skipped):,} unreadable, skipped)" if metrics.skipped else ""
    return (
        f'<div class="qk-card"><p><b>{len(metrics.names):,}</b> images from <code>{escape(description)}</code>{skipped}: '
        f"PSNR mean {p.mean():.2f} dB, min {p.min():.2f}, max {p.max():.2f}; SSIM mean {s.mean():.4f}. "
        f"Codebook: {codebook.codes_seen:,} of {codebook.counts.size:,} codes used ({codebook.usage:.1%}), "
        f"entropy {codebook.entropy_bits:.2f} of {codebook.max_entropy_bits:.2f} bits, "
        f"perplexity {codebook.perplexity:,.0f}.</p>"
        + (f'<p class="qk-note">The grid shows {escape(grid_note)}.</p>' if grid_note else "") + "</div>"
    )


def codebook_label(codebook, bin_width: int) -> str:
    """Title of the per-image codebook chart: how many codes, how spread, and what its axes are
    (the chart's own x-axis title is cut off by the browser's plot at this height)."""
    return (f"Codebook usage: {codebook.codes_seen:,} of {codebook.counts.size:,} codes, "
            f"perplexity {codebook.perplexity:,.0f} (tokens per code id, in bins of {bin_width})")


def sequence_text(seq: np.ndarray, vocab: LMVocab) -> str:
    """An LM sequence as text: a header naming the special ids, then one line per grid row."""
    newrow = vocab.img_newrow
    rows = np.split(seq[1:-1], np.flatnonzero(seq[1:-1] == newrow) + 1)
    header = (f"# {len(seq):,} ids; code i -> {vocab.code_offset} + i; <img_start>={vocab.img_start} "
              f"<img_newrow>={newrow} <img_end>={vocab.img_end}; vocabulary size {vocab.vocab_size:,}")
    lines = [header, str(seq[0])] + [" ".join(map(str, r)) for r in rows if r.size] + [str(seq[-1])]
    return "\n".join(lines)
