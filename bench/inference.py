"""Inference throughput of a QKVAE against this machine's dense matmul rate at each precision.

    python -m bench.inference [--weights W] [--device cpu] [--threads N] [--cpu-time] [--repeats 5] [--json out.json]

Times encode, decode and both, at batch 1 and 64, in fp32 and under bf16 autocast, and reports
images/s, the achieved GFLOP/s and that rate as a fraction of a 2048x2048 matmul *of the same
precision* (fp32 against an fp32 matmul, bf16 against a bf16 one), all measured in the same run.
Every round times each case once, in turn, so that a busy shared machine slows all of them
alike; the times are medians over ``--repeats`` rounds after a warm-up round. FLOPs are counted
from the convolutions (2 x MACs); norms and activations are left out, so the fractions are a
slight underestimate (``qkvae.flops``). ``--weights`` times any checkpoint (a folder, file or
``hf://`` reference, so any config); without it, a random-init QKVAE-1m (speed does not depend
on the weights' values).
"""

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch

from bench import cli
from qkvae import QKVAE
from qkvae.flops import flops_per_image
from qkvae.model import MEMORY_FORMAT
from qkvae.train import native_bf16
from qkvae.weights import WeightsError, default_device, load_qkvae

BATCHES = (1, 64)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
OPS = ("encode", "decode", "both")
MATMUL_SIZE = 2048


@dataclass(frozen=True)
class Row:
    precision: str
    batch: int
    op: str
    seconds: float
    images_per_s: float
    gflops: float
    fraction_of_matmul: float  # of the matmul rate at the same precision


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(cases: dict, device: torch.device, repeats: int, clock=time.perf_counter) -> dict:
    """Median seconds of each ``cases[key]()``, timing every case once per round, in turn."""
    times = {key: [] for key in cases}
    for round_ in range(repeats + 1):  # round 0 warms up
        for key, fn in cases.items():
            sync(device)
            t = clock()
            fn()
            sync(device)
            if round_:
                times[key].append(clock() - t)
        print(f"round {round_} of {repeats} done", flush=True)
    return {key: statistics.median(ts) for key, ts in times.items()}


def under_precision(fn, device: torch.device, dtype: torch.dtype):
    def run():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            return fn()
    return run


def encode_images_per_s(models: dict, repeats: int, batch: int = 64, clock=time.perf_counter) -> dict:
    """fp32 encode images/s of each model in ``models`` (name -> QKVAE), at ``batch``, timed in
    interleaved rounds (medians), so that a busy machine slows all of them alike."""
    cases = {}
    for name, model in models.items():
        x = random_images(model, batch)
        cases[name] = lambda model=model, x=x: model.encode(x)
    device = next(iter(models.values())).device
    return {name: batch / s for name, s in interleaved_medians(cases, device, repeats, clock).items()}


def row_markdown(r: Row) -> str:
    return (f"| {r.precision} | {r.batch} | {r.op} | {r.seconds:.4f} | {r.images_per_s:.1f} | "
            f"{r.gflops:.1f} | {100 * r.fraction_of_matmul:.0f}% |")


def bench_model(weights: str | None, device: torch.device) -> QKVAE:
    """The checkpoint at ``weights``, or a random-init QKVAE-1m laid out as ``load_qkvae`` lays it out."""
    if weights is not None:
        return load_qkvae(weights, device)
    return QKVAE().to(device, memory_format=MEMORY_FORMAT).eval()


def random_images(model: QKVAE, batch: int) -> torch.Tensor:
    s = model.config.image_size
    return torch.rand(batch, model.config.in_channels, s, s, device=model.device) * 2 - 1


def run(device: torch.device, repeats: int, clock=time.perf_counter, weights: str | None = None) -> dict:
    model = bench_model(weights, device)
    counted = flops_per_image(model)
    flops = {"encode": counted.encode, "decode": counted.decode, "both": counted.both}
    cases = {}
    for precision, dtype in PRECISIONS.items():
        a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, dtype=dtype) for _ in range(2))
        cases[precision, "matmul"] = lambda a=a, b=b: a @ b
        for batch in BATCHES:
            x = random_images(model, batch)
            ids = model.encode(x)
            ops = {"encode": lambda x=x: model.encode(x), "decode": lambda ids=ids: model.decode(ids),
                   "both": lambda x=x: model.decode(model.encode(x))}
            for op in OPS:
                cases[precision, batch, op] = under_precision(ops[op], device, dtype)
    seconds = interleaved_medians(cases, device, repeats, clock)
    matmul = {p: 2 * MATMUL_SIZE**3 / seconds[p, "matmul"] for p in PRECISIONS}
    rows = []
    for precision in PRECISIONS:
        for batch in BATCHES:
            for op in OPS:
                s = seconds[precision, batch, op]
                rate = flops[op] * batch / s
                rows.append(Row(precision, batch, op, s, batch / s, rate / 1e9, rate / matmul[precision]))
    return {"weights": weights or "random-init QKVAE-1m", "config": model.config.to_dict(),
            "device": str(device), "threads": torch.get_num_threads(), "native_bf16": native_bf16(device),
            "clock": "cpu time" if clock is time.process_time else "wall", "repeats": repeats,
            "matmul_gflops": {p: r / 1e9 for p, r in matmul.items()},
            "gflops_per_image": {k: v / 1e9 for k, v in flops.items()}, "rows": [asdict(r) for r in rows]}


def markdown(result: dict) -> str:
    rows = [Row(**r) for r in result["rows"]]
    mm = result["matmul_gflops"]
    lines = [f"weights={result['weights']} device={result['device']} threads={result['threads']} native bf16={result['native_bf16']} "
             f"clock={result['clock']}, median of {result['repeats']} interleaved rounds",
             f"{MATMUL_SIZE}x{MATMUL_SIZE} matmul: " + ", ".join(f"{p} {r:.1f} GFLOP/s" for p, r in mm.items())
             + f" (bf16/fp32 {mm['bf16'] / mm['fp32']:.2f}x); GFLOP per image: "
             + ", ".join(f"{k} {v:.2f}" for k, v in result["gflops_per_image"].items()),
             "", "| precision | batch | op | median s | images/s | GFLOP/s | of same-precision matmul |",
             "|---|---|---|---|---|---|---|"]
    lines += [row_markdown(r) for r in rows]
    fp32 = {(r.batch, r.op): r.seconds for r in rows if r.precision == "fp32"}
    bf16 = {(r.batch, r.op): r.seconds for r in rows if r.precision == "bf16"}
    lines += ["", "bf16 speed-up over fp32: " + ", ".join(
        f"batch {b} {op} {fp32[b, op] / bf16[b, op]:.2f}x" for (b, op) in fp32)]
    return "\n".join(lines)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """``--threads``, ``--cpu-time`` and ``--repeats``, shared by the throughput benchmarks."""
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's); on a shared host, 1 thread is the least noisy")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time, not the wall clock (use with --threads 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds, after one warm-up round")


def apply_run_options(args: argparse.Namespace):
    """Set the thread count; returns the clock to time with."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return time.process_time if args.cpu_time else time.perf_counter


def setup_args(argv=None) -> argparse.Namespace:
    p = cli.parser("bench.inference", __doc__)
    p.add_argument("--device", default=None, help="default: cuda when available, and cpu")
    p.add_argument("--weights", default=None, help="a checkpoint: folder, .safetensors file or hf://OWNER/NAME "
                                                   "(default: a random-init QKVAE-1m)")
    add_run_options(p)
    return p.parse_args(argv)


def run_devices(args: argparse.Namespace) -> list[dict]:
    """``run`` on ``--device``, or on the CPU and the default device; a bad checkpoint exits 2."""
    clock = apply_run_options(args)
    devices = [torch.device(args.device)] if args.device else sorted({torch.device("cpu"), default_device()}, key=str)
    try:
        return [run(d, args.repeats, clock, args.weights) for d in devices]
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> None:
    cli.main(setup_args, run_devices, lambda results: "\n\n".join(markdown(r) for r in results), argv)


if __name__ == "__main__":
    main()
