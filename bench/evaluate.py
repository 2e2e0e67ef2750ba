"""The one pass's overhead: evaluate, Explore and the Dataset tab against the model alone, side by side.

    python -m bench.evaluate [--data ../shared/data/val] [--images 128] [--batch-size 32] [--repeats 3]

Four cases on the same first ``--images`` images, timed in turn in every round (so that a busy
shared machine slows them alike), medians after a warm-up round, wall and CPU seconds (this
process, all threads):
- ``model``: encode + decode of the images, already decoded and fit, in batches (fp32): the
  model's own rate, the 100 % mark;
- ``evaluate``: ``python -m analysis.evaluate`` in this process (loading the weights and the OOD
  reference, the pass, every image's summary with its OOD score and map, the plots, the files),
  with the stability and bf16 checks off (``--no-stability --precision-images 0``) and no OOD
  set (``--ood none``);
- ``explore``: ``qkvae_app.explore.explore`` on the images as uploaded files, with
  ``reconstruct_set`` and ``image_summary`` with the shipped OOD reference, as the app runs it;
- ``dataset``: the Dataset tab's whole-split pass (``qkvae_app.dataset.DatasetPass``) over the
  folder of those images, without its cache.
"""

import argparse
import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from analysis import evaluate
from analysis.reference import load_reference
from analysis.report import image_summary
from bench import cli
from qkvae.image import to_tensor
from qkvae.pipeline import load_fitted, reconstruct_set
from qkvae.sources import open_source
from qkvae.weights import load_qkvae, weights_fingerprint

CASES = ("model", "evaluate", "explore", "dataset")


def image_folder(data: str, count: int, out: Path) -> tuple[Path, list[str]]:
    """The first ``count`` entries of ``data`` copied into ``out`` (files), and their paths."""
    source = open_source(data)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, path in zip(source.names[:count], source.paths[:count], strict=True):
        target = out / name.replace("/", "__")
        shutil.copyfile(path, target)
        paths.append(str(target))
    return out, paths


def cases(args, folder: Path, paths: list[str], work: Path) -> dict:
    from qkvae_app import dataset, explore

    model = load_qkvae(args.weights, device="cpu")
    reference = load_reference(None, weights_fingerprint(model)[1])
    rgb = load_fitted(folder, model.config.image_size).images

    def model_only():
        for start in range(0, len(rgb), args.batch_size):
            model.decode(model.encode(to_tensor(rgb[start:start + args.batch_size])))

    def evaluated():
        assert evaluate.main(["--data", str(folder), "--out", str(work / "evaluate"), "--batch-size",
                              str(args.batch_size), "--no-stability", "--precision-images", "0", "--ood", "none",
                              "--device", "cpu"] + (["--weights", args.weights] if args.weights else [])) == 0

    def explored():
        explore.explore(paths, partial(reconstruct_set, model, batch_size=args.batch_size),
                        lambda row: image_summary(row, reference, model.config))

    def dataset_pass():
        job = dataset.DatasetPass(str(folder), None, "bench", partial(reconstruct_set, model,
                                                                        batch_size=args.batch_size))
        job.cache_path = Path(tempfile.mktemp(dir=work, suffix=".npz"))
        job.start()
        assert job.wait().stage == "done"

    return {"model": model_only, "evaluate": evaluated, "explore": explored, "dataset": dataset_pass}


def run(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder, paths = image_folder(args.data, args.images, Path(tmp) / "images")
        fns = cases(args, folder, paths, Path(tmp))
        wall, cpu = {k: [] for k in fns}, {k: [] for k in fns}
        for round_ in range(args.repeats + 1):  # round 0 warms up
            for key, fn in fns.items():
                w, c = time.perf_counter(), time.process_time()
                fn()
                if round_:
                    wall[key].append(time.perf_counter() - w)
                    cpu[key].append(time.process_time() - c)
            print(f"round {round_} of {args.repeats} done", flush=True)
    return {"images": len(paths), "batch_size": args.batch_size, "threads": torch.get_num_threads(),
            "wall": wall, "cpu": cpu}


def markdown(r: dict) -> str:
    n = r["images"]
    med = {clock: {k: statistics.median(v) for k, v in r[clock].items()} for clock in ("wall", "cpu")}
    lines = [f"{n} images, batch {r['batch_size']}, fp32, {r['threads']} threads; medians of {len(r['wall']['model'])}",
             "", "| case | wall s | images/s | of the model's rate | CPU s | of the model's CPU rate | wall runs |",
             "|---|---|---|---|---|---|---|"]
    for k in CASES:
        w, c = med["wall"][k], med["cpu"][k]
        lines.append(f"| {k} | {w:.2f} | {n / w:.1f} | {100 * med['wall']['model'] / w:.0f} % | {c:.2f} | "
                     f"{100 * med['cpu']['model'] / c:.0f} % | {', '.join(f'{t:.1f}' for t in r['wall'][k])} |")
    per_image = med["wall"]["dataset"] / n
    lines.append(f"\nDataset tab, 8,000 images at this rate: {8000 * per_image / 60:.1f} min wall "
                 f"({8000 * med['cpu']['dataset'] / n / 60:.1f} CPU-min)")
    return "\n".join(lines)


def setup_args(argv=None) -> argparse.Namespace:
    p = cli.parser("bench.evaluate", __doc__)
    p.add_argument("--data", default="../shared/data/val", help="an image folder (its first --images files)")
    p.add_argument("--images", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", default=None)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds, after one warm-up round")
    return p.parse_args(argv)


def main(argv=None) -> None:
    cli.main(setup_args, run, markdown, argv)


if __name__ == "__main__":
    main()
