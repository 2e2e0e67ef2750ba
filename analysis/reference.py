"""The OOD reference file: fit the context prior and calibrate the score on photos, save, load.

    python -m analysis.reference --data ../shared/data/train --calibration ../shared/data/val
        [--calibration-prefix imagenet_] [--out assets/ood_reference.npz] [--weights W]

Every image is encoded with the weights. A deterministic ``HOLDOUT_FRACTION`` of ``--data``
(by a hash of the file name) is held out; the rest, fit to 96x96 with mode "resize" as at
inference, gives the context prior's counts, the unigram frequencies and the photos' image
statistics (``analysis.photo_features.PhotoModel``). The held-out photos
and the ``--calibration`` photos whose names start with ``--calibration-prefix`` (ImageNet's,
the source of STL-10) give the calibration set, each twice: fit with "resize" (as the app and
the CLIs do) and as a random square crop covering most of the short side resized to 96x96, the
way STL-10 was made from ImageNet. So the thresholds hold for both. The file
stores the weights' SHA-256; loading it for other weights raises ``ReferenceFileError``.
Rerun it whenever the weights change (about 5 minutes on 2 CPU cores).
"""

import argparse
import hashlib
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

from analysis.ood import MIN_CALIBRATION, Calibration, OODReference, fit_line, image_features, local_bits, unigram_probabilities
from analysis.photo_features import PhotoModel, photo_statistics
from analysis.prior import STRENGTH, ContextPrior, batch_grids, fit_counts
from qkvae.cli import common_options, run_cli
from qkvae.atomic import atomic_path
from qkvae.data import RandomCropSampler
from qkvae.image import fit_rgb
from qkvae.pipeline import BATCH_SIZE, encode_images
from qkvae.sources import SourceError, open_source, read_all
from qkvae.weights import ASSETS, load_qkvae, weights_fingerprint

REFERENCE_PATH = ASSETS / "ood_reference.npz"
REGENERATE = "python -m analysis.reference --data TRAIN --calibration VAL"
# Version of the file's layout: 1 was the unigram counts file (reference_counts.npz), 2 had no
# photo statistics (five tests instead of ten), 3 had no spectrum-slope and face tests (ten, not twelve).
FORMAT = 4
HOLDOUT_FRACTION = 0.15
# STL-10 is made of ImageNet photos, so ImageNet photos define "in distribution": calibrated on
# the cats, dogs and BSDS photos as well (two thirds of train/), the thresholds flagged held-out
# ImageNet photos 1-4 % of the time instead of 1 %.
CALIBRATION_PREFIX = "imagenet_"
CROP_SEED = 0
# Additive smoothing of the unigram frequencies (the KL feature) with half a count per code, the
# Krichevsky-Trofimov choice: a code never seen costs ~25 bits, finite.
ALPHA = 0.5
MAP_TOKENS = 200_000  # calibration tokens that fit the map's complexity line


class ReferenceFileError(ValueError):
    """A reference file that is missing, unreadable, outdated, or made with other weights."""


def held_out(name: str, fraction: float = HOLDOUT_FRACTION) -> bool:
    """Whether a training photo is held out for calibration: a fixed hash of its name, not its position."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) < fraction * 2**32


def load_photos(source, size: int, hold_out: bool, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(photos to fit on, calibration photos), uint8 (N, size, size, 3) each, from any image source.

    With ``hold_out``, the ``held_out`` names are kept out of the fit and the rest are fit on
    (resized); without, nothing is fit on. Of the photos not fit on, those whose file name starts
    with ``prefix`` calibrate (resized and cropped). Undecodable entries are reported on stderr
    and skipped.
    """
    source = open_source(source)
    crops = RandomCropSampler(None, size, seed=CROP_SEED)
    fitting, calibration, skipped = [], [], []
    for item in read_all(source, skipped):
        resized = fit_rgb(item.rgb, size, "resize")
        if hold_out and not held_out(item.name):
            fitting.append(resized)
        elif Path(item.name).name.startswith(prefix):
            calibration += [resized, crops.crop(item.rgb)]
    for entry in skipped:
        print(f"warning: skipped {entry.name}: {entry.reason}", file=sys.stderr)
    empty = np.zeros((0, size, size, 3), np.uint8)
    return (np.stack(fitting) if fitting else empty), (np.stack(calibration) if calibration else empty)


def map_line(prior: ContextPrior, rgb: np.ndarray, indices: np.ndarray) -> tuple[float, float]:
    """Least-squares line of a photo token's surprisal against its ``local_bits`` (intercept, slope)."""
    step = max(1, len(rgb) * indices.shape[-1] // MAP_TOKENS)
    bits = np.concatenate([local_bits(a).ravel() for a in rgb])[::step]
    return fit_line(bits, prior.surprisal(batch_grids(indices)).ravel()[::step])


def calibrate(prior: ContextPrior, probs, photo_model: PhotoModel, rgb: np.ndarray,
              indices: np.ndarray) -> tuple[Calibration, tuple[float, float]]:
    """The calibration on photos and their complexity line (prior bits against PNG bits)."""
    features = [image_features(a, ids, prior, probs, (0.0, 0.0), photo_model) for a, ids in zip(rgb, indices, strict=True)]
    line = fit_line([f.png_bits for f in features], [f.prior_bits for f in features])
    features = [replace(f, photo_bits=line[0] + line[1] * f.png_bits) for f in features]
    return Calibration.fit(features), line


def build_reference(model, data, calibration, prefix: str = CALIBRATION_PREFIX,
                    batch_size: int = BATCH_SIZE) -> OODReference:
    """Fit the prior on ``data`` (less its held-out share) and calibrate on the photos of the
    held-out share and of ``calibration`` whose file names start with ``prefix``."""
    weights_name, weights_sha256 = weights_fingerprint(model)  # before the long run: the file may be replaced
    size, levels = model.config.image_size, tuple(model.config.levels)
    fit_rgb, held_rgb = load_photos(data, size, hold_out=True, prefix=prefix)
    _, extra_rgb = load_photos(calibration, size, hold_out=False, prefix=prefix)
    if not len(fit_rgb):
        raise SourceError(f"{data} has no photos left to fit on")
    fit_ids = batch_grids(encode_images(model, fit_rgb, batch_size))
    prior = ContextPrior(levels, tuple(t.astype(np.int32) for t in fit_counts(fit_ids, levels)), STRENGTH)
    unigram = np.bincount(fit_ids.ravel(), minlength=model.config.codebook_size).astype(np.int64)
    probs = unigram_probabilities(unigram, ALPHA)
    photo_model = PhotoModel.fit(np.array([photo_statistics(a) for a in fit_rgb]))
    cal_rgb = np.concatenate([held_rgb, extra_rgb])
    if len(cal_rgb) < MIN_CALIBRATION:
        raise SourceError(f"only {len(cal_rgb)} calibration images (each held-out or --calibration photo gives two); "
                          f"the calibration needs at least {MIN_CALIBRATION}")
    cal_ids = encode_images(model, cal_rgb, batch_size, desc="calibrating")
    fitted_calibration, complexity_line = calibrate(prior, probs, photo_model, cal_rgb, cal_ids)
    return OODReference(
        prior=prior, unigram_counts=unigram, alpha=ALPHA, photo_model=photo_model, calibration=fitted_calibration,
        complexity_line=complexity_line,
        map_line=map_line(prior, cal_rgb, cal_ids), num_images=len(fit_rgb), data_name=Path(data).name,
        calibration_name=f"{prefix}* of {Path(data).name} held out + {Path(calibration).name}",
        weights_name=weights_name, weights_sha256=weights_sha256,
    )


def save_reference(reference: OODReference, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prior = reference.prior
    with atomic_path(path) as staging, open(staging, "wb") as f:
        np.savez_compressed(f, format=FORMAT, levels=np.asarray(prior.levels), strength=prior.strength,
            **{f"prior_counts_{k}": c.astype(np.int32) for k, c in enumerate(prior.counts)},
            unigram_counts=reference.unigram_counts.astype(np.int32), alpha=reference.alpha,
            **{f"photo_{k}": v for k, v in asdict(reference.photo_model).items()},
            calibration_values=reference.calibration.values,
            thresholds=np.asarray(reference.calibration.thresholds),
            complexity_line=np.asarray(reference.complexity_line), map_line=np.asarray(reference.map_line),
            num_images=reference.num_images, data_name=reference.data_name,
            calibration_name=reference.calibration_name, weights_name=reference.weights_name,
            weights_sha256=reference.weights_sha256,
        )
    return path


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ReferenceFileError(f"no OOD reference at {path}; create it with `{REGENERATE}`")
    try:
        with np.load(path, allow_pickle=False) as f:
            raw = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ReferenceFileError(f"{path} is not an OOD reference file ({e})") from None
    version = raw.get("format", np.array(1)).item()
    if version != FORMAT:
        raise ReferenceFileError(f"{path} is an OOD reference of format {version}, written by another version of "
                                 f"analysis.reference; this one reads format {FORMAT}: regenerate it with `{REGENERATE}`")
    return {k: v.item() if v.ndim == 0 else v for k, v in raw.items()}


def load_reference(path=None, weights_sha256: str | None = None) -> OODReference:
    """The reference from ``path`` (default: the shipped file), refused unless it was made with the
    weights whose SHA-256 is ``weights_sha256`` (None skips the check)."""
    path = Path(path) if path is not None else REFERENCE_PATH
    raw = _read(path)
    if weights_sha256 is not None and raw.get("weights_sha256") != weights_sha256:
        raise ReferenceFileError(
            f"{path.name} was made with weights of SHA-256 {raw.get('weights_sha256') or 'unknown'}, "
            f"but the loaded weights have SHA-256 {weights_sha256}; rebuild it with `{REGENERATE} --weights W`")
    try:
        levels = tuple(int(n) for n in raw["levels"])
        prior = ContextPrior(levels, tuple(raw[f"prior_counts_{k}"] for k in range(len(levels))), float(raw["strength"]))
        photo_model = PhotoModel(**{f.name: np.asarray(raw[f"photo_{f.name}"], np.float64) for f in fields(PhotoModel)})
        calibration = Calibration(np.asarray(raw["calibration_values"], np.float64), tuple(map(float, raw["thresholds"])))
        return OODReference(
            prior=prior, unigram_counts=raw["unigram_counts"], alpha=float(raw["alpha"]), photo_model=photo_model,
            calibration=calibration,
            complexity_line=tuple(map(float, raw["complexity_line"])), map_line=tuple(map(float, raw["map_line"])), num_images=int(raw["num_images"]),
            data_name=str(raw["data_name"]), calibration_name=str(raw["calibration_name"]),
            weights_name=str(raw["weights_name"]), weights_sha256=str(raw["weights_sha256"]),
        )
    except (KeyError, ValueError) as e:
        raise ReferenceFileError(f"{path} is not a complete OOD reference file ({e}); rebuild it with `{REGENERATE}`") from None


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m analysis.reference", description=__doc__.split("\n")[0],
                                parents=[common_options(split=False, data_help="training photos (any image source)")])
    p.add_argument("--calibration", required=True,
                   help="more in-distribution photos for the calibration, none of them in --data")
    p.add_argument("--calibration-prefix", default=CALIBRATION_PREFIX,
                   help='only photos whose file names start with this calibrate ("" for all)')
    p.add_argument("--out", default=str(REFERENCE_PATH), help="output .npz (default: the shipped file)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: build(args), ReferenceFileError)


def build(args) -> None:
    model = load_qkvae(args.weights, device=args.device)
    reference = build_reference(model, args.data, args.calibration, args.calibration_prefix, args.batch_size)
    out = save_reference(reference, args.out)
    unusual, outside = reference.calibration.thresholds
    print(f"prior fit on {reference.num_images} images, calibrated on {len(reference.calibration.values)} photos, "
          f"thresholds {unusual:.2f}/{outside:.2f} -> {out}")


if __name__ == "__main__":
    sys.exit(main())
