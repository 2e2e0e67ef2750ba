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
  token error, per image, for the data and the OOD set);
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
from pathlib import Path

import numpy as np
from PIL import Image

from analysis import plots
from analysis.codebook import CodebookStats, CodebookSummary
from analysis.complexity import expectation_fields
from analysis.metrics import token_error
from analysis.ood import OODReference, OODScore, auroc, fpr_at_tpr, map_error_correlation
from analysis.ood_images import OODSet, ood_images
from analysis.rate import JPEG_QUALITIES, jpeg_curve
from analysis.reference import REFERENCE_PATH, ReferenceFileError, load_reference
from analysis.report import image_summary
from analysis.stability import precision_agreement, token_agreement
from qkvae import INPUT_ERRORS
from qkvae.hub import is_hub_ref
from qkvae.image import to_tensor
from qkvae.pipeline import BATCH_SIZE, FittedImages, SetReconstruction, encode_images, load_fitted, reconstruct_set
from qkvae.sources import open_source
from qkvae.weights import load_qkvae, weights_fingerprint

GRID_IMAGES = 16
RD_IMAGES = 100  # the JPEG curve is averaged over at most this many images
CURVE_POINTS = 100  # the usage curve in results.json is thinned to about this many points
PRECISION_IMAGES = 4


def describe(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": v.mean(), "std": v.std(), "min": v.min(), "median": np.median(v), "max": v.max()}


def jsonable(obj):
    """Nested dicts, lists, tuples and numpy values -> plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    return obj.item() if isinstance(obj, np.generic) else obj


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


def map_correlations(reference: OODReference, originals, indices, recons) -> np.ndarray:
    """Per image: Spearman correlation across tokens between the OOD map and the token error."""
    return np.array([map_error_correlation(reference.token_map(a, ids), token_error(a, b))
                     for a, ids, b in zip(originals, indices, recons, strict=True)])


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


def model_pass(model, reconstructed: SetReconstruction, ood: OODSet | None, batch_size=BATCH_SIZE,
               precision_images=PRECISION_IMAGES) -> dict:
    """The model calls after the reconstruction, batched: re-encode agreement, bf16 check, and the
    OOD set's reconstruction (None without one)."""
    start = time.perf_counter()
    rgb, indices, recons = reconstructed.originals, reconstructed.indices, reconstructed.reconstructions
    out = {
        "indices": indices,
        "recons": recons,
        "reencode": token_agreement(indices, encode_images(model, recons, batch_size, desc="re-encoding")),
        "ood": None if ood is None else reconstruct_set(model, FittedImages(ood.names, ood.images, None, []), batch_size),
        "bf16": None,
    }
    n = min(precision_images, len(rgb))
    if n:
        out["bf16"] = precision_agreement(model, to_tensor(rgb[:n]), indices[:n], to_tensor(recons[:n]))
    out["seconds"] = time.perf_counter() - start
    return out


def image_entries(names, rgb, passed: dict, reference: OODReference | None, config) -> tuple[list[dict], list]:
    """Per image: name, ``image_summary`` figures and stability (bf16 for the first few); and
    the images' ``OODScore``s (empty without a reference)."""
    bf16 = passed["bf16"] or {}
    images, scores = [], []
    for i, name in enumerate(names):
        summary = image_summary(rgb[i], passed["recons"][i], passed["indices"][i], reference, config)
        entry = {**summary.to_json(), **expectation_fields(rgb[i], summary.psnr)}
        entry["stability"] = {"reencode": passed["reencode"][i]}
        if bf16 and i < len(bf16["agreement"]):
            entry["stability"]["bf16"] = {k: v[i] for k, v in bf16.items()}
        images.append({"name": name, **entry})
        if summary.ood_score is not None:
            scores.append(summary.ood_score)
    return images, scores


def aggregate(images: list[dict], passed: dict, codebook: CodebookSummary, jpeg_points) -> dict:
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
        "stability": {"reencode": describe(passed["reencode"])},
    }
    if passed["bf16"] is not None:
        bf16 = passed["bf16"]
        summary["stability"]["bf16"] = {"images": len(bf16["agreement"]), **{k: np.mean(v) for k, v in bf16.items()}}
    if "reference_bits" in rate:
        summary["rate"]["reference_bits"] = mean_of(images, "rate", "reference_bits")
        bits = mean_of(rd_images, "rate", "reference_bits")
        summary["rate"]["jpeg_curve"]["qkvae_entropy_bpp"] = bits * rate["bits_per_pixel"] / rate["nominal_bits"]
    return summary


def evaluate(model, reconstructed: SetReconstruction, reference: OODReference | None = None, ood: OODSet | None = None,
             batch_size=BATCH_SIZE, precision_images=PRECISION_IMAGES) -> tuple[dict, dict]:
    """Evaluate a reconstructed set (``qkvae.pipeline.reconstruct_set``); returns (results,
    pictures: name -> Figure or uint8 array).

    ``reference`` is the OOD reference for the model's weights (None: no OOD figures); ``ood`` the
    out-of-distribution images the data is told apart from (needs a reference).
    """
    start = time.perf_counter()
    config = model.config
    names, rgb = reconstructed.names, reconstructed.originals
    passed = model_pass(model, reconstructed, ood if reference is not None else None, batch_size, precision_images)
    images, data_scores = image_entries(names, rgb, passed, reference, config)
    stats = CodebookStats(config.levels, config.num_tokens)
    stats.update(passed["indices"])
    codebook = stats.result()
    jpeg_points = np.mean([jpeg_curve(a, JPEG_QUALITIES) for a in rgb[:RD_IMAGES]], axis=0)
    summary = aggregate(images, passed, codebook, jpeg_points)
    if reference is not None:
        out = passed["ood"]
        out_scores = [] if out is None else [reference.score(a, ids) for a, ids in zip(out.originals, out.indices)]
        out_maps = np.zeros(0) if out is None else map_correlations(reference, out.originals, out.indices,
                                                                      out.reconstructions)
        data_maps = map_correlations(reference, rgb, passed["indices"], passed["recons"])
        summary["ood"] = ood_summary(reference, data_scores, data_maps, ood, out_scores, out_maps)
    total = time.perf_counter() - start
    summary["timing"] = {"total_s": total, "model_s": passed["seconds"], "per_image_ms": 1000 * total / len(images)}
    results = {"images": images, "aggregate": summary}
    return results, pictures(results, rgb, passed["recons"], codebook, jpeg_points, config)


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
    (out / "results.json").write_text(json.dumps(jsonable(results), indent=1) + "\n")
    for name, picture in pictures.items():
        if isinstance(picture, np.ndarray):
            Image.fromarray(picture).save(out / f"{name}.png")
        else:
            picture.savefig(out / f"{name}.png", dpi=100)
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
    p = argparse.ArgumentParser(prog="python -m analysis.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="image source: folder, .txt list, STL-10 *_X.bin or stl10_binary/, "
                                                 "Parquet, or a Hub dataset hf://datasets/OWNER/NAME[@revision]")
    p.add_argument("--split", default=None, help="the split of a Parquet or Hub dataset (e.g. test)")
    p.add_argument("--weights", default=None,
                   help="weights file or folder, or hf://OWNER/NAME[@revision] (default: the shipped weights)")
    p.add_argument("--out", default="runs/evaluate", help="output folder")
    p.add_argument("--reference", default=None,
                   help=f"OOD reference made with the weights (default: {REFERENCE_PATH.name} in assets/, if it matches)")
    p.add_argument("--ood", default="builtin", help='OOD images for the AUROC: "builtin", "none" or a folder')
    p.add_argument("--precision-images", type=int, default=PRECISION_IMAGES,
                   help="images checked under bf16 autocast (0: none)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    return p.parse_args(argv)


def _reference_for(path, weights_sha256: str) -> tuple[OODReference | None, dict]:
    """The OOD reference to score with, and what results.json says about it. A reference named
    with ``--reference`` must load; the shipped one is left out, with a warning, when it is
    missing or belongs to other weights."""
    if path is not None:
        return load_reference(path, weights_sha256), {"reference": Path(path).name}
    try:
        return load_reference(None, weights_sha256), {"reference": REFERENCE_PATH.name}
    except ReferenceFileError as e:
        print(f"warning: OOD scores are left out: {e}", file=sys.stderr)
        return None, {"reference": None}


def run(args) -> tuple[dict, Path]:
    model = load_qkvae(args.weights, device=args.device)
    images = reconstruct_set(model, open_source(args.data, args.split), args.batch_size)
    weights_name, weights_sha256 = weights_fingerprint(model)
    reference, provenance = _reference_for(args.reference, weights_sha256)
    ood = load_ood(args.ood, model.config.image_size)
    results, pictures = evaluate(model, images, reference, ood, args.batch_size, args.precision_images)
    data = args.data if is_hub_ref(args.data) else Path(args.data).name
    results["setup"] = {"data": data, "split": args.split, "weights": weights_name, "weights_sha256": weights_sha256,
                        "device": str(model.device), "ood": args.ood, **provenance,
                        "skipped": [{"name": s.name, "reason": s.reason} for s in images.skipped]}
    for s in images.skipped:
        print(f"warning: skipped {s.name}: {s.reason}", file=sys.stderr)
    return results, write_outputs(results, pictures, args.out)


def main(argv=None) -> int:
    args = setup_args(argv)
    start = time.perf_counter()
    try:
        results, out = run(args)
    except (*INPUT_ERRORS, ReferenceFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    agg = results["aggregate"]
    line = f"{agg['num_images']} images: PSNR {agg['psnr']['mean']:.2f} dB, SSIM {agg['ssim']['mean']:.4f}"
    if "detection" in agg.get("ood", {}):
        auroc_all = agg["ood"]["detection"]["all"]["auroc"]
        line += f", OOD AUROC {auroc_all['score']:.3f} (KL alone {auroc_all['kl']:.3f})"
    print(f"{line}, {time.perf_counter() - start:.1f} s -> {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
