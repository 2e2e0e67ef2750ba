"""Train the probe LM on token shards and write its run folder.

    python -m qkvae.lm train --shards tokens/ --out runs/lm-probe [--val-shards val-tokens/]
        [--head digits|tied] [--cpu-minutes 20] [--steps N] [--samples 16] [--seed 0] [--threads 1]

RUN holds ``config.json`` + ``model.safetensors`` (float16, ``qkvae.lm.probe.load_probe`` reads
them), ``training.json`` (the recipe and every step's loss), ``probe.json`` (held-out bits per
code with ``--val-shards``) and ``samples.png`` (sampled images decoded by the shipped
tokenizer). ``python -m analysis.lm_probe RUN ...`` sets its bits next to the context prior's.
Bad input exits 2 with one line on stderr.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from qkvae.cli import run_cli
from qkvae.lm.probe import HEADS, ProbeConfig, bits_per_token, sample_images, save_probe
from qkvae.lm.train_probe import shard_tokens, train_probe, write_training


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m qkvae.lm", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a probe on token shards")
    t.add_argument("--shards", required=True, metavar="DIR", help="token shards (python -m qkvae.tokenize)")
    t.add_argument("--out", required=True, metavar="RUN", help="the run folder to write")
    t.add_argument("--val-shards", metavar="DIR", help="held-out token shards: report bits per code on them")
    t.add_argument("--head", choices=HEADS, default=ProbeConfig.head, help="output layer")
    t.add_argument("--hidden", type=int, default=ProbeConfig.hidden)
    t.add_argument("--layers", type=int, default=ProbeConfig.layers)
    t.add_argument("--window", type=int, default=ProbeConfig.window, help="attention window in ids")
    t.add_argument("--cpu-minutes", type=float, default=20.0, help="training budget in CPU minutes (all threads)")
    t.add_argument("--steps", type=int, default=None, help="stop after this many steps if sooner")
    t.add_argument("--batch-size", type=int, default=16, help="windows per step")
    t.add_argument("--samples", type=int, default=16, help="images to sample into samples.png (0: none)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small ops on a shared machine "
                   "spend more time waiting for a second thread than they save)")
    t.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    t.add_argument("--val-limit", type=int, default=None, help="score the first N held-out images only")
    args = p.parse_args(argv)
    if args.cpu_minutes <= 0 or (args.steps is not None and args.steps < 1) or args.samples < 0 or args.threads < 1:
        p.error("--cpu-minutes, --steps and --threads must be positive, --samples at least 0")
    return args


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """uint8 (n, h, w, 3) -> one uint8 image of ``columns`` per row, 2-pixel white gaps."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + 2) - 2, columns * (w + 2) - 2, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        out[r * (h + 2):r * (h + 2) + h, k * (w + 2):k * (w + 2) + w] = image
    return out


def train(args: argparse.Namespace) -> str:
    torch.set_num_threads(args.threads)
    tokens, qkvae_config = shard_tokens(args.shards, args.limit)
    config = ProbeConfig(head=args.head, hidden=args.hidden, layers=args.layers, window=args.window,
                         levels=qkvae_config.levels, image_size=qkvae_config.image_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(step, bits, cpu):
        print(f"step {step} loss {bits:.3f} bits/code cpu {cpu:.0f}s", file=sys.stderr, flush=True)

    probe, training = train_probe(tokens, config, args.cpu_minutes * 60, args.steps, args.batch_size, seed=args.seed,
                                  log=log)
    save_probe(probe, out)
    write_training(training, out)
    line = (f"trained a {config.head} probe, {sum(p.numel() for p in probe.parameters()):,} parameters, "
            f"{training.steps} steps, {training.cpu_seconds / 60:.1f} CPU-min, {training.wall_seconds / 60:.1f} min wall, "
            f"train loss {training.final_loss_bits:.2f} bits/code")
    if args.val_shards:
        val, _ = shard_tokens(args.val_shards, args.val_limit)
        start = time.perf_counter()
        bits = bits_per_token(probe, val)
        (out / "probe.json").write_text(json.dumps({"val_bits_per_code": bits, "val_images": len(val),
                                                    "eval_seconds": time.perf_counter() - start}) + "\n")
        line += f", held-out {bits:.3f} bits/code on {len(val):,} images"
    if args.samples:
        Image.fromarray(tile(sample_images(probe, args.samples, args.seed), columns=min(args.samples, 8))).save(
            out / "samples.png")
    return line + f" -> {out}"


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: print(train(args)))


if __name__ == "__main__":
    sys.exit(main())
