"""Evaluate QKVAE on a set of images and write what the analysis finds.

    python -m analysis.evaluate --data PATH [--split S] [--weights W] [--out DIR] [--reference FILE]
    python -m analysis.evaluate --data hf://datasets/tanganke/stl10 --split test   # from the Hub
        [--ood builtin|none|FOLDER] [--precision-images N]

PATH is an image folder or an STL-10 ``.bin`` file; images are fit to 96x96 with mode
"resize", as at inference. Writes to DIR (default ``runs/evaluate``):
- ``results.json``: ``"images"`` (per image: name, psnr, ssim, expected_psnr and psnr_residual
  (``analysis.complexity``: the PSNR a photo this detailed gets, and actual minus it),
  ood_score (``OODScore.to_json``: ``score``, features, percentiles, verdict), rate, stability) and ``"aggregate"`` (means,
  codebook statistics, the JPEG comparison, timing, and ``ood``: the OOD score and verdicts of
  the data and of the OOD set; ``detection``, overall and per OOD category, the AUROC and the
  FPR at 95% TPR of the combined score and of the histogram KL alone, the data being the
  in-distribution side; and the Spearman correlation across tokens between the OOD map and the
  token error, per image, for the data and the OOD set); and when the data folder has subfolders,
  ``"groups"`` (``analysis.groups``: per folder the count, mean PSNR, SSIM and residual, median
  OOD score, share flagged, and the OOD score's AUROC against ``--reference-group``);
- ``sample_grid.png`` (the first 16 images over their reconstructions, with PSNR) and the
  plots: codebook_histogram, level_histograms, usage_curve, rd_plot, ood_histogram.
The OOD figures need an OOD reference made with the same weights (``analysis.reference``);
without one, they are left out. bf16 agreement runs on the first N images only: on a CPU
without bf16 units each image takes seconds.
"""

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from analysis import plots
from analysis.codebook import CodebookStats, CodebookSummary
from analysis.complexity import expectation_fields
from analysis.figures import describe, jsonable
from analysis.groups import GroupError, check_reference_group, folder_groups
from analysis.metrics import token_error
from analysis.ood import OODReference, OODScore, auroc, fpr_at_tpr, map_error_correlation
from analysis.ood_images import OODSet, ood_images
from analysis.rate import JPEG_QUALITIES, jpeg_curve
from analysis.reference import REFERENCE_PATH, ReferenceFileError, load_reference
from analysis.report import image_summary
from analysis.stability import PrecisionAgreement, precision_agreement, token_agreement
from qkvae.atomic import atomic_path, atomic_write
from qkvae.cli import common_options, positive, run_cli
from qkvae.hub import is_hub_ref
from qkvae.image import to_tensor
from qkvae.pipeline import BATCH_SIZE, load_fitted, reconstruct_set
from qkvae.sources import SourceError, open_source
from qkvae.tokenize_engine import EngineError
from qkvae.stream import (ChunkRunner, FittedImages, SetReconstruction, ahead, read_chunks, split, stream,
                          with_progress)
from qkvae.weights import load_qkvae, weights_fingerprint

GRID_IMAGES = 16
RD_IMAGES = 100  # the JPEG curve is averaged over at most this many images
CURVE_POINTS = 100  # the usage curve in results.json is thinned to about this many points
PRECISION_IMAGES = 4


def thin(curve: list, points: int = CURVE_POINTS) -> list:
    """About ``points`` entries of a curve, log-spaced, always keeping the first and the last."""
    keep = np.unique(np.geomspace(1, len(curve), num=min(points, len(curve))).astype(int) - 1)
    return [curve[i] for i in keep]


def codebook_summary(r: CodebookSummary) -> dict:
    """The JSON part of ``CodebookStats.result()``: no per-code arrays, a thinned usage curve."""
    return {
        **{k: getattr(r, k) for k in ("num_images", "num_tokens", "codes_seen", "usage", "entropy_bits",
                                      "max_entropy_bits", "perplexity", "level_histograms", "extreme_share",
                                      "top_codes", "dead_codes")},
        "usage_curve": thin(r.usage_curve),
    }


def mean_of(images: list[dict], *path) -> float:
    """The mean over images of the value at ``path`` in each image's entry."""
    values = []
    for entry in images:
        for key in path:
            entry = entry[key]
        values.append(entry)
    return float(np.mean(values))


def verdict_counts(scores: list[OODScore]) -> dict:
    """How many images get each verdict label."""
    labels = [s.verdict.label for s in scores]
    return {label: labels.count(label) for label in sorted(set(labels))}


def detection(scores_in: list[OODScore], scores_out: list[OODScore]) -> dict:
    """AUROC and FPR at 95% TPR of the combined score, next to the histogram KL alone (the old score)."""
    pairs = {"score": lambda s: s.score, "kl": lambda s: s.features.kl}
    values = {k: ([f(s) for s in scores_in], [f(s) for s in scores_out]) for k, f in pairs.items()}
    return {
        "num_images": len(scores_out),
        "auroc": {k: auroc(*v) for k, v in values.items()},
        "fpr_at_95_tpr": {k: fpr_at_tpr(*v) for k, v in values.items()},
    }


def ood_summary(reference: OODReference, data_scores: list[OODScore], data_maps: np.ndarray, ood: OODSet,
                out_scores: list[OODScore], out_maps: np.ndarray) -> dict:
    """The OOD score and verdicts on the data and on the OOD set; per OOD category and overall,
    how well the score (and the KL alone) tells them apart; how well the map follows the error."""
    summary = {
        "thresholds": reference.calibration.thresholds,
        "data": {"score": describe([s.score for s in data_scores]), "kl": describe([s.features.kl for s in data_scores]),
                 "verdicts": verdict_counts(data_scores), "map_error_spearman": describe(data_maps)},
    }
    if out_scores:
        categories = dict.fromkeys(ood.categories)
        by_category = {c: [i for i, k in enumerate(ood.categories) if k == c] for c in categories}
        summary["ood_set"] = {
            "num_images": len(out_scores),
            "scores": {name: s.to_json() for name, s in zip(ood.names, out_scores, strict=True)},
            "score": describe([s.score for s in out_scores]),
            "verdicts": verdict_counts(out_scores),
            "map_error_spearman": describe(out_maps),
        }
        summary["detection"] = {"all": detection(data_scores, out_scores), **{
            c: {**detection(data_scores, [out_scores[i] for i in keep]),
                "map_error_spearman": float(np.mean(out_maps[keep]))}
            for c, keep in by_category.items()}}
    return summary


@dataclass
class Gathered:
    """What ``evaluate`` keeps of the pass, chunk by chunk: every image's entry and scores, the
    codebook counts, and the first images' pixels (grid, JPEG curve, bf16 check)."""

    entries: list[dict] = field(default_factory=list)
    scores: list[OODScore] = field(default_factory=list)
    maps: list[float] = field(default_factory=list)  # per image, the OOD map's Spearman with the token error
    reencode: list[float] = field(default_factory=list)
    heads: list[SetReconstruction] = field(default_factory=list)  # chunks until HEAD_IMAGES images are kept
    skipped: list = field(default_factory=list)
    pass_seconds: float = 0.0  # time spent waiting for the pass (it runs a chunk ahead)

    def head(self) -> SetReconstruction:
        return SetReconstruction.concat(self.heads)


HEAD_IMAGES = max(GRID_IMAGES, RD_IMAGES)


def summarize_rows(rows: SetReconstruction, reference: OODReference | None, config) -> tuple[list, list, list]:
    """Per image of a chunk: its results.json entry (name and ``image_summary``), its OOD score
    and the OOD map's Spearman correlation with the token error (none without a reference)."""
    entries, scores, maps = [], [], []
    for row in rows.rows():
        summary = image_summary(row, reference, config)
        entries.append({"name": row.name, **summary.to_json(), **expectation_fields(row.original, summary.psnr)})
        if summary.ood_score is not None:
            scores.append(summary.ood_score)
            maps.append(map_error_correlation(summary.ood_map, token_error(row.original, row.reconstruction)))
    return entries, scores, maps


def ood_figures(rows: SetReconstruction, reference: OODReference) -> tuple[list[OODScore], list[float]]:
    """Per image: its OOD score and the OOD map's Spearman correlation with the token error."""
    scores, maps = [], []
    for row in rows.rows():
        score, token_map = reference.score_and_map(row.original, row.indices)
        scores.append(score)
        maps.append(map_error_correlation(token_map, token_error(row.original, row.reconstruction)))
    return scores, maps


def gather(model, chunks: Iterable[SetReconstruction], reference: OODReference | None, stats: CodebookStats,
           batch_size: int, stability: bool, head_images: int) -> Gathered:
    """Go through the pass a chunk at a time (see ``Gathered``), the pass a chunk ahead in the
    background (``qkvae.stream.ahead``); with ``stability``, re-encode each chunk's reconstructions."""
    g, kept = Gathered(), 0
    encoder = ChunkRunner(model, decode=False, metrics=False)
    with closing(ahead(chunks)) as pass_ahead:
        pulled = time.perf_counter()
        for rows in pass_ahead:
            g.pass_seconds += time.perf_counter() - pulled
            entries, scores, maps = summarize_rows(rows, reference, model.config)
            g.entries += entries
            g.scores += scores
            g.maps += maps
            if stability and len(rows):
                again = SetReconstruction.concat(list(stream(encoder, split(
                    FittedImages(rows.names, rows.reconstructions, rows.labels, []), batch_size))))
                g.reencode += token_agreement(rows.indices, again.indices).tolist()
            stats.update(rows.indices)
            g.skipped += rows.skipped
            if kept < head_images:
                g.heads.append(rows)
                kept += len(rows)
            pulled = time.perf_counter()
    return g


def with_stability(g: Gathered, bf16: PrecisionAgreement | None) -> None:
    """Each image's ``stability`` entry: re-encode agreement, and bf16 for the first few."""
    for i, entry in enumerate(g.entries):
        checks = {}
        if g.reencode:
            checks["reencode"] = g.reencode[i]
        if bf16 is not None and i < len(bf16.agreement):
            checks["bf16"] = bf16.image(i)
        if checks:
            entry["stability"] = checks


def aggregate(images: list[dict], reencode: list[float], bf16: PrecisionAgreement | None, codebook: CodebookSummary,
              jpeg_points) -> dict:
    """Means and distributions over the images, codebook statistics and the JPEG comparison.

    The JPEG curve is averaged over the first ``RD_IMAGES`` images, and so is the QKVAE point
    set against it.
    """
    rate = images[0]["rate"]
    rd_images = images[:RD_IMAGES]
    summary = {
        "num_images": len(images),
        "psnr": describe([im["psnr"] for im in images]),
        "ssim": describe([im["ssim"] for im in images]),
        "rate": {
            "nominal_bits": rate["nominal_bits"],
            "bits_per_pixel": rate["bits_per_pixel"],
            "own_entropy_bits": mean_of(images, "rate", "own_entropy_bits"),
            "jpeg_equal_bytes": {k: mean_of(images, "rate", "jpeg_equal_bytes", k)
                                 for k in ("quality", "bytes", "psnr", "ssim")},
            "jpeg_curve": {
                "qualities": JPEG_QUALITIES,
                "images": len(rd_images),
                "points": jpeg_points,
                "qkvae_point": (rate["bits_per_pixel"], mean_of(rd_images, "psnr"), mean_of(rd_images, "ssim")),
            },
        },
        "codebook": codebook_summary(codebook),
    }
    stability = {}
    if reencode:
        stability["reencode"] = describe(reencode)
    if bf16 is not None:
        stability["bf16"] = {"images": len(bf16.agreement), **bf16.means()}
    if stability:
        summary["stability"] = stability
    if "reference_bits" in rate:
        summary["rate"]["reference_bits"] = mean_of(images, "rate", "reference_bits")
        bits = mean_of(rd_images, "rate", "reference_bits")
        summary["rate"]["jpeg_curve"]["qkvae_entropy_bpp"] = bits * rate["bits_per_pixel"] / rate["nominal_bits"]
    return summary


def evaluate(model, chunks: Iterable[SetReconstruction], reference: OODReference | None = None,
             ood: OODSet | None = None, batch_size=BATCH_SIZE, precision_images=PRECISION_IMAGES,
             stability: bool = True, reference_group: str | None = None) -> tuple[dict, dict]:
    """Evaluate the model's pass over a set (``SetReconstruction`` chunks of ``qkvae.stream``, in
    order; one whole ``reconstruct_set`` is a single chunk); returns (results, pictures: name ->
    Figure or uint8 array). ``results["skipped"]`` lists the entries the pass skipped.

    ``reference`` is the OOD reference for the model's weights (None: no OOD figures); ``ood`` the
    out-of-distribution images the data is told apart from (needs a reference). ``stability``
    re-encodes every reconstruction; ``precision_images`` images are checked under bf16. Images
    in two or more folders get ``results["groups"]``, the AUROCs against ``reference_group``
    (default: the largest). Raises ``SourceError`` when the pass has no image, ``GroupError`` for
    a reference group that is not one of the folders.
    """
    start = time.perf_counter()
    config = model.config
    stats = CodebookStats(config.levels, config.num_tokens)
    g = gather(model, chunks, reference, stats, batch_size, stability, max(HEAD_IMAGES, precision_images))
    if not g.entries:
        raise SourceError("none of the entries of the set could be decoded" + (f" (first: {g.skipped[0].reason})" if g.skipped else ""))
    head = g.head()
    n = min(precision_images, len(head))
    bf16 = precision_agreement(model, to_tensor(head.originals[:n]), head.indices[:n],
                               to_tensor(head.reconstructions[:n])) if n else None
    with_stability(g, bf16)
    codebook = stats.result()
    jpeg_points = np.mean([jpeg_curve(a, JPEG_QUALITIES) for a in head.originals[:RD_IMAGES]], axis=0)
    summary = aggregate(g.entries, g.reencode, bf16, codebook, jpeg_points)
    if reference is not None:
        out_scores, out_maps = [], []
        if ood is not None:
            out = reconstruct_set(model, FittedImages(ood.names, ood.images, [None] * len(ood.names), []), batch_size)
            out_scores, out_maps = ood_figures(out, reference)
        summary["ood"] = ood_summary(reference, g.scores, np.array(g.maps), ood, out_scores, np.array(out_maps))
    total = time.perf_counter() - start
    summary["timing"] = {"total_s": total, "pass_s": g.pass_seconds, "per_image_ms": 1000 * total / len(g.entries)}
    results = {"images": g.entries, "aggregate": summary, "skipped": [s.to_json() for s in g.skipped]}
    groups = folder_groups(g.entries, reference_group)
    if groups is not None:
        results["groups"] = groups.to_json()
    return results, pictures(results, head.originals, head.reconstructions, codebook, jpeg_points, config)


def pictures(results: dict, rgb, recons, codebook: CodebookSummary, jpeg_points, config) -> dict:
    """The sample grid and the plots, by file name."""
    images, summary = results["images"], results["aggregate"]
    rd = summary["rate"]["jpeg_curve"]
    out = {
        "sample_grid": plots.sample_grid(rgb[:GRID_IMAGES], recons[:GRID_IMAGES],
                                         [im["psnr"] for im in images[:GRID_IMAGES]]),
        "codebook_histogram": plots.codebook_histogram(codebook.counts),
        "level_histograms": plots.level_histograms_figure(codebook.level_histograms, config.levels),
        "usage_curve": plots.usage_curve_figure(codebook.usage_curve, config.codebook_size),
        "rd_plot": plots.rd_plot(rd["qkvae_point"], jpeg_points, rd.get("qkvae_entropy_bpp")),
    }
    ood = summary.get("ood", {})
    if "ood_set" in ood:
        out["ood_histogram"] = plots.ood_histogram(
            [im["ood_score"]["score"] for im in images], [s["score"] for s in ood["ood_set"]["scores"].values()],
            ood["thresholds"], labels=("data", "OOD set"))
    return out


def write_outputs(results: dict, pictures: dict, out) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", json.dumps(jsonable(results), indent=1) + "\n")
    for name, picture in pictures.items():
        with atomic_path(out / f"{name}.png") as staging:
            if isinstance(picture, np.ndarray):
                Image.fromarray(picture).save(staging, format="png")
            else:
                picture.savefig(staging, format="png", dpi=100)
    return out


def load_ood(choice: str, size: int) -> OODSet | None:
    """The OOD set for the AUROC: "builtin" (``analysis.ood_images``), "none", or any image source,
    whose names ``<category>__<name>`` give the categories ("ood" for names without one)."""
    if choice == "none":
        return None
    if choice == "builtin":
        return ood_images(size)
    fitted = load_fitted(choice, size)
    categories = [n.rsplit("/", 1)[-1].split("__", 1)[0] if "__" in n else "ood" for n in fitted.names]
    return OODSet(fitted.names, categories, fitted.images)


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.evaluate", description=__doc__.split("\n")[0],
                                parents=[common_options()])
    p.add_argument("--out", default="runs/evaluate", help="output folder")
    p.add_argument("--reference", default=None,
                   help=f"OOD reference made with the weights (default: {REFERENCE_PATH.name} in assets/, if it matches)")
    p.add_argument("--ood", default="none", help='OOD images for the AUROC: "builtin" (196 made by '
                                                 'analysis.ood_images), a folder, or "none" (the default)')
    p.add_argument("--reference-group", default=None,
                   help="with subfolders: the folder each folder's OOD AUROC is against (default: the largest)")
    p.add_argument("--precision-images", type=int, default=PRECISION_IMAGES,
                   help="images checked under bf16 autocast (0: none)")
    p.add_argument("--stability", action=argparse.BooleanOptionalAction, default=True,
                   help="re-encode every reconstruction to measure token stability (--no-stability: skip it)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="run the model here, or as Ray Data map_batches over chunks (see README)")
    p.add_argument("--workers", type=positive, default=1, help="Ray workers (--engine ray)")
    p.add_argument("--ray-address", default=None, help="a Ray cluster to join (--engine ray; default: a local Ray)")
    return p.parse_args(argv)


def _reference_for(path, weights_sha256: str) -> tuple[OODReference | None, dict, list[str]]:
    """The OOD reference to score with, what results.json says about it, and warnings. A
    reference named with ``--reference`` must load; the shipped one is left out, with a warning,
    when it is missing or belongs to other weights."""
    if path is not None:
        return load_reference(path, weights_sha256), {"reference": Path(path).name}, []
    try:
        return load_reference(None, weights_sha256), {"reference": REFERENCE_PATH.name}, []
    except ReferenceFileError as e:
        return None, {"reference": None}, [f"OOD scores are left out: {e}"]


def model_chunks(model, source, args) -> Iterator[SetReconstruction]:
    """The pass over ``source`` with ``args.engine``: here, or on Ray Data (``analysis.evaluate_ray``)."""
    if args.engine == "ray":
        from qkvae.stream_ray import ray_stream

        return ray_stream(source, args.data, args.split, args.weights, args.device, args.batch_size,
                          workers=args.workers, address=args.ray_address)
    return stream(ChunkRunner(model), read_chunks(source, args.batch_size, model.config.image_size))


def run(args) -> tuple[dict, Path]:
    model = load_qkvae(args.weights, device=args.device)
    source = open_source(args.data, args.split)
    check_reference_group(args.reference_group, source.names)
    weights_name, weights_sha256 = weights_fingerprint(model)
    reference, provenance, warnings = _reference_for(args.reference, weights_sha256)
    ood = load_ood(args.ood, model.config.image_size) if reference is not None else None
    chunks = with_progress(model_chunks(model, source, args), len(source), "evaluating")
    results, pictures = evaluate(model, chunks, reference, ood, args.batch_size, args.precision_images,
                                 args.stability, args.reference_group)
    skipped = results.pop("skipped")
    data = args.data if is_hub_ref(args.data) else Path(args.data).name
    results["setup"] = {"data": data, "split": args.split, "weights": weights_name, "weights_sha256": weights_sha256,
                        "device": str(model.device), "ood": args.ood, **provenance, "skipped": skipped}
    for line in warnings + [f"skipped {s['name']}: {s['reason']}" for s in skipped]:
        print(f"warning: {line}", file=sys.stderr)
    return results, write_outputs(results, pictures, args.out)


def main(argv=None) -> int:
    args = setup_args(argv)
    start = time.perf_counter()
    return run_cli(lambda: report(*run(args), time.perf_counter() - start), ReferenceFileError, EngineError,
                   GroupError)


def report(results: dict, out: Path, seconds: float) -> None:
    """The line the CLI prints at the end."""
    agg = results["aggregate"]
    line = f"{agg['num_images']} images: PSNR {agg['psnr']['mean']:.2f} dB, SSIM {agg['ssim']['mean']:.4f}"
    if "detection" in agg.get("ood", {}):
        auroc_all = agg["ood"]["detection"]["all"]["auroc"]
        line += f", OOD AUROC {auroc_all['score']:.3f} (KL alone {auroc_all['kl']:.3f})"
    print(f"{line}, {seconds:.1f} s -> {out / 'results.json'}")


if __name__ == "__main__":
    sys.exit(main())
