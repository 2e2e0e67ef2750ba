"""Server-side latency of one upload in the app: median of warm runs, per stage and in total.

    python -m bench.app_latency [--weights W] [--image assets/examples/photo-cat.png] [--runs 20]

Each stage is timed on its own, then the whole upload as Gradio serves it: the ``/reconstruct``
event and the Tokens-tab refresh chained after it, with Gradio's pre- and postprocessing (PNG
encoding of every image, chart tables), through ``Blocks.process_api`` without the HTTP round
trip. The matplotlib line shows what drawing the two per-upload charts as figures would cost
(the app draws them in the browser with gr.BarPlot instead). Target: <= 250 ms median on 2 CPU cores.
"""

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
from pathlib import Path

import torch

WARMUP = 3


def timed(fn, runs: int) -> list[float]:
    """Milliseconds per call of ``fn()`` over ``runs`` calls, after ``WARMUP`` untimed ones."""
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return times


def stages(app, image: str, runs: int) -> dict[str, list[float]]:
    """``app`` is a built ``qkvae_app.demo.Demo``."""
    from gradio.state_holder import SessionState

    from analysis import plots
    from analysis.report import analyze_image
    from qkvae import load_image, reconstruct
    from qkvae_app import panels, views

    model, reference, blocks = app.studio.model, app.studio.reference, app.blocks
    x = load_image(image, model.config.image_size, "resize")
    r = analyze_image(model, x, reference, stability=False)
    tokens = app.reconstruct.reconstruct(image, "resize").tokens
    fns = {fn.api_name: index for index, fn in blocks.fns.items()}
    state = SessionState(blocks)
    payload = {"path": image, "meta": {"_type": "gradio.FileData"}}

    def served():
        asyncio.run(blocks.process_api(fns["reconstruct"], [payload, "resize"], state, explicit_call=True))
        asyncio.run(blocks.process_api(fns["open_tokens"], [None, 24, 24], state, explicit_call=True))

    def matplotlib_charts():
        for fig in (plots.codebook_histogram(r.codebook.counts),
                    plots.level_histograms_figure(r.codebook.level_histograms, model.config.levels)):
            fig.savefig(io.BytesIO(), format="png")

    return {
        "read + fit image": timed(lambda: load_image(image, model.config.image_size, "resize"), runs),
        "encode + decode": timed(lambda: reconstruct(model, x), runs),
        "analyze_image (model, metrics, JPEG, codebook, OOD score and map)": timed(
            lambda: analyze_image(model, x, reference, stability=False), runs),
        "maps (token, error, OOD)": timed(lambda: (
            plots.token_heatmap(r.indices, model.config.codebook_size), plots.error_heatmap(r.token_error),
            plots.ood_map_heatmap(r.ood_map) if r.ood_map is not None else None), runs),
        "panels + chart tables": timed(lambda: (
            panels.ood_html(r.summary.ood_score, app.studio.thresholds), panels.rate_html(r),
            views.codebook_frame(r.codebook.counts),
            views.level_frames(r.codebook.level_histograms)), runs),
        "reconstruct handler": timed(lambda: app.reconstruct.reconstruct(image, "resize"), runs),
        "tokens tab (grid view, files)": timed(lambda: app.tokens.open_tokens(tokens, 24, 24), runs),
        "one upload as served (both events)": timed(served, runs),
        "(not used) the two charts in matplotlib": timed(matplotlib_charts, runs),
    }


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.app_latency", description=__doc__.split("\n")[0])
    p.add_argument("--weights", help="weights file or folder (default: the app's, i.e. QKVAE_WEIGHTS or assets/)")
    p.add_argument("--image", default=str(Path(__file__).resolve().parent.parent / "assets/examples/photo-cat.png"))
    p.add_argument("--runs", type=int, default=20)
    return p.parse_args(argv)


def load_app(weights: str | None):
    """The app's built ``Demo``, serving ``weights`` if given (else as the environment says); None
    (said on stderr) when it has no model."""
    from qkvae_app.demo import build_demo
    from qkvae_app.settings import Settings

    app = build_demo(Settings.from_env({**os.environ, "QKVAE_WEIGHTS": weights} if weights else os.environ))
    if app.studio.model is None:
        print(f"error: {app.studio.model_error}", file=sys.stderr)
        return None
    return app


def main(argv=None) -> int:
    args = setup_args(argv)
    app = load_app(args.weights)
    if app is None:
        return 2
    results = stages(app, args.image, args.runs)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"device {app.studio.model.device}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average {load}; {args.runs} warm runs of {Path(args.image).name}")
    print(f"{'stage':<48} {'median ms':>10} {'p90 ms':>8}")
    for name, times in results.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:<48} {statistics.median(times):>10.1f} {p90:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
