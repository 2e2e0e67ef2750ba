"""One image's full stress suite (``analysis.stress.stress_image``): median seconds, against one
encode + decode of the same image as the yardstick.

    python -m bench.stress [--image assets/examples/photo-cat.png] [--runs 5]

The suite is 73 encodes, 81 decodes and one continuous decode, run as two batches; the two
measurements alternate so that a slow spell of a shared machine hits both alike.
"""

import argparse
import statistics
import sys
import time

import torch

from analysis.stress import stress_image
from qkvae.image import load_image, to_uint8
from qkvae.weights import ASSETS, load_qkvae


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.stress", description=__doc__.split("\n")[0])
    p.add_argument("--image", default=str(ASSETS / "examples" / "photo-cat.png"))
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    model = load_qkvae(device="cpu")
    x = load_image(args.image)
    rgb = to_uint8(x)
    stress_image(model, rgb)  # warm-up
    suite, yardstick = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        stress_image(model, rgb)
        suite.append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            model.decode(model.encode(x[None]))
        yardstick.append(time.perf_counter() - start)
    s, y = statistics.median(suite), statistics.median(yardstick)
    print(f"threads {torch.get_num_threads()}, {args.runs} runs: suite {s:.2f} s, one encode+decode {1000 * y:.0f} ms, "
          f"ratio {s / y:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
