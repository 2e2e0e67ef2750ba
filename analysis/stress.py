"""Stress suite: how an image's reconstruction and tokens respond to scale, shift, corruption,
quantization and token noise.

    python -m analysis.stress --data SRC --out DIR [--weights W] [--limit N]

Five families, per image (``stress_image``, one image's suite as a few batched model calls):
- scale: zoom out (0.5x, 0.25x: downscaled and tiled) and in (1.5x to 4x: centre crop upscaled),
  PSNR and SSIM of the reconstruction against the transformed input; the card's "very small" and
  "very large structures". 1x is the clean image.
- shift: the image moved by 1-8 px (ImageNet-P's translate perturbation), horizontally and
  vertically, the uncovered edge filled by reflection. Agreement of the moved ids with the clean
  ids on the overlapping grid after undoing the move (2 px is one token; an odd shift is undone
  by its whole tokens, so half a token stays), and the mean absolute change of each FSQ digit.
  The two directions are averaged.
- corruption: ``analysis.corruptions`` at severities 1-5: PSNR of the reconstruction against the
  corrupted input, and the share of tokens that differ from the clean image's.
- quantization: the continuous latent (before rounding) decoded beside the ids: PSNR without
  and with rounding, and per token how much the rounding changes the decoded pixels.
- token noise: one FSQ digit moved by +-1 on 1, 5, 10 and 25 % of the tokens, and apart, ids
  replaced by uniformly random ones: PSNR of the decode against the input and against the clean
  reconstruction.
All randomness is seeded by the image's name. ``python -m analysis.stress`` writes
``DIR/stress.json`` (``scale``, ``shift``, ``corruption``, ``quantization``, ``token_noise``:
the set's median and interquartile band per setting; ``images``: the per-image curves) and one
plot per family.
"""

import argparse
import json
import sys
import time
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from analysis import plots
from analysis.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from analysis.metrics import token_error
from analysis.stability import token_agreement
from qkvae import fsq
from qkvae.cli import common_options, positive, run_cli
from qkvae.image import to_tensor, to_uint8
from qkvae.metrics import psnr, ssim
from qkvae.pipeline import load_fitted
from qkvae.sources import open_source
from qkvae.weights import load_qkvae

SCALES = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
SHIFTS = (0, 1, 2, 3, 4, 5, 6, 7, 8)  # pixels
NOISE_FRACTIONS = (0.01, 0.05, 0.10, 0.25)  # share of tokens hit
TOKEN = 2  # pixels per token side


@dataclass(frozen=True)
class ScalePoint:
    scale: float  # < 1: zoomed out and tiled; > 1: centre crop zoomed in
    psnr: float
    ssim: float


@dataclass(frozen=True)
class ShiftPoint:
    pixels: int
    agreement: float  # share of overlapping tokens equal to the clean ids after undoing the shift
    digit_change: tuple[float, ...]  # mean |change| of each FSQ digit over the overlap, in levels


@dataclass(frozen=True)
class CorruptionPoint:
    corruption: str
    severity: int
    psnr: float  # reconstruction against the corrupted input
    tokens_changed: float  # share of ids that differ from the clean image's


@dataclass(frozen=True)
class Quantization:
    psnr_quantized: float  # decode of the ids
    psnr_continuous: float  # decode of the latent before rounding
    rounding_cost: np.ndarray  # (48, 48): mean |x_hat quantized - x_hat continuous| per token, 8-bit units

    def to_json(self) -> dict:
        worst = np.argsort(self.rounding_cost, axis=None)[::-1][:5]
        side = self.rounding_cost.shape[1]
        return {"psnr_quantized": self.psnr_quantized, "psnr_continuous": self.psnr_continuous,
                "rounding_cost_mean": float(self.rounding_cost.mean()),
                "worst_tokens": [{"row": int(i // side), "col": int(i % side), "cost": float(self.rounding_cost.flat[i])}
                                 for i in worst]}


@dataclass(frozen=True)
class TokenNoisePoint:
    kind: str  # "digit": one FSQ digit moved by +-1; "random": the id replaced by a uniform one
    fraction: float  # share of tokens hit
    psnr: float  # against the input
    psnr_vs_clean: float  # against the clean reconstruction


@dataclass(frozen=True)
class ImageStress:
    """One image's five curves; ``to_json`` is its entry in ``stress.json``."""

    name: str
    psnr: float  # clean reconstruction
    scale: list[ScalePoint]
    shift: list[ShiftPoint]
    corruption: list[CorruptionPoint]
    quantization: Quantization
    token_noise: list[TokenNoisePoint]
    seconds: float

    def to_json(self) -> dict:
        return {"name": self.name, "psnr": self.psnr, "seconds": self.seconds,
                **{f: [asdict(p) for p in getattr(self, f)] for f in ("scale", "shift", "corruption", "token_noise")},
                "quantization": self.quantization.to_json()}


@dataclass(frozen=True)
class Band:
    median: float
    q25: float
    q75: float


@dataclass(frozen=True)
class BandPoint:
    """One setting of a family over a set: the setting's fields, each measure's band."""

    setting: dict
    measures: dict  # name -> Band, or a list of Bands for a per-digit measure

    def to_json(self) -> dict:
        return {**self.setting, **{k: [asdict(b) for b in v] if isinstance(v, list) else asdict(v)
                                   for k, v in self.measures.items()}}


@dataclass(frozen=True)
class SetStress:
    """The set's median and interquartile band per setting of each family, and the images."""

    scale: list[BandPoint]
    shift: list[BandPoint]
    corruption: list[BandPoint]
    quantization: dict  # psnr_quantized, psnr_continuous, rounding_loss (continuous - quantized): Band
    token_noise: list[BandPoint]
    images: list[ImageStress]

    def to_json(self) -> dict:
        out = {f: [p.to_json() for p in getattr(self, f)] for f in ("scale", "shift", "corruption", "token_noise")}
        return {**out, "quantization": {k: asdict(b) for k, b in self.quantization.items()},
                "num_images": len(self.images), "images": [im.to_json() for im in self.images]}


SETTINGS = {ScalePoint: ("scale",), ShiftPoint: ("pixels",), CorruptionPoint: ("corruption", "severity"),
            TokenNoisePoint: ("kind", "fraction")}


def rng(name: str, stream: str) -> np.random.Generator:
    """A generator seeded by the image's name and a stream name: the same numbers in every process."""
    return np.random.default_rng([zlib.crc32(name.encode()), zlib.crc32(stream.encode())])


def _resize(rgb: np.ndarray, side: int, resample) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((side, side), resample))


def rescale(rgb: np.ndarray, scale: float) -> np.ndarray:
    """The image seen at ``scale``: below 1, shrunk (Lanczos) and tiled to fill the square;
    above 1, its centre ``side / scale`` crop enlarged (bicubic); 1 returns it."""
    side = rgb.shape[0]
    if scale == 1:
        return rgb.copy()
    if scale < 1:
        tiles = round(1 / scale)
        small = _resize(rgb, side // tiles, Image.Resampling.LANCZOS)
        return np.tile(small, (tiles, tiles, 1))[:side, :side]
    crop = round(side / scale)
    start = (side - crop) // 2
    return _resize(np.ascontiguousarray(rgb[start:start + crop, start:start + crop]), side, Image.Resampling.BICUBIC)


def shifted(rgb: np.ndarray, pixels: int, axis: int) -> np.ndarray:
    """Content moved ``pixels`` towards the origin along ``axis`` (0: up, 1: left), the uncovered
    edge filled by reflection: ``shifted[i] = rgb[i + pixels]``."""
    pad = [(0, 0)] * 3
    pad[axis] = (0, pixels)
    moved = np.pad(rgb, pad, mode="reflect")
    return np.take(moved, np.arange(pixels, pixels + rgb.shape[axis]), axis=axis)


def shift_agreement(clean: np.ndarray, moved: np.ndarray, pixels: int, axis: int, levels) -> tuple[float, np.ndarray]:
    """Agreement and mean |digit change| between grid ids (g, g) of the clean image and of the image
    moved by ``pixels`` along ``axis``, on the overlap after undoing the move's whole tokens."""
    tokens, g = pixels // TOKEN, clean.shape[axis]
    keep = g - -(-pixels // TOKEN)  # grid lines whose pixels all come from inside the clean image
    a = np.take(clean, np.arange(tokens, tokens + keep), axis=axis)
    b = np.take(moved, np.arange(keep), axis=axis)
    change = np.abs(fsq.indices_to_digits(a, levels) - fsq.indices_to_digits(b, levels)).reshape(-1, len(levels))
    return float((a == b).mean()), change.mean(axis=0)


def token_noise(indices: np.ndarray, fraction: float, kind: str, levels, g: np.random.Generator) -> np.ndarray:
    """``indices`` (T,) with ``round(fraction * T)`` tokens hit: one FSQ digit moved by +-1 (back
    the other way at the end of its range), or the id replaced by a uniformly random one."""
    out = np.array(indices, dtype=np.int64)
    hit = g.choice(out.size, size=round(fraction * out.size), replace=False)
    if kind == "random":
        out[hit] = g.integers(0, int(np.prod(levels)), size=hit.size)
        return out
    digits = fsq.indices_to_digits(out[hit], levels)
    dim = g.integers(0, len(levels), size=hit.size)
    rows = np.arange(hit.size)
    step = g.choice((-1, 1), size=hit.size)
    moved = digits[rows, dim] + step
    top = np.asarray(levels)[dim] - 1
    digits[rows, dim] = np.where((moved < 0) | (moved > top), digits[rows, dim] - step, moved)
    out[hit] = fsq.digits_to_indices(digits, levels)
    return out


def _psnrs(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [psnr(x, y) for x, y in zip(a, b, strict=True)]


def stress_image(model, rgb: np.ndarray, name: str = "image") -> ImageStress:
    """The five families for one uint8 (96, 96, 3) image: every input of the suite encoded in one
    batch and every decode in another, plus one continuous decode."""
    start = time.perf_counter()
    levels, g = model.config.levels, model.config.grid_size
    shifts = [(s, axis) for s in SHIFTS[1:] for axis in (0, 1)]
    corrupted = [(c, s) for c in CORRUPTIONS for s in SEVERITIES]
    inputs = np.stack([rgb, *(rescale(rgb, s) for s in SCALES if s != 1), *(shifted(rgb, s, a) for s, a in shifts),
                       *(corrupt(rgb, c, s, rng(name, f"{c}/{s}")) for c, s in corrupted)])
    x = to_tensor(inputs).to(model.device)
    ids = model.encode(x).cpu()
    clean = ids[0].numpy()
    noisy = [(kind, f) for kind in ("digit", "random") for f in NOISE_FRACTIONS]
    noised = torch.from_numpy(np.stack([token_noise(clean, f, kind, levels, rng(name, f"{kind}/{f}")) for kind, f in noisy]))
    recons = to_uint8(model.decode(torch.cat([ids, noised])))
    recon_inputs, recon_noise = recons[:len(inputs)], recons[len(inputs):]
    continuous = to_uint8(model.decode_codes(model.continuous(x[:1])))[0]
    psnrs = _psnrs(inputs, recon_inputs)

    rows = [0 if s == 1 else 1 + [t for t in SCALES if t != 1].index(s) for s in SCALES]  # 1x: the clean image
    scale = [ScalePoint(s, psnrs[i], ssim(inputs[i], recon_inputs[i])) for s, i in zip(SCALES, rows, strict=True)]
    n_scale = len(SCALES) - 1
    grid = ids.numpy().reshape(-1, g, g)
    shift = [ShiftPoint(0, 1.0, (0.0,) * len(levels))]
    for k, s in enumerate(SHIFTS[1:]):
        both = [shift_agreement(grid[0], grid[1 + n_scale + 2 * k + a], s, a, levels) for a in (0, 1)]
        shift.append(ShiftPoint(s, float(np.mean([b[0] for b in both])),
                                tuple(float(v) for v in np.mean([b[1] for b in both], axis=0))))
    first = 1 + n_scale + len(shifts)
    corruption = [CorruptionPoint(c, s, psnrs[first + k], float(1 - token_agreement(clean[None], ids[first + k][None])[0]))
                  for k, (c, s) in enumerate(corrupted)]
    quantization = Quantization(psnrs[0], psnr(rgb, continuous), token_error(recon_inputs[0], continuous, TOKEN))
    noise = [TokenNoisePoint(kind, f, psnr(rgb, r), psnr(recon_inputs[0], r))
             for (kind, f), r in zip(noisy, recon_noise, strict=True)]
    return ImageStress(name, psnrs[0], scale, shift, corruption, quantization, noise, time.perf_counter() - start)


def band(values) -> Band:
    q25, median, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return Band(float(median), float(q25), float(q75))


def aggregate_points(curves: list[list]) -> list[BandPoint]:
    """Per setting (the same order in every curve), the band of each measure over the images."""
    out = []
    for points in zip(*curves, strict=True):
        keys = SETTINGS[type(points[0])]
        setting = {k: getattr(points[0], k) for k in keys}
        measures = {}
        for f in fields(points[0]):
            if f.name in keys:
                continue
            values = np.array([getattr(p, f.name) for p in points], dtype=np.float64)
            measures[f.name] = [band(v) for v in values.T] if values.ndim == 2 else band(values)
        out.append(BandPoint(setting, measures))
    return out


def aggregate(images: list[ImageStress]) -> SetStress:
    q = [im.quantization for im in images]
    return SetStress(
        scale=aggregate_points([im.scale for im in images]),
        shift=aggregate_points([im.shift for im in images]),
        corruption=aggregate_points([im.corruption for im in images]),
        quantization={"psnr_quantized": band([v.psnr_quantized for v in q]),
                      "psnr_continuous": band([v.psnr_continuous for v in q]),
                      "rounding_loss": band([v.psnr_continuous - v.psnr_quantized for v in q])},
        token_noise=aggregate_points([im.token_noise for im in images]),
        images=images,
    )


def stress_set(model, names, rgb: np.ndarray) -> SetStress:
    return aggregate([stress_image(model, im, name) for name, im in zip(names, rgb, strict=True)])


def write_outputs(result: SetStress, out) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stress.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    for name, fig in plots.stress_figures(result.to_json()).items():
        fig.savefig(out / f"stress_{name}.png", dpi=100)
    return out


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.stress", description=__doc__.split("\n")[0],
                                parents=[common_options(batch_size=None)])
    p.add_argument("--out", default="runs/stress", help="output folder")
    p.add_argument("--limit", type=positive, default=None, help="the first N images only")
    return p.parse_args(argv)


def run_stress(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    model = load_qkvae(args.weights, device=args.device)
    fitted = load_fitted(open_source(args.data, args.split), model.config.image_size, limit=args.limit)
    result = stress_set(model, fitted.names, fitted.images)
    out = write_outputs(result, args.out)
    for s in fitted.skipped:
        print(f"warning: skipped {s.name}: {s.reason}", file=sys.stderr)
    q = result.quantization
    print(f"{len(result.images)} images: PSNR {q['psnr_quantized'].median:.2f} dB quantized, "
          f"{q['psnr_continuous'].median:.2f} dB continuous (medians), {time.perf_counter() - start:.1f} s "
          f"-> {out / 'stress.json'}")


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: run_stress(args))


if __name__ == "__main__":
    sys.exit(main())
