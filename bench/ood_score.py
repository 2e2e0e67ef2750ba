"""What the OOD score and the per-token map add to one upload: median milliseconds per stage.

    python -m bench.ood_score [--reference assets/ood_reference.npz] [--image assets/examples/photo-cat.png]
        [--runs 200]

The stages run interleaved, one call each per round, so that a slow spell of a shared machine
hits them alike; the encoder's time is measured the same way as the yardstick. Target: the score
adds <= 5 ms on a CPU.
"""

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from analysis.face_detector import face_windows
from analysis.ood import histogram_kl, local_bits, png_bits
from analysis.photo_features import photo_statistics
from analysis.reference import REFERENCE_PATH, load_reference, weights_fingerprint
from qkvae.image import load_image, to_uint8
from qkvae.weights import ASSETS, load_qkvae

WARMUP = 5


def stages(model, reference, x: torch.Tensor) -> dict:
    """Name -> a zero-argument callable, for one image ``x`` (3, 96, 96)."""
    with torch.no_grad():
        indices = model.encode(x[None])[0].cpu().numpy()
    rgb = to_uint8(x)

    def encode():
        with torch.no_grad():
            model.encode(x[None])

    return {
        "encode (yardstick)": encode,
        "prior surprisal": lambda: reference.prior.surprisal(indices),
        "png bits": lambda: png_bits(rgb, indices.size),
        "histogram KL": lambda: histogram_kl(indices, reference.probs),
        "photo statistics and their distances": lambda: reference.photo_model.distances(photo_statistics(rgb)),
        "face windows (two cascade searches)": lambda: face_windows(rgb),
        "score (all of the above + combination)": lambda: reference.score(rgb, indices),
        "token map": lambda: reference.token_map(rgb, indices),
        "local bits (part of the map)": lambda: local_bits(rgb),
    }


def measure(fns: dict, runs: int) -> dict[str, list[float]]:
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    times = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - start))
    return times


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ood_score", description=__doc__.split("\n")[0])
    p.add_argument("--reference", default=str(REFERENCE_PATH))
    p.add_argument("--image", default=str(ASSETS / "examples" / "photo-cat.png"))
    p.add_argument("--runs", type=int, default=200)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = setup_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = load_qkvae(device="cpu")
    reference = load_reference(args.reference, weights_fingerprint(model)[1])
    times = measure(stages(model, reference, load_image(args.image)), args.runs)
    encode = statistics.median(times["encode (yardstick)"])
    print(f"{args.runs} interleaved runs, torch threads {torch.get_num_threads()}, image {args.image}")
    print("| stage | median ms | p90 ms | of encode |\n|---|---|---|---|")
    for name, t in times.items():
        median = statistics.median(t)
        print(f"| {name} | {median:.3f} | {np.percentile(t, 90):.3f} | {median / encode:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
