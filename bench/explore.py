"""End-to-end time of the Explore tab on N uploaded images (200 by default): medians of runs.

    python -m bench.explore [--weights W] [--source ../shared/data/val] [--images 200] [--runs 3] [--files]

The first N images of the folder ``--source`` (photos of mixed sizes, short side 128, by
default) are uploaded as one ``.zip`` (or, with ``--files``, as N loose files). Each run times,
interleaved: ``qkvae_app.explore.explore`` by stage (decode + fit, the reconstruct calls,
scoring with ``image_summary``), and the whole ``/explore`` event as Gradio serves it
(``Blocks.process_api``: the uploaded files in; the table, the gallery PNGs and the CSV/JSON
files out), without the HTTP round trip. Target: under 60 s on 2 CPU cores.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from bench.app_latency import load_app

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "val"


def upload(folder: Path, count: int, out: Path, as_files: bool) -> list[str]:
    """The first ``count`` images of the image ``folder``: as one zip written under ``out``, or the files."""
    from qkvae import open_source

    names = open_source(folder).names  # relative paths, sorted
    if len(names) < count:
        raise ValueError(f"{folder} has {len(names)} images, fewer than {count}")
    if as_files:
        return [str(folder / name) for name in names[:count]]
    archive = out / "upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in names[:count]:
            z.write(folder / name, name)
    return [str(archive)]


def staged(app, paths: list[str]) -> dict[str, float]:
    """Seconds per stage of one ``explore`` call: the reconstruct calls (the model, PSNR and SSIM)
    and the rest (decoding and fitting each chunk, ``image_summary``'s rate and OOD score)."""
    from qkvae.pipeline import reconstruct_set
    from qkvae_app import explore

    model_seconds = []

    def reconstruct(images):
        start = time.perf_counter()
        out = reconstruct_set(app.studio.model, images)
        model_seconds.append(time.perf_counter() - start)
        return out

    start = time.perf_counter()
    explore.explore(paths, reconstruct, app.explore.summarize, app.studio.config.image_size)
    total = time.perf_counter() - start
    return {
        f"reconstruct (reconstruct_set, {explore.CHUNK} images a call)": sum(model_seconds),
        "decode + fit, score (image_summary: rate, OOD)": total - sum(model_seconds),
        "explore() in total": total,
    }


def served(app, paths: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (of this process, all threads) of one ``/explore`` event through
    ``Blocks.process_api``. On a shared machine the CPU seconds are the steadier figure: on two
    idle cores the wall time cannot be below half of them."""
    from gradio.state_holder import SessionState

    fn = next(index for index, fn in app.blocks.fns.items() if fn.api_name == "explore")
    payload = [{"path": p, "orig_name": Path(p).name, "meta": {"_type": "gradio.FileData"}} for p in paths]
    start, cpu = time.perf_counter(), time.process_time()
    asyncio.run(app.blocks.process_api(fn, [payload, "resize", "PSNR"], SessionState(app.blocks), explicit_call=True))
    return time.perf_counter() - start, time.process_time() - cpu


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.explore", description=__doc__.split("\n")[0])
    p.add_argument("--weights", help="weights file or folder (default: the app's, i.e. QKVAE_WEIGHTS or assets/)")
    p.add_argument("--source", default=str(DEFAULT_SOURCE), help="an image folder to upload from")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--files", action="store_true", help="upload loose files instead of one .zip")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = setup_args(argv)
    app = load_app(args.weights)
    if app is None:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        try:
            paths = upload(Path(args.source), args.images, Path(tmp), args.files)
        except (ValueError, OSError) as e:  # SourceError is a ValueError
            print(f"error: {e}", file=sys.stderr)
            return 2
        stages, totals, cpus, loads = {}, [], [], []
        for _ in range(args.runs):  # interleaved, so that both see the same load
            for name, seconds in staged(app, paths).items():
                stages.setdefault(name, []).append(seconds)
            wall, cpu = served(app, paths)
            totals.append(wall)
            cpus.append(cpu)
            loads.append(os.getloadavg()[0])
    kind = f"{args.images} loose files" if args.files else f"one .zip of {args.images} images"
    print(f"device {app.studio.model.device}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average during the runs {min(loads):.1f}-{max(loads):.1f}; {args.runs} runs of {kind} "
          f"from {args.source}")
    print(f"{'stage':<64} {'median s':>9}  runs")
    for name, seconds in [*stages.items(), ("/explore as served (Gradio in and out)", totals),
                          ("  its CPU time, all threads (wall on 2 idle cores >= half)", cpus)]:
        print(f"{name:<64} {statistics.median(seconds):>9.1f}  {', '.join(f'{s:.1f}' for s in seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
