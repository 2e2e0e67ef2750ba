"""Training throughput: one step of the card's recipe, fp32 against bf16 autocast, by memory format.

    python -m bench.train_step [--device cpu] [--batch-size 32] [--repeats 5] [--json out.json]

Each configuration runs ``qkvae.train.train_step`` (forward, loss, backward, clip, AdamW,
scheduler) on a fresh model and a fixed random batch; the first step is a warm-up and the time
is the median of the next ``--repeats``. Reports steps/s and images/s, and the speed of each
configuration relative to fp32 in the same memory format.
"""

import argparse
import statistics
import time

import torch

from bench import cli
from qkvae.model import QKVAE, QKVAEConfig
from qkvae.train import build_optimizer, native_bf16, train_step
from qkvae.weights import default_device

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def step_seconds(device, batch_size: int, dtype, memory_format, repeats: int) -> float:
    torch.manual_seed(0)
    model = QKVAE(QKVAEConfig()).to(device, memory_format=memory_format)
    opt, sched = build_optimizer(model, 6000, 3e-4)
    x = (torch.rand(batch_size, 3, 96, 96, device=device) * 2 - 1).contiguous(memory_format=memory_format)
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        train_step(model, x, opt, sched, dtype)  # ends with .item(), which waits for the device
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def run(device: torch.device, batch_size: int, repeats: int) -> dict:
    rows = []
    for fmt, memory_format in FORMATS.items():
        for precision, dtype in PRECISIONS.items():
            s = step_seconds(device, batch_size, dtype, memory_format, repeats)
            rows.append({"format": fmt, "precision": precision, "seconds": s,
                         "steps_per_s": 1 / s, "images_per_s": batch_size / s})
            print(rows[-1], flush=True)
    return {"device": str(device), "threads": torch.get_num_threads(), "native_bf16": native_bf16(device),
            "batch_size": batch_size, "repeats": repeats, "rows": rows}


def markdown(result: dict) -> str:
    fp32 = {r["format"]: r["seconds"] for r in result["rows"] if r["precision"] == "fp32"}
    lines = [f"device={result['device']} threads={result['threads']} native bf16={result['native_bf16']} "
             f"batch={result['batch_size']}, median of {result['repeats']}",
             "", "| memory format | precision | median s/step | steps/s | images/s | speed vs fp32 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['format']} | {r['precision']} | {r['seconds']:.3f} | {r['steps_per_s']:.2f} | "
              f"{r['images_per_s']:.1f} | {fp32[r['format']] / r['seconds']:.2f}x |" for r in result["rows"]]
    return "\n".join(lines)


def setup_args(argv=None) -> argparse.Namespace:
    p = cli.parser("bench.train_step", __doc__)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    return p.parse_args(argv)


def main(argv=None) -> None:
    cli.main(setup_args, lambda args: run(torch.device(args.device) if args.device else default_device(),
                                          args.batch_size, args.repeats), markdown, argv)


if __name__ == "__main__":
    main()
