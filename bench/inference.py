"""Inference throughput of QKVAE-1m against this machine's dense matmul rate.

    python -m bench.inference [--device cpu] [--repeats 5] [--json out.json]

Times encode, decode and both, at batch 1 and 64, in fp32 and under bf16 autocast, and
reports images/s and the achieved FLOP rate as a fraction of a 2048x2048 fp32 matmul measured
in the same run. FLOPs are counted from the convolutions (2 x MACs); norms and activations are
left out, so the fraction is a slight underestimate. Times are medians of ``--repeats`` runs.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn

from qkvae import QKVAE
from qkvae.model import MEMORY_FORMAT
from qkvae.weights import default_device

BATCHES = (1, 64)
PRECISIONS = ("fp32", "bf16")


def conv_flops(module: nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-accumulates of every Conv2d in ``module`` for input ``x``."""
    total = 0

    def hook(conv, _, out):
        nonlocal total
        k = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        total += 2 * out.numel() * k

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return total


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_flops_per_s(device, repeats: int) -> float:
    a, b = (torch.randn(2048, 2048, device=device) for _ in range(2))
    return 2 * 2048**3 / median_seconds(lambda: a @ b, device, max(repeats, 5))


def row_markdown(r: dict) -> str:
    return (f"| {r['precision']} | {r['batch']} | {r['op']} | {r['seconds']:.4f} | "
            f"{r['images_per_s']:.1f} | {100 * r['fraction_of_matmul']:.0f}% |")


def run(device: torch.device, repeats: int) -> dict:
    model = QKVAE().to(device, memory_format=MEMORY_FORMAT).eval()  # as load_qkvae() does
    x1 = torch.zeros(1, 3, 96, 96, device=device)
    flops = {"encode": conv_flops(model.encoder, x1),
             "decode": conv_flops(model.decoder, model.quantize(x1))}
    flops["both"] = flops["encode"] + flops["decode"]
    peak = matmul_flops_per_s(device, repeats)
    print(f"device={device} threads={torch.get_num_threads()} matmul={peak / 1e9:.1f} GFLOP/s", flush=True)
    rows = []
    for precision in PRECISIONS:
        for batch in BATCHES:
            x = torch.rand(batch, 3, 96, 96, device=device) * 2 - 1
            ids = model.encode(x)
            ops = {"encode": lambda: model.encode(x), "decode": lambda: model.decode(ids),
                   "both": lambda: model.decode(model.encode(x))}
            for op, fn in ops.items():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    t = median_seconds(fn, device, repeats)
                rows.append({"precision": precision, "batch": batch, "op": op, "seconds": t,
                             "images_per_s": batch / t, "fraction_of_matmul": flops[op] * batch / t / peak})
                print(row_markdown(rows[-1]), flush=True)
    return {"device": str(device), "threads": torch.get_num_threads(), "matmul_gflops": peak / 1e9,
            "gflops_per_image": {k: v / 1e9 for k, v in flops.items()}, "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"device={result['device']} threads={result['threads']} "
             f"matmul={result['matmul_gflops']:.1f} GFLOP/s, GFLOP per image: "
             + ", ".join(f"{k} {v:.2f}" for k, v in result["gflops_per_image"].items()),
             "", "| precision | batch | op | median s | images/s | of matmul rate |", "|---|---|---|---|---|---|"]
    lines += [row_markdown(r) for r in result["rows"]]
    fp32 = {(r["batch"], r["op"]): r["seconds"] for r in result["rows"] if r["precision"] == "fp32"}
    bf16 = {(r["batch"], r["op"]): r["seconds"] for r in result["rows"] if r["precision"] == "bf16"}
    lines += ["", "bf16 speed-up over fp32: " + ", ".join(
        f"batch {b} {op} {fp32[b, op] / bf16[b, op]:.2f}x" for (b, op) in fp32)]
    return "\n".join(lines)


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n")[0])
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the raw results here")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = setup_args(argv)
    devices = [torch.device(args.device)] if args.device else sorted({torch.device("cpu"), default_device()}, key=str)
    results = [run(d, args.repeats) for d in devices]
    for r in results:
        print(markdown(r), end="\n\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
