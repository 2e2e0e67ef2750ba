"""Dataset tokenization throughput and memory: the local and Ray engines end to end, against the
encode-only rate at the same batch and precision, and peak RSS as the dataset grows 10x.

    python -m bench.tokenize [--data ../shared/data/train] [--images 256] [--batch-size 64]
        [--precision fp32] [--workers N] [--repeats 3] [--json out.json]

The images are the first ``--images`` files of ``--data`` (JPEG photos by default: decoding and
fitting cost something), read through a .txt list source. Every measurement runs in a fresh
process, so none inherits another's threads. Each repeat runs, in turn, the local engine, the
Ray engine (same ``--workers``; it starts and stops its own local Ray, as a user's run does),
each on N/2 and N images, then encode-only (``bench.inference.interleaved_medians`` over
``model.encode`` of one batch, by wall clock and by CPU time). The whole-run rate is what a user sees, start-up included; the
steady rate, from the N/2 -> N difference, is the rate once everything has started. Times are
medians. Peak RSS (``VmHWM``) is read from one run over 10N images, once its first N are written
and at its end.
"""

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import cli
from bench.inference import interleaved_medians, under_precision
from qkvae.sources import open_source
from qkvae.tokenize import DEFAULT_WORKERS
from qkvae.weights import load_qkvae

def image_list(data: str, count: int, folder: Path) -> Path:
    """A .txt source listing the first ``count`` images of ``data``."""
    source = open_source(data)
    if len(source) < count:
        raise SystemExit(f"{data} has {len(source)} images, fewer than {count}")
    paths = [str(Path(data).resolve() / name) for name in source.names[:count]]
    listing = folder / f"images-{count}.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def engine_seconds(engine: str, listing: Path, folder: Path, args) -> tuple[float, float]:
    """One run of ``python -m qkvae.tokenize`` in a fresh process: the seconds its summary line
    reports (opening the source and loading the model included, starting Python not), and the
    CPU seconds of the process and its decoding processes (not of Ray's workers)."""
    cmd = [sys.executable, "-m", "qkvae.tokenize", str(listing), "--out", str(folder / f"out-{time.monotonic_ns()}"),
           "--engine", engine, "--batch-size", str(args.batch_size), "--precision", args.precision,
           "--workers", str(args.workers), "--device", "cpu"]
    cpu = children_cpu_seconds()
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return float(re.search(r", ([0-9.]+) s, ", line).group(1)), children_cpu_seconds() - cpu


def ray_startup_seconds() -> float:
    """A local Ray's start and stop, as the engine does them, with nothing run (fresh process)."""
    code = ("import time, ray; from qkvae.tokenize_ray import start_ray; t = time.perf_counter(); "
            "start_ray(None); ray.shutdown(); print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def encode_only_seconds(batch: int, precision: str, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds (this process, all threads) of one ``model.encode`` of
    ``batch`` images, timed by ``bench.inference``."""
    model = load_qkvae(device="cpu")
    x = torch.rand(batch, 3, 96, 96) * 2 - 1
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    cases = {"encode": under_precision(lambda: model.encode(x), model.device, dtype)}
    wall = interleaved_medians(cases, model.device, repeats)["encode"]
    cpu = interleaved_medians(cases, model.device, repeats, clock=time.process_time)["encode"]
    return wall, cpu


def encode_only_in_process(batch: int, precision: str, repeats: int) -> tuple[float, float]:
    """``encode_only_seconds`` in a fresh process, like the engines' runs."""
    code = f"from bench.tokenize import encode_only_seconds as f; print(*f({batch}, {precision!r}, {repeats}))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def vm_hwm_mib(pid: int) -> float | None:
    """A live process's peak RSS so far (Linux ``VmHWM``), in MiB; None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), None)


def peak_rss_mib(listing: Path, folder: Path, args) -> tuple[float, float]:
    """One local run over 10N images with shards of N: the tokenizing process's peak RSS once its
    first shard (N images) is written, and at the end (10N), in MiB."""
    out = folder / f"rss-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "qkvae.tokenize", str(listing), "--out", str(out), "--batch-size", str(args.batch_size),
           "--precision", args.precision, "--workers", str(args.workers), "--device", "cpu",
           "--shard-size", str(args.rss_images)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = last = None
    while proc.poll() is None:
        if (hwm := vm_hwm_mib(proc.pid)) is None:
            break  # exited (a zombie has no VmHWM)
        last = hwm
        if first is None and (out / "shard-00000.parquet").exists():
            first = last
        time.sleep(0.05)
    if proc.wait() != 0 or first is None:
        raise RuntimeError(f"the peak-RSS run failed: {' '.join(cmd)}")
    return first, last


def run(args) -> dict:
    """Interleaved repeats of: each engine on N/2 and N images, Ray's bare start/stop, encode-only."""
    half = args.images // 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lists = {n: image_list(args.data, n, folder) for n in (half, args.images)}
        times = {k: [] for k in ("local_half", "local", "ray_half", "ray", "ray_startup", "encode")}
        cpu = {k: [] for k in ("local_half", "local", "encode")}
        for r in range(args.repeats):
            for engine in ("local", "ray"):
                for key, n in ((f"{engine}_half", half), (engine, args.images)):
                    wall, cpu_s = engine_seconds(engine, lists[n], folder, args)
                    times[key].append(wall)
                    if key in cpu:
                        cpu[key].append(cpu_s)
            times["ray_startup"].append(ray_startup_seconds())
            wall, cpu_s = encode_only_in_process(args.batch_size, args.precision, 3)
            times["encode"].append(wall)
            cpu["encode"].append(cpu_s)
            print(f"repeat {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                  + " | CPU " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in cpu.items()), flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        rates = {"encode": args.batch_size / med["encode"]}
        for engine in ("local", "ray"):
            rates[engine] = args.images / med[engine]
            rates[f"{engine}_steady"] = (args.images - half) / (med[engine] - med[f"{engine}_half"])
        cpu_per_image = {"encode": med_cpu["encode"] / args.batch_size,
                         "local_steady": (med_cpu["local"] - med_cpu["local_half"]) / (args.images - half)}
        small, large = peak_rss_mib(image_list(args.data, 10 * args.rss_images, folder), folder, args)
        rss = {"images": args.rss_images, "small_mib": small, "large_mib": large}
        shard_bytes = sum(p.stat().st_size for p in folder.glob("rss-*/shard-*.parquet"))
    return {"args": vars(args), "threads": torch.get_num_threads(), "seconds": times, "cpu_seconds": cpu,
            "median_seconds": med, "images_per_s": rates, "cpu_seconds_per_image": cpu_per_image, "rss": rss,
            "bytes_per_image": shard_bytes / (10 * args.rss_images)}


def markdown(r: dict) -> str:
    a, rate, med, cpi = r["args"], r["images_per_s"], r["median_seconds"], r["cpu_seconds_per_image"]
    n, half = a["images"], a["images"] // 2
    lines = [f"{n} images from `{a['data']}`, batch {a['batch_size']}, {a['precision']}, "
             f"--workers {a['workers']} (Ray: {max(1, a['workers'])} worker(s)), {r['threads']} torch threads, "
             f"medians of {a['repeats']} interleaved repeats",
             "", "| what | median s | images/s | ratio |", "|---|---|---|---|",
             f"| encode-only, one batch of {a['batch_size']} | {med['encode']:.3f} | {rate['encode']:.1f} | 100 % |",
             f"| local engine, whole run of {n} | {med['local']:.2f} | {rate['local']:.1f} | "
             f"{100 * rate['local'] / rate['encode']:.0f} % of encode-only |",
             f"| local engine, steady ({half} -> {n} images) | {med['local'] - med['local_half']:.2f} | "
             f"{rate['local_steady']:.1f} | {100 * rate['local_steady'] / rate['encode']:.0f} % of encode-only |",
             f"| Ray engine, whole run of {n} | {med['ray']:.2f} | {rate['ray']:.1f} | "
             f"{100 * rate['ray'] / rate['local']:.0f} % of local |",
             f"| Ray engine, steady ({half} -> {n} images) | {med['ray'] - med['ray_half']:.2f} | "
             f"{rate['ray_steady']:.1f} | {100 * rate['ray_steady'] / rate['local_steady']:.0f} % of local steady |",
             f"| (a bare local Ray start + stop) | {med['ray_startup']:.2f} | | |",
             "", f"CPU seconds per image (less sensitive to other load than wall time): encode-only "
             f"{cpi['encode']:.3f}, local engine steady {cpi['local_steady']:.3f} "
             f"(encode-only is {100 * cpi['encode'] / cpi['local_steady']:.0f} % of it).",
             "", f"Peak RSS of the tokenizing process (local engine, one run): after {r['rss']['images']} images "
             f"{r['rss']['small_mib']:.0f} MiB, after {10 * r['rss']['images']} {r['rss']['large_mib']:.0f} MiB "
             f"({r['rss']['large_mib'] / r['rss']['small_mib']:.2f}x). Shards: {r['bytes_per_image']:.0f} bytes/image."]
    return "\n".join(lines)


def setup_args(argv=None) -> argparse.Namespace:
    p = cli.parser("bench.tokenize", __doc__)
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="as qkvae.tokenize's (Ray: at least 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rss-images", type=int, default=128, help="N for the peak-RSS run (N and 10N images)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    cli.main(setup_args, run, markdown, argv)


if __name__ == "__main__":
    main()
