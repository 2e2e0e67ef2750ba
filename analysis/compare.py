"""Two checkpoints on the same images: per-image quality, token agreement and paired statistics.

    python -m analysis.compare --a A --b B --data SRC --out DIR [--split S] [--limit N] [--worst 8]

A and B are anything ``load_qkvae`` takes (a folder, a ``.safetensors`` file, ``hf://OWNER/NAME``);
SRC any image source. The images are decoded and fit once and both models run on the same
arrays. DIR receives:
- ``compare.json``: ``a`` and ``b`` (name, SHA-256, config, parameters, mean PSNR/SSIM/MS-SSIM,
  rates), ``images`` (per image: PSNR and SSIM under each, and when the two share levels and
  grid, ``token_agreement``, the share of ids that are equal, and ``digit_agreement``, the share
  per FSQ dimension), ``summary`` (mean dPSNR and dSSIM, B - A, with a bootstrap 95 % interval,
  the share of images where B is better, a Wilcoxon signed-rank test);
- ``compressai-a.json``, ``compressai-b.json``: CompressAI's results shape (``name``,
  ``description``, ``results`` with ``psnr-rgb``, ``ms-ssim-rgb``, ``bpp`` lists), which
  ``compressai.utils.plot`` and the ``bjontegaard`` package read. A tokenizer has one rate, so each
  file holds one point; BD-rate needs four or more per curve, i.e. a family of checkpoints;
- ``psnr_scatter.png`` and ``worst.png`` (the images B loses most on: original, A, B).

``compare_images`` (one image) and ``compare_sets`` (a set) are pure functions of arrays, for the
app; ``compare_checkpoints`` runs the models. Metrics follow ``qkvae.metrics``; MS-SSIM is
``analysis.metrics.ms_ssim``. Comparing a checkpoint with itself gives dPSNR 0 and agreement 1.
"""

import argparse
import json
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import stats

from analysis import plots
from analysis.metrics import ms_ssim, pixel_error
from analysis.rate import bits_per_pixel, empirical_entropy_bits, nominal_bits
from qkvae import fsq
from qkvae.atomic import atomic_path, atomic_write
from qkvae.cli import common_options, run_cli
from qkvae.hub import is_hub_ref
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAE, QKVAEConfig
from qkvae.pipeline import BATCH_SIZE, FittedImages, SetReconstruction, load_fitted, reconstruct_set
from qkvae.sources import open_source
from qkvae.weights import ASSETS, WEIGHTS_NAME, load_qkvae, weights_fingerprint

BOOTSTRAP_RESAMPLES = 9999
WORST = 8  # images in the worst-regressions grid
SHIPPED_NAME = "QKVAE-1m"  # the name of the weights in assets/
MS_SSIM_NOTE = ("pytorch_msssim's MS-SSIM on 8-bit images (data_range 255, 5 scales, Gaussian window of 5 "
                "px, sigma 1.5; the standard 11 px window needs sides over 160 px)")


class CompareError(ValueError):
    """Two checkpoints that cannot be run on the same inputs."""


@dataclass(frozen=True)
class Side:
    """One checkpoint and its reconstruction of the fitted images."""
    name: str
    sha256: str
    model: QKVAE
    reconstruction: SetReconstruction


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float  # bootstrap 95 % interval of the mean (BCa)
    high: float


@dataclass(frozen=True)
class Checkpoint:
    """One side of a comparison: which weights, and how they do on the set."""
    name: str
    sha256: str
    config: dict
    parameters: int
    psnr: float  # mean over the images, dB
    ssim: float
    ms_ssim: float
    bpp: float  # nominal: num_tokens * log2(codebook_size) / pixels
    bpp_entropy: float  # mean of each image's own-histogram entropy rate (``analysis.rate``)


@dataclass(frozen=True)
class ImagePair:
    """One image under A and under B."""
    name: str
    psnr_a: float
    psnr_b: float
    ssim_a: float
    ssim_b: float
    token_agreement: float | None  # share of equal ids; None when levels or grids differ
    digit_agreement: tuple[float, ...] | None  # per FSQ dimension, share of equal digits


@dataclass(frozen=True)
class ImageComparison:
    """One image for a side-by-side view."""
    pair: ImagePair
    error_difference: np.ndarray  # (H, W) float32, |x - x_b| - |x - x_a| over RGB, 8-bit units (> 0: B worse)
    token_flips: np.ndarray | None  # (grid, grid) bool, where the ids differ; None when levels differ


@dataclass(frozen=True)
class Summary:
    images: int
    delta_psnr: Interval  # B - A, dB
    delta_ssim: Interval
    b_better: float  # share of images with psnr_b > psnr_a
    ties: float  # share with equal PSNR
    wilcoxon_p: float  # two-sided signed-rank test on the PSNR differences (1.0 when all are 0)
    token_agreement: float | None  # mean over images
    digit_agreement: tuple[float, ...] | None


@dataclass(frozen=True)
class Comparison:
    a: Checkpoint
    b: Checkpoint
    images: list[ImagePair]
    summary: Summary
    skipped: list[dict]  # {"name", "reason"} of entries that could not be decoded

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CompareRun:
    """A comparison with what its pictures are drawn from."""
    comparison: Comparison
    fitted: FittedImages
    a: Side
    b: Side


def agreement(ids_a, ids_b, levels) -> tuple[float, tuple[float, ...]]:
    """(share of equal ids, share of equal digits per FSQ dimension) of two id arrays of one shape."""
    ids_a, ids_b = np.asarray(ids_a), np.asarray(ids_b)
    digits = fsq.indices_to_digits(ids_a, levels) == fsq.indices_to_digits(ids_b, levels)
    return float(np.mean(ids_a == ids_b)), tuple(float(v) for v in digits.reshape(-1, len(levels)).mean(axis=0))


def same_tokens(config_a: QKVAEConfig, config_b: QKVAEConfig) -> bool:
    """Whether ids of the two configs mean the same codes on the same grid."""
    return tuple(config_a.levels) == tuple(config_b.levels) and config_a.grid_size == config_b.grid_size


def image_pair(name: str, scores: tuple[float, float, float, float], ids_a, ids_b, config_a: QKVAEConfig,
               config_b: QKVAEConfig) -> ImagePair:
    """An ``ImagePair`` from (psnr_a, psnr_b, ssim_a, ssim_b) and the two images' ids."""
    agree = agreement(ids_a, ids_b, config_a.levels) if same_tokens(config_a, config_b) else (None, None)
    return ImagePair(name, *(float(v) for v in scores), *agree)


def compare_images(name: str, original: np.ndarray, recon_a: np.ndarray, recon_b: np.ndarray, ids_a, ids_b,
                   config_a: QKVAEConfig, config_b: QKVAEConfig) -> ImageComparison:
    """One uint8 (H, W, 3) image and its reconstructions and ids under A and B, side by side."""
    scores = (psnr(original, recon_a), psnr(original, recon_b), ssim(original, recon_a), ssim(original, recon_b))
    pair = image_pair(name, scores, ids_a, ids_b, config_a, config_b)
    g = config_a.grid_size
    flips = (np.asarray(ids_a).reshape(g, g) != np.asarray(ids_b).reshape(g, g)) if same_tokens(config_a, config_b) else None
    return ImageComparison(pair, pixel_error(original, recon_b) - pixel_error(original, recon_a), flips)


def mean_interval(values, seed: int = 0) -> Interval:
    """The mean of ``values`` with scipy's BCa bootstrap 95 % interval (the mean itself when all are equal)."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if np.ptp(v) == 0:
        return Interval(mean, mean, mean)
    ci = stats.bootstrap((v,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95, method="BCa",
                         rng=np.random.default_rng(seed)).confidence_interval
    return Interval(mean, float(ci.low), float(ci.high))


def wilcoxon_p(differences) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test that the differences centre on 0 (zeros
    dropped, as Wilcoxon did); 1.0 when no difference is non-zero."""
    d = np.asarray(differences, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's note on small samples
        return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)


def summarize(pairs: list[ImagePair]) -> Summary:
    psnr_a, psnr_b = np.array([p.psnr_a for p in pairs]), np.array([p.psnr_b for p in pairs])
    d_ssim = np.array([p.ssim_b - p.ssim_a for p in pairs])
    tokens = [p.token_agreement for p in pairs if p.token_agreement is not None]
    digits = [p.digit_agreement for p in pairs if p.digit_agreement is not None]
    return Summary(
        images=len(pairs), delta_psnr=mean_interval(psnr_b - psnr_a), delta_ssim=mean_interval(d_ssim),
        b_better=float(np.mean(psnr_b > psnr_a)), ties=float(np.mean(psnr_b == psnr_a)),
        wilcoxon_p=wilcoxon_p(psnr_b - psnr_a),
        token_agreement=float(np.mean(tokens)) if tokens else None,
        digit_agreement=tuple(float(v) for v in np.mean(digits, axis=0)) if digits else None,
    )


def checkpoint(side: Side) -> Checkpoint:
    """What compare.json says about one side, from its reconstruction of the set."""
    c, r = side.model.config, side.reconstruction
    pixels = r.originals[0]
    return Checkpoint(
        name=side.name, sha256=side.sha256, config=c.to_dict(), parameters=sum(p.numel() for p in side.model.parameters()),
        psnr=float(r.psnr.mean()), ssim=float(r.ssim.mean()), ms_ssim=float(ms_ssim(r.originals, r.reconstructions).mean()),
        bpp=bits_per_pixel(nominal_bits(c), pixels),
        bpp_entropy=float(np.mean([bits_per_pixel(empirical_entropy_bits(ids), pixels) for ids in r.indices])),
    )


def compare_sets(fitted: FittedImages, a: Side, b: Side) -> Comparison:
    """The comparison of two reconstructions of the same fitted images."""
    ra, rb = a.reconstruction, b.reconstruction
    pairs = [image_pair(n, scores, ia, ib, a.model.config, b.model.config)
             for n, ia, ib, *scores in zip(fitted.names, ra.indices, rb.indices, ra.psnr, rb.psnr, ra.ssim, rb.ssim,
                                           strict=True)]
    return Comparison(checkpoint(a), checkpoint(b), pairs, summarize(pairs),
                      [{"name": s.name, "reason": s.reason} for s in fitted.skipped])


def reconstruct_fitted(model: QKVAE, fitted: FittedImages, batch_size: int) -> SetReconstruction:
    """The one call into the set-reconstruction API (re-point it when that API changes)."""
    return reconstruct_set(model, fitted, batch_size)


def checkpoint_name(spec: str) -> str:
    """A short name for weights given as a folder, a file or an ``hf://`` reference."""
    if is_hub_ref(spec):
        return spec
    path = Path(spec).resolve()
    if path in (ASSETS.resolve(), (ASSETS / WEIGHTS_NAME).resolve()):
        return SHIPPED_NAME
    return path.name if path.is_dir() else f"{path.parent.name}/{path.name}"


def compare_checkpoints(spec_a: str, spec_b: str, data, split: str | None = None, limit: int | None = None,
                        batch_size: int = BATCH_SIZE, device=None) -> CompareRun:
    """Load A and B, fit ``data``'s images once and run both models on them."""
    model_a, model_b = load_qkvae(spec_a, device), load_qkvae(spec_b, device)
    if model_a.config.image_size != model_b.config.image_size:
        raise CompareError(f"A takes {model_a.config.image_size} px images and B {model_b.config.image_size} px: "
                         "they cannot be compared on the same inputs")
    fitted = load_fitted(open_source(data, split), model_a.config.image_size, limit=limit)
    a, b = (Side(checkpoint_name(spec), weights_fingerprint(model)[1], model, reconstruct_fitted(model, fitted, batch_size))
            for spec, model in ((spec_a, model_a), (spec_b, model_b)))
    return CompareRun(compare_sets(fitted, a, b), fitted, a, b)


def compressai_results(c: Checkpoint, data: str) -> dict:
    """CompressAI's results shape for one checkpoint: one rate point."""
    return {
        "name": c.name,
        "description": (f"QKVAE {c.name} (SHA-256 {c.sha256[:12]}) on {data}; bpp = the nominal rate, fixed-width "
                        "ids; bpp-entropy = each image's own-histogram entropy; ms-ssim-rgb = "
                        + MS_SSIM_NOTE),
        "results": {"psnr-rgb": [c.psnr], "ms-ssim-rgb": [c.ms_ssim], "bpp": [c.bpp], "bpp-entropy": [c.bpp_entropy]},
    }



def worst_regressions(comparison: Comparison, k: int = WORST) -> np.ndarray:
    """Indices of the ``k`` images B loses most PSNR on, worst first."""
    d = np.array([p.psnr_b - p.psnr_a for p in comparison.images])
    return np.argsort(d, kind="stable")[:k]


def worst_grid(run: CompareRun, k: int = WORST) -> np.ndarray:
    """The ``k`` images B loses most PSNR on: original, A, B, each labelled with its dPSNR."""
    order = worst_regressions(run.comparison, k)
    pairs = run.comparison.images
    return plots.image_rows([run.fitted.images[order], run.a.reconstruction.reconstructions[order],
                             run.b.reconstruction.reconstructions[order]],
                            [f"{pairs[i].psnr_b - pairs[i].psnr_a:+.2f} dB" for i in order])


def write_outputs(run: CompareRun, data: str, out, worst: int = WORST) -> Path:
    comparison, out = run.comparison, Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "compare.json", json.dumps(comparison.to_json(), indent=1) + "\n")
    for side, c in (("a", comparison.a), ("b", comparison.b)):
        atomic_write(out / f"compressai-{side}.json", json.dumps(compressai_results(c, data), indent=1) + "\n")
    pairs = comparison.images
    with atomic_path(out / "psnr_scatter.png") as staging:
        plots.psnr_scatter([p.psnr_a for p in pairs], [p.psnr_b for p in pairs], comparison.a.name,
                           comparison.b.name).savefig(staging, format="png", dpi=100)
    with atomic_path(out / "worst.png") as staging:
        Image.fromarray(worst_grid(run, worst)).save(staging, format="png")
    return out


def summary_line(c: Comparison) -> str:
    s = c.summary
    line = (f"{s.images} images: A {c.a.psnr:.2f} dB / {c.a.ssim:.4f}, B {c.b.psnr:.2f} dB / {c.b.ssim:.4f}; "
            f"dPSNR {s.delta_psnr.mean:+.3f} dB [{s.delta_psnr.low:+.3f}, {s.delta_psnr.high:+.3f}], "
            f"B better on {s.b_better:.0%} (Wilcoxon p {s.wilcoxon_p:.2g})")
    return line + (f", token agreement {s.token_agreement:.3f}" if s.token_agreement is not None else "")


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.compare", description=__doc__.split("\n")[0],
                                parents=[common_options(weights=False)])
    p.add_argument("--a", required=True, help="checkpoint A: folder, .safetensors file or hf://OWNER/NAME")
    p.add_argument("--b", required=True, help="checkpoint B, the same forms")
    p.add_argument("--out", default="runs/compare", help="output folder")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--worst", type=int, default=WORST, help="images in worst.png")
    return p.parse_args(argv)


def run_compare(args: argparse.Namespace) -> None:
    result = compare_checkpoints(args.a, args.b, args.data, args.split, args.limit, args.batch_size, args.device)
    out = write_outputs(result, args.data, args.out, args.worst)
    print(f"{summary_line(result.comparison)} -> {out / 'compare.json'}")


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: run_compare(args), CompareError)


if __name__ == "__main__":
    sys.exit(main())
