"""The STL-10 PSNR reference: quantiles of the shipped weights' PSNR on STL-10 images, the
distribution an upload's groups are drawn against in the Explore tab.

    python -m analysis.psnr_reference --data ../shared/data/stl10-samples [--out assets/stl10_psnr.json]

The CLI fits every image of ``--data`` to 96x96 (mode "resize"), reconstructs it and writes the
PSNR at each of ``QUANTILES`` with how it was made (data, image count, weights and their SHA-256);
only those numbers ship, never the images. ``load_psnr_reference`` reads the shipped file.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qkvae.cli import common_options, run_cli
from qkvae.pipeline import reconstruct_set
from qkvae.sources import open_source
from qkvae.weights import ASSETS, load_qkvae, weights_fingerprint

PSNR_REFERENCE_PATH = ASSETS / "stl10_psnr.json"
QUANTILES = tuple(np.round(np.linspace(0, 1, 21), 2).tolist())  # 0, 0.05, ..., 1


@dataclass(frozen=True)
class PSNRReference:
    quantiles: tuple[float, ...]  # cumulative shares
    psnr: tuple[float, ...]  # dB at each share
    images: int
    weights_sha256: str


def psnr_quantiles(psnrs, quantiles=QUANTILES) -> list[float]:
    """The PSNR at each cumulative share of ``quantiles`` (linear interpolation between images)."""
    return np.quantile(np.asarray(psnrs, dtype=np.float64), quantiles).tolist()


@lru_cache(maxsize=2)
def load_psnr_reference(path: Path = PSNR_REFERENCE_PATH) -> PSNRReference:
    d = json.loads(Path(path).read_text())
    return PSNRReference(tuple(d["quantiles"]), tuple(d["psnr"]), d["made"]["images"], d["made"]["weights_sha256"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.psnr_reference", description=__doc__.split("\n")[0],
                                parents=[common_options(split=False, batch_size=None,
                                                        data_help="STL-10 images (an image source)")])
    p.add_argument("--out", default=str(PSNR_REFERENCE_PATH), help="where to write the quantiles")
    args = p.parse_args(argv)
    return run_cli(lambda: build(args))


def build(args: argparse.Namespace) -> None:
    model = load_qkvae(args.weights, device=args.device)
    images = reconstruct_set(model, open_source(args.data))
    weights, sha256 = weights_fingerprint(model)
    made = {"data": Path(args.data).name, "images": len(images.names), "weights": weights, "weights_sha256": sha256,
            "preprocessing": "fit to 96x96 with mode resize",
            "command": "python -m analysis.psnr_reference --data " + args.data}
    result = {"quantiles": list(QUANTILES), "psnr": psnr_quantiles(images.psnr), "made": made}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(images.names)} images: median PSNR {np.median(images.psnr):.2f} dB -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
