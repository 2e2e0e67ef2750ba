"""Encode throughput by chunk size, against the same-precision matmul and an earlier commit.

    python -m bench.encode [--batch 64] [--chunks 4,8,16,64] [--before REF] [--threads N]
                           [--cpu-time] [--repeats 5] [--json out.json]

Times ``QKVAE.encode`` on one batch with ``qkvae.model.ENCODE_CHUNK`` set to each of
``--chunks`` (the batch size itself means no chunking), in fp32 and under bf16 autocast, and a
2048x2048 matmul at each precision, all interleaved round by round (see ``bench.inference``).
With ``--before REF`` it also times the encode of ``qkvae/model.py`` as it was at git commit
REF, on the same weights, and checks that its ids equal today's. ``--cpu-time`` measures the
process's CPU time instead of the wall clock: with ``--threads 1`` it is the least noisy
measure on a host that other jobs share. Use it to choose ``ENCODE_CHUNK`` on a new machine.
"""

import argparse
import subprocess
import sys
import time
import types
from dataclasses import asdict, dataclass

import torch

import qkvae.model
from qkvae.flops import flops_per_image
from qkvae.model import MEMORY_FORMAT, QKVAE
from qkvae.train import native_bf16

from bench import cli
from bench.inference import (MATMUL_SIZE, PRECISIONS, add_run_options, apply_run_options, interleaved_medians,
                             under_precision)


@dataclass(frozen=True)
class Row:
    precision: str
    encode: str  # "chunk N", or "before REF"
    seconds: float
    images_per_s: float
    gflops: float
    fraction_of_matmul: float  # of the matmul rate at the same precision
    speedup_over_first: float  # against the first row of the same precision


def model_at(ref: str, state_dict: dict) -> QKVAE:
    """QKVAE as ``qkvae/model.py`` defined it at git commit ``ref``, holding ``state_dict``."""
    shown = subprocess.run(["git", "show", f"{ref}:qkvae/model.py"], capture_output=True, text=True)
    if shown.returncode:
        print(f"bench.encode: --before {ref}: {shown.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        raise SystemExit(2)
    source = shown.stdout
    module = types.ModuleType(f"qkvae_model_at_{ref}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:qkvae/model.py", "exec"), module.__dict__)
    model = module.QKVAE()
    model.load_state_dict(state_dict)
    return model.to(memory_format=MEMORY_FORMAT).eval()


def chunked_encode(model: QKVAE, x: torch.Tensor, chunk: int):
    def encode():
        qkvae.model.ENCODE_CHUNK = chunk
        return model.encode(x)
    return encode


def run(batch: int, chunks: list[int], before: str | None, repeats: int, clock=time.perf_counter) -> dict:
    torch.manual_seed(0)
    model = QKVAE().to(memory_format=MEMORY_FORMAT).eval()
    x = torch.rand(batch, 3, 96, 96) * 2 - 1
    flops = flops_per_image(model).encode * batch
    encoders = {}
    if before:
        old = model_at(before, model.state_dict())
        encoders[f"before {before}"] = lambda: old.encode(x)
    encoders |= {f"chunk {c}": chunked_encode(model, x, c) for c in chunks}
    default_chunk = qkvae.model.ENCODE_CHUNK
    cases = {}
    for precision, dtype in PRECISIONS.items():
        a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, dtype=dtype) for _ in range(2))
        cases[precision, "matmul"] = lambda a=a, b=b: a @ b
        for name, encode in encoders.items():
            cases[precision, name] = under_precision(encode, torch.device("cpu"), dtype)
    same_ids = None
    if before:
        today = chunked_encode(model, x, default_chunk)
        same_ids = {p: torch.equal(cases[p, f"before {before}"](), under_precision(today, torch.device("cpu"), dt)())
                    for p, dt in PRECISIONS.items()}
    seconds = interleaved_medians(cases, torch.device("cpu"), repeats, clock)
    qkvae.model.ENCODE_CHUNK = default_chunk
    rows = []
    for precision in PRECISIONS:
        matmul = 2 * MATMUL_SIZE**3 / seconds[precision, "matmul"]
        first = seconds[precision, next(iter(encoders))]
        for name in encoders:
            s = seconds[precision, name]
            rows.append(Row(precision, name, s, batch / s, flops / s / 1e9, flops / s / matmul, first / s))
    return {"threads": torch.get_num_threads(), "native_bf16": native_bf16(torch.device("cpu")),
            "clock": "cpu time" if clock is time.process_time else "wall", "batch": batch, "repeats": repeats,
            "default_chunk": default_chunk, "ids_equal_before": same_ids,
            "matmul_gflops": {p: 2 * MATMUL_SIZE**3 / seconds[p, "matmul"] / 1e9 for p in PRECISIONS},
            "rows": [asdict(r) for r in rows]}


def markdown(result: dict) -> str:
    mm = result["matmul_gflops"]
    lines = [f"cpu threads={result['threads']} native bf16={result['native_bf16']} clock={result['clock']} "
             f"batch={result['batch']}, median of {result['repeats']} interleaved rounds; "
             f"{MATMUL_SIZE}x{MATMUL_SIZE} matmul: " + ", ".join(f"{p} {r:.1f} GFLOP/s" for p, r in mm.items()),
             "", "| precision | encode | median s | images/s | GFLOP/s | of same-precision matmul | speed-up |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['precision']} | {r['encode']} | {r['seconds']:.3f} | {r['images_per_s']:.1f} | "
              f"{r['gflops']:.1f} | {100 * r['fraction_of_matmul']:.0f}% | {r['speedup_over_first']:.2f}x |"
              for r in result["rows"]]
    if result["ids_equal_before"] is not None:
        lines += ["", f"ids equal to the earlier commit's at chunk {result['default_chunk']}: "
                  + ", ".join(f"{p} {same}" for p, same in result["ids_equal_before"].items())]
    return "\n".join(lines)


def setup_args(argv=None) -> argparse.Namespace:
    p = cli.parser("bench.encode", __doc__)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--chunks", default="4,8,16,64", help="comma-separated values of ENCODE_CHUNK to time")
    p.add_argument("--before", metavar="REF", help="also time qkvae/model.py as of this git commit")
    add_run_options(p)
    return p.parse_args(argv)


def main(argv=None) -> None:
    cli.main(setup_args, lambda args: run(args.batch, [int(c) for c in args.chunks.split(",")], args.before,
                                          args.repeats, apply_run_options(args)), markdown, argv)


if __name__ == "__main__":
    main()
