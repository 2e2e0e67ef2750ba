"""QKVAE Studio: see what the QKVAE-1m tokenizer keeps and loses, one image or a dataset at a time.

    python app.py        # then open http://127.0.0.1:7860

Handlers come first, then the layout (``with gr.Blocks() as demo``), then the event wiring.
The model and the reference token statistics are loaded once, at import; nothing goes to the
network then (the Dataset tab's data is fetched in the background once the tab opens). Settings
come from the environment: QKVAE_WEIGHTS, QKVAE_DATA, QKVAE_DATA_SPLIT, QKVAE_REFERENCE (see
``qkvae_app/settings.py``). The model runs only inside ``qkvae_app.gpu``'s functions, GPU calls
on a ZeroGPU Space. The main handler is the API endpoint ``/reconstruct``.
"""

from qkvae_app import gpu  # noqa: I001 — first: on ZeroGPU, `spaces` must come before any CUDA work

from pathlib import Path

import gradio as gr
import numpy as np

from analysis import plots
from analysis.ood import MAP_VMAX, MAP_VMIN
from analysis.report import image_summary
from qkvae import QKVAEConfig, SourceError, TokenError, load_image, load_tokens
from qkvae.image import RESIZE_MODES
from qkvae.tokens import lm_vocab
from qkvae.weights import weights_fingerprint
from qkvae_app import dataset, explore, files, panels, reconstruct_view, views
from qkvae_app.components import ServedImage, output_image
from qkvae_app.edit import nudge_token
from qkvae_app.settings import EXAMPLES_DIR, Settings, load_model, load_ood_reference

SETTINGS = Settings.from_env()
MODEL, MODEL_ERROR = load_model(SETTINGS)
CONFIG = MODEL.config if MODEL is not None else QKVAEConfig()
if MODEL is not None:
    gpu.use_model(MODEL)
REFERENCE, REFERENCE_ERROR = load_ood_reference(SETTINGS, weights_fingerprint(MODEL)[1] if MODEL is not None else None)
gpu.use_reference(REFERENCE)
THRESHOLDS = REFERENCE.calibration.thresholds if REFERENCE is not None else None
STATUS = panels.status_html(MODEL, MODEL_ERROR, panels.reference_note(REFERENCE, REFERENCE_ERROR))
DATASET = None if MODEL is None else dataset.DatasetPass(
    str(SETTINGS.data), SETTINGS.data_split, weights_fingerprint(MODEL)[1], gpu.reconstruct_images, CONFIG)
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.png"))
MODE_LABELS = {"resize": "stretch (as the card)", "center_crop": "centre crop", "pad": "pad with grey"}
MODE_CHOICES = [(MODE_LABELS[m], m) for m in RESIZE_MODES]


# ---------------------------------------------------------------- handlers

def _model():
    if MODEL is None:
        raise gr.Error(f"No model is loaded: {MODEL_ERROR}", title="No weights")
    return MODEL


def _decode(grid: np.ndarray) -> np.ndarray:
    _model()  # says so when there is none
    return gpu.decode(grid[None])[0]


def reconstruct(image, mode: str):
    """An image file and a resize mode -> input, reconstruction, JPEG at equal bytes, PSNR, SSIM,
    token / error / OOD maps, OOD and rate panels, codebook and level charts, tokens.

    The event runs with ``preprocess=False``: ``image`` is Gradio's file payload (or a path when
    called directly), so this app, not Pillow inside Gradio, decodes the file and explains failures.
    """
    path = image.get("path") if isinstance(image, dict) else image
    if path is None:  # a cleared input clears the outputs
        return [None] * len(RECONSTRUCT_OUTPUTS)
    model = _model()
    try:
        x = load_image(path, model.config.image_size, mode)
    except ValueError as e:  # ImageError, or an unknown mode
        raise gr.Error(str(e), title="Cannot read this image") from None
    report = gpu.analyze(x.numpy())
    return reconstruct_view.ReconstructView.of(report, THRESHOLDS, model.config.codebook_size, Path(path).stem).values()


def open_tokens(tokens, row: int, col: int):
    """Show a token grid in the Tokens tab, unedited, with its files ready to download."""
    if tokens is None:
        return [None] * len(TOKEN_OUTPUTS)
    grid = tokens["grid"]
    return (grid.copy(), views.token_grid_view(grid, row, col), tokens["decoded"], tokens["decoded"],
            views.change_map(tokens["decoded"], tokens["decoded"]),
            panels.token_html(grid, grid, row, col, CONFIG.levels), files.token_files(grid, tokens["name"]))


def decode_token_file(path):
    """A .npy or .json file of 2,304 ids -> the tokens to show (decoded) in the Tokens tab."""
    if path is None:
        return None
    try:
        grid = load_tokens(path)
    except TokenError as e:
        raise gr.Error(str(e), title="Not a token file") from None
    return {"grid": grid, "decoded": _decode(grid), "name": Path(path).stem.removesuffix("-tokens")}


def select_token(evt: gr.SelectData):
    """A click on the enlarged token grid -> the (row, col) of the token under it."""
    return views.cell_at(*evt.index)


def inspect_token(evt: gr.SelectData):
    """A click on a 48x48 map of the Reconstruct tab -> that token, shown in the Tokens tab."""
    return *views.cell_at(*evt.index), gr.Tabs(selected="tokens")


def show_token(tokens, edited, row: int, col: int):
    """The token grid with (row, col) outlined, and that token's id and FSQ levels."""
    if tokens is None or edited is None:
        return None, ""
    row, col = int(np.clip(row, 0, CONFIG.grid_size - 1)), int(np.clip(col, 0, CONFIG.grid_size - 1))
    return views.token_grid_view(edited, row, col), panels.token_html(tokens["grid"], edited, row, col, CONFIG.levels)


def _nudge(tokens, edited, row: int, col: int, dim: int, step: int):
    if tokens is None or edited is None:
        raise gr.Error("Reconstruct an image or decode a token file first.", title="No tokens")
    try:
        edited = nudge_token(edited, int(row), int(col), int(dim), step, CONFIG.levels)
    except ValueError as e:
        raise gr.Error(str(e), title="Cannot move this token") from None
    decoded = _decode(edited)
    return (edited, decoded, views.change_map(tokens["decoded"], decoded), *show_token(tokens, edited, row, col))


def level_down(tokens, edited, row: int, col: int, dim: int):
    """Move FSQ dimension ``dim`` of token (row, col) one level down and decode the edited grid."""
    return _nudge(tokens, edited, row, col, dim, -1)


def level_up(tokens, edited, row: int, col: int, dim: int):
    """Move FSQ dimension ``dim`` of token (row, col) one level up and decode the edited grid."""
    return _nudge(tokens, edited, row, col, dim, +1)


def lm_sequence(tokens, base_vocab_size):
    """The LM-ready sequence for a vocabulary of ``base_vocab_size`` entries: its ids as text, and a file."""
    if tokens is None:
        raise gr.Error("Reconstruct an image or decode a token file first.", title="No tokens")
    if base_vocab_size is None or base_vocab_size < 0:
        raise gr.Error("The base vocabulary size must be a whole number, 0 or more.", title="Vocabulary size")
    seq, path = files.lm_file(tokens["grid"], int(base_vocab_size), tokens["name"])
    return panels.sequence_text(seq, lm_vocab(int(base_vocab_size)).to_json()), gr.DownloadButton(value=path, interactive=True)


def _dataset_pass() -> dataset.DatasetPass:
    _model()  # says so when there is none
    DATASET.start()  # once: later calls find it running or done
    return DATASET


def dataset_grid(order: str):
    """The dataset's first sixteen images in the chosen order: originals above, reconstructions
    below, PSNR under each (None until they are reconstructed)."""
    images = _dataset_pass().grid(order)
    return None if images is None else plots.sample_grid(images.originals, images.reconstructions, images.psnr)


def evaluate_dataset(order: str, shown: str = ""):
    """The Dataset tab as it stands, started on first use: its grid, summary (or progress, or what
    is missing), codebook charts over the whole set, what this session now has, and whether to
    keep polling.

    ``shown`` is what the session has been sent ("", the "grid", or "all"): the grid and the
    charts go out once each (the charts alone take Gradio a second to send).
    """
    job = _dataset_pass()
    status = job.status()
    now = "all" if job.metrics is not None else "grid" if job.first is not None else ""
    grid = dataset_grid(order) if now and not shown else gr.skip()
    charts, codebook = [gr.skip()] * 2, None
    if job.metrics is not None:
        codebook = job.metrics.codebook(CONFIG)
        if shown != "all":
            charts = [plots.codebook_histogram(codebook.counts),
                      plots.level_histograms_figure(codebook.level_histograms, CONFIG.levels)]
    summary = panels.dataset_html(job.description, status, job.metrics, codebook)
    return grid, summary, *charts, now, gr.Timer(active=status.stage not in ("done", "failed"))


def summarize(image):
    """``image_summary`` with the app's OOD reference: each explored image's scores."""
    return image_summary(image, REFERENCE, CONFIG)


def explore_uploads(uploads, mode: str, worst_by: str, progress=gr.Progress()):
    """Many images (files and .zip archives) -> the result, a summary, a sortable table, the worst
    images, and CSV and JSON downloads. Reconstructed in batches, one run at a time."""
    if not uploads:
        raise gr.Error("Upload image files or a .zip archive first.", title="Nothing to explore")
    _model()  # says so when there is none
    try:
        result = explore.explore(uploads, gpu.reconstruct_images, summarize, CONFIG.image_size, mode, progress)
    except (explore.UploadError, SourceError) as e:
        raise gr.Error(str(e), title="Cannot explore this upload") from None
    downloads = [gr.DownloadButton(value=path, interactive=True) for path in result.write_files()]
    return result, result.summary_html(), result.table(), result.gallery(worst_by), *downloads


def explore_gallery(result, worst_by: str):
    """The worst images of the last run, by PSNR or by OOD score."""
    return None if result is None else result.gallery(worst_by)


def _open_explored(result, position: int):
    """An explored image (its 96x96 model input) as the Reconstruct tab's input, and that tab."""
    return files.png_file(result.originals[position]), gr.Tabs(selected="reconstruct")


def open_gallery_image(result, worst_by: str, evt: gr.SelectData):
    """A click on the gallery -> that image in the Reconstruct tab, with all its maps."""
    return _open_explored(result, result.worst(worst_by)[evt.index])


def open_table_row(result, evt: gr.SelectData):
    """A click on a row of the table (sorted or not) -> that image in the Reconstruct tab."""
    return _open_explored(result, result.position(evt.row_value[0]))


# ---------------------------------------------------------------- layout

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", font=SYSTEM_FONTS,  # no web fonts: works offline
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
CSS = """
.framed .image-container, .framed .image-container > button, .framed .image-frame { width: 100%; height: 100%; }
.framed .image-frame { padding: 2.2rem 0.3rem 0.3rem; box-sizing: border-box; }
.framed .image-frame img { width: 100%; height: 100%; object-fit: contain; }
.pixelated .image-frame img { image-rendering: pixelated; }
.qk-header h1 { margin: 0; font-size: 1.6rem; }
.qk-header p { margin: 0.2rem 0 0; color: var(--body-text-color-subdued); }
.qk-status { font-size: 0.85rem; padding: 0.4rem 0.7rem; border-radius: 6px; background: var(--background-fill-secondary); }
.qk-status code { font-size: 0.8rem; }
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
"""
MAX_UPLOAD = "10mb"  # a bigger upload is refused by Gradio ("File size exceeded maximum allowed size") before any work
LAUNCH_OPTIONS = {"theme": THEME, "css": CSS, "max_file_size": MAX_UPLOAD}
IMAGE_HEIGHT = 240  # every enlarged 96x96 image and 48x48 map is shown at this height
CACHE_LIFETIME = (3600, 3600)  # every hour, delete the served files older than an hour


def pixel_view(label: str, height: int = IMAGE_HEIGHT) -> ServedImage:
    """An output image enlarged with square pixels (PNG, so nothing is blurred by compression)."""
    return output_image(label, height=height, elem_classes=["framed", "pixelated"])


with gr.Blocks(title="QKVAE Studio", analytics_enabled=False, delete_cache=CACHE_LIFETIME) as demo:
    gr.HTML('<div class="qk-header"><h1>QKVAE Studio</h1><p>What the QKVAE-1m tokenizer keeps and loses: '
            "a 96×96 image becomes 48×48 = 2,304 FSQ tokens (ids 0..15,359) and back.</p></div>")
    gr.HTML(STATUS)
    tokens, edited = gr.State(), gr.State()

    with gr.Tabs() as tabs:
        with gr.Tab("Reconstruct", id="reconstruct"):
            with gr.Row():
                with gr.Column(scale=1, min_width=260):
                    image = gr.Image(label="Image", type="filepath", height=260,
                                     sources=["upload", "clipboard", "webcam"])
                    mode = gr.Radio(MODE_CHOICES, value="resize", label="Fit to 96×96")
                    gr.Examples([[str(p)] for p in EXAMPLES], inputs=[image], examples_per_page=len(EXAMPLES),
                                example_labels=[p.stem.replace("-", ": ") for p in EXAMPLES], label="Examples")
                with gr.Column(scale=3):
                    with gr.Row():
                        model_input = pixel_view("Model input (96×96)")
                        reconstruction = pixel_view("Reconstruction")
                        jpeg = pixel_view("JPEG at the same bytes")
                    with gr.Row():
                        psnr = gr.Number(label="PSNR (dB)", interactive=False)
                        ssim = gr.Number(label="SSIM", interactive=False)
                    with gr.Row():
                        token_map = pixel_view("Token ids: click to inspect")
                        error_map = pixel_view(f"Error per token (0–{plots.ERROR_VMAX:.0f})")
                        ood_map = pixel_view(f"OOD map ({MAP_VMIN:+.0f}…{MAP_VMAX:+.0f} bits)")
            with gr.Row():
                ood_panel = gr.HTML()
                rate_panel = gr.HTML()
            codebook_chart = gr.BarPlot(x="first id", y="tokens", label="Codebook usage", height=220,
                                        x_title="code id (bins of 128)", y_title="tokens",
                                        x_lim=[0, CONFIG.codebook_size],
                                        x_axis_format="d")
            with gr.Row():
                level_charts = [gr.BarPlot(x="level", y="share", label=f"FSQ dim {k}: {n} levels", height=200,
                                           y_title="share of tokens", y_lim=[0, 1], min_width=120)
                                for k, n in enumerate(CONFIG.levels)]

        with gr.Tab("Tokens", id="tokens"):
            gr.Markdown("The tokens of the last reconstruction, or of a token file you decode. Click a token "
                        "(or type its row and column), pick an FSQ dimension and move it a level to see what it "
                        "encodes. A click on a map of the Reconstruct tab opens its token here.")
            with gr.Row():
                with gr.Column(scale=2):
                    grid_view = pixel_view("Token ids: click a token", height=384)
                with gr.Column(scale=2):
                    with gr.Row():
                        row = gr.Number(24, label="row", precision=0, minimum=0, maximum=CONFIG.grid_size - 1)
                        col = gr.Number(24, label="column", precision=0, minimum=0, maximum=CONFIG.grid_size - 1)
                    dim = gr.Radio([(f"dim {k} ({n} levels)", k) for k, n in enumerate(CONFIG.levels)], value=0,
                                   label="FSQ dimension")
                    with gr.Row():
                        down = gr.Button("− 1 level")
                        up = gr.Button("+ 1 level", variant="primary")
                        reset = gr.Button("Reset edits", variant="secondary")
                    token_info = gr.HTML()
            with gr.Row():
                decoded_view = pixel_view("Decoded tokens")
                edited_view = pixel_view("Decoded after edits")
                change_view = pixel_view(f"Change (0–{views.CHANGE_VMAX:.0f})")
            with gr.Row():
                with gr.Column():
                    token_files = gr.File(label="Token ids (.npy, .json)", file_count="multiple", interactive=False,
                                          height=130)
                    token_upload = gr.File(label="Decode a token file (.npy or .json)", file_types=[".npy", ".json"],
                                           height=130)
                with gr.Column():
                    with gr.Row():
                        base_vocab = gr.Number(50257, label="Base vocabulary size", precision=0, minimum=0)
                        lm_button = gr.Button("Build LM sequence")
                    lm_ids = gr.Textbox(label="LM sequence ids", lines=6, max_lines=6, buttons=["copy"])
                    lm_download = gr.DownloadButton("Download the LM sequence (.json)", interactive=False)

        with gr.Tab("Dataset", id="dataset") as dataset_tab:
            gr.Markdown(f"Images from `{SETTINGS.data}`, split `{SETTINGS.data_split}` (set `QKVAE_DATA` and "
                        "`QKVAE_DATA_SPLIT` for another Hub dataset, an image folder, an STL-10 `.bin` or Parquet "
                        "files). The grid shows its first 16 images. The first time this tab opens, the data is "
                        "fetched and every image is measured in the background, once; the figures below cover "
                        "them all.")
            order = gr.Radio(list(dataset.ORDERS), value="worst first", label="Order")
            dataset_shown = gr.State("")
            dataset_poll = gr.Timer(2.0, active=False)
            sample_grid = output_image("16 images: originals above, reconstructions below, PSNR under each",
                                       elem_classes="framed")
            dataset_summary = gr.HTML()
            dataset_codebook = gr.Plot(label="Codebook usage over the dataset", show_label=False)
            dataset_levels = gr.Plot(label="FSQ levels over the dataset", show_label=False)

        with gr.Tab("Explore", id="explore"):
            gr.Markdown("Upload many images, or `.zip` archives of them, to find where the tokenizer fails: "
                        "each is fit to 96×96, reconstructed and scored. Sort the table by "
                        "any column; click a row or an image to open it in the Reconstruct tab with all its maps. "
                        + explore.LIMITS + f" Each uploaded file (a zip too) may be at most {MAX_UPLOAD}.")
            with gr.Row():
                explore_upload = gr.File(label="Images or .zip archives", file_count="multiple",
                                         file_types=["image", ".zip"], height=160)
                with gr.Column():
                    explore_button = gr.Button("Reconstruct and score them", variant="primary")
                    explore_mode = gr.Radio(MODE_CHOICES, value="resize", label="Fit to 96×96")
                    worst_by = gr.Radio(list(explore.WORST_BY), value="PSNR", label="Worst images by")
                    with gr.Row():
                        explore_csv = gr.DownloadButton("Download the table (.csv)", interactive=False)
                        explore_json = gr.DownloadButton("Download the results (.json)", interactive=False)
            explored = gr.State()
            explore_summary = gr.HTML()
            explore_gallery_view = gr.Gallery(label="Worst images: original left, reconstruction right (click to open)",
                                              columns=4, height="auto", object_fit="contain", allow_preview=False,
                                              elem_classes="qk-gallery")
            explore_table = gr.Dataframe(headers=list(explore.TABLE_COLUMNS.values()), interactive=False,
                                         label="Every image (click a header to sort)", show_search="search",
                                         elem_id="explore-table")

    # ------------------------------------------------------------ events
    TOKEN_OUTPUTS = [edited, grid_view, decoded_view, edited_view, change_view, token_info, token_files]
    RECONSTRUCT_OUTPUTS = reconstruct_view.outputs({
        "model_input": model_input, "reconstruction": reconstruction, "jpeg": jpeg, "psnr": psnr, "ssim": ssim,
        "token_map": token_map, "error_map": error_map, "ood_map": ood_map, "ood_panel": ood_panel,
        "rate_panel": rate_panel, "codebook_chart": codebook_chart, "level_charts": level_charts, "tokens": tokens})
    gr.on([image.change, mode.change], reconstruct, [image, mode], RECONSTRUCT_OUTPUTS,
          api_name="reconstruct", preprocess=False
          ).success(open_tokens, [tokens, row, col], TOKEN_OUTPUTS, api_name="open_tokens")
    token_upload.change(decode_token_file, token_upload, tokens, api_name="decode_tokens"
                        ).success(open_tokens, [tokens, row, col], TOKEN_OUTPUTS, api_visibility="undocumented")
    reset.click(open_tokens, [tokens, row, col], TOKEN_OUTPUTS, api_visibility="undocumented")
    grid_view.select(select_token, None, [row, col], api_visibility="undocumented")
    gr.on([token_map.select, error_map.select, ood_map.select], inspect_token, None, [row, col, tabs],
          api_visibility="undocumented")
    # One at a time: a click sets both row and col, and the answer for the first must not arrive last.
    gr.on([row.change, col.change], show_token, [tokens, edited, row, col], [grid_view, token_info],
          api_name="show_token", concurrency_limit=1)
    nudge_outputs = [edited, edited_view, change_view, grid_view, token_info]
    down.click(level_down, [tokens, edited, row, col, dim], nudge_outputs, api_name="level_down")
    up.click(level_up, [tokens, edited, row, col, dim], nudge_outputs, api_name="level_up")
    lm_button.click(lm_sequence, [tokens, base_vocab], [lm_ids, lm_download], api_name="lm_sequence")
    dataset_outputs = [sample_grid, dataset_summary, dataset_codebook, dataset_levels, dataset_shown, dataset_poll]
    dataset_tab.select(evaluate_dataset, [order, dataset_shown], dataset_outputs, api_name="evaluate_dataset")
    dataset_poll.tick(evaluate_dataset, [order, dataset_shown], dataset_outputs, api_visibility="undocumented",
                      show_progress="hidden")
    order.change(dataset_grid, order, sample_grid, api_name="dataset_grid")
    # Its own queue, one run at a time: a batch never holds up other users' reconstructions.
    explore_button.click(explore_uploads, [explore_upload, explore_mode, worst_by],
                         [explored, explore_summary, explore_table, explore_gallery_view, explore_csv, explore_json],
                         api_name="explore", concurrency_id="explore", concurrency_limit=1)
    worst_by.change(explore_gallery, [explored, worst_by], explore_gallery_view, api_visibility="undocumented")
    explore_gallery_view.select(open_gallery_image, [explored, worst_by], [image, tabs], api_visibility="undocumented")
    explore_table.select(open_table_row, explored, [image, tabs], api_visibility="undocumented")

demo.queue(default_concurrency_limit=2, max_size=64)

if __name__ == "__main__":
    files.start_pruning()
    demo.launch(**LAUNCH_OPTIONS)
