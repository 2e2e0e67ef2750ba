"""Train QKVAE-1m with the card's recipe, checkpointing so that a run can be killed and resumed.

    python -m qkvae.train --data ../shared/data/train --out runs/qkvae-1m [--resume]
    python -m qkvae.train --config small.json --data ../shared/data/train --out runs/qkvae-0.1m
    python -m qkvae.train --init assets --data MY_IMAGES --steps 500 --lr 3e-5 --out runs/tuned

The second trains another size (a ``config.json`` of ``QKVAEConfig`` fields; what it omits
keeps the card's values). The third fine-tunes existing weights (the shipped ones, or any
``load_qkvae`` takes) on other images with the same schedule shape; ``--ssim-weight W`` adds ``W * (1 - SSIM)`` to
the loss, which the card's recipe does not have.

Recipe: 6,000 steps at batch 32; AdamW betas (0.9, 0.95), weight decay 1e-4; OneCycleLR with
peak 3e-4, 5% warmup and cosine decay (momentum not cycled, so beta1 stays 0.9); loss
L1 + 0.25 MSE + 0.5 Sobel-L1; gradients clipped to norm 1.0; bf16 autocast where the device
has bf16 units (CUDA, or a CPU with AVX512-BF16 or AMX, where a step is 1.7x faster than fp32).
A CPU without them (AVX2 only) emulates bf16 about 9x slower than fp32, so there the default
is fp32. A checkpoint holds the model, optimizer, scheduler, step and every RNG state, so a
resumed run follows the same loss curve as an uninterrupted one. The precision may differ
between the parts of a resumed run (each log record names its own); the rest of the recipe may not.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qkvae.atomic import atomic_path, atomic_write
from qkvae.cli import common_options, run_cli
from qkvae.data import RandomCropSampler, load_images, source_weights
from qkvae.image import to_tensor
from qkvae.loss import reconstruction_loss
from qkvae.model import MEMORY_FORMAT, QKVAE, QKVAEConfig
from qkvae.pipeline import reconstruct_set
from qkvae.weights import default_device, load_qkvae, save_qkvae

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"
LOG_EVERY = 50


class RecipeError(ValueError):
    """A run that cannot go on as asked: a bad --config, or a checkpoint of another recipe."""


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m qkvae.train", description=__doc__.split("\n")[0],
                                parents=[common_options(split=False, weights=False,
                                                        data_help="training images: folder, .txt list, STL-10 "
                                                                  "train_X.bin, Parquet")])
    p.add_argument("--eval", nargs="*", default=[],
                   help="image sources to report PSNR/SSIM on at the end (the card's: ../shared/data/stl10-samples "
                        "../shared/data/val)")
    p.add_argument("--out", default="runs/qkvae-1m", help="folder for checkpoint, log and weights")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--lr", type=float, default=3e-4, help="OneCycle peak learning rate")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--precision", choices=["bf16", "fp32"], default=None,
                   help="autocast dtype (default: bf16 where the device has bf16 units, else fp32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default=None,
                   help="a config.json of QKVAEConfig fields (channels, num_res_blocks, levels, ...); "
                        "fields it omits keep the card's values (default: QKVAE-1m)")
    p.add_argument("--init", default=None, help="start from these weights (file, folder or hf://OWNER/NAME[@revision]) instead of a random init")
    p.add_argument("--ssim-weight", type=float, default=0.0, help="add W * (1 - SSIM) to the loss (card: 0)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    return p.parse_args(argv)


def build_optimizer(model: QKVAE, steps: int, lr: float):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=steps, pct_start=0.05, anneal_strategy="cos", cycle_momentum=False
    )
    return opt, sched


def train_step(model, x, opt, sched, dtype, ssim_weight: float = 0.0) -> dict[str, float]:
    """One optimizer step on batch ``x``; returns the loss terms and the pre-clip gradient norm."""
    with torch.autocast(device_type=x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        x_hat = model(x)
    terms = reconstruction_loss(x_hat, x, ssim_weight)
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return {k: v.item() for k, v in terms.items()} | {"grad_norm": grad_norm.item()}


def recipe(args) -> dict:
    """What a resumed run must share with the run that wrote the checkpoint."""
    return {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
            "init": args.init, "ssim_weight": args.ssim_weight, "config": train_config(args).to_dict()}


def train_config(args) -> QKVAEConfig:
    """The config of a fresh model: ``--config``'s file over the card's defaults."""
    if args.config is None:
        return QKVAEConfig()
    try:
        return QKVAEConfig.from_dict({**QKVAEConfig().to_dict(), **json.loads(Path(args.config).read_text())})
    except (OSError, ValueError, TypeError) as e:
        raise RecipeError(f"--config {args.config}: {e}") from None


def initial_model(init, config: QKVAEConfig, device: torch.device) -> QKVAE:
    """A random-init model of ``config``, or the weights at ``init``."""
    if init is None:
        return QKVAE(config).to(device, memory_format=MEMORY_FORMAT)
    return load_qkvae(init, device)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware rather than emulating it."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def save_checkpoint(path: Path, step: int, model, opt, sched, sampler, args) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "sampler": sampler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "config": model.config.to_dict(),
        "recipe": recipe(args),
    }
    with atomic_path(path) as staging:
        torch.save(state, staging)


def load_checkpoint(path: Path, model, opt, sched, sampler, args) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["recipe"] != recipe(args):
        raise RecipeError(f"{path} was written by a run with {state['recipe']}, not {recipe(args)}")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    sampler.load_state_dict(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"]


def truncate_log(path: Path, step: int) -> None:
    """Drop log records at or after ``step``: they will be written again by the resumed run."""
    if path.exists():
        keep = [line for line in path.read_text().splitlines() if json.loads(line)["step"] < step]
        atomic_write(path, "".join(line + "\n" for line in keep))


def eval_record(model: QKVAE, source) -> dict:
    """Mean PSNR/SSIM (``qkvae.metrics``) of ``source``'s images resized to 96x96, for eval.json."""
    model.eval()
    result = reconstruct_set(model, source)
    model.train()
    return {"source": str(source), "images": len(result.names), "skipped": len(result.skipped),
            "psnr": float(result.psnr.mean()), "ssim": float(result.ssim.mean())}


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: train(args), RecipeError)


def train(args) -> None:
    if args.init is not None and args.config is not None:
        raise RecipeError("--config sets up a fresh model; the weights of --init bring their own config")
    device = torch.device(args.device) if args.device else default_device()
    args.precision = args.precision or ("bf16" if native_bf16(device) else "fp32")
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    names, images = load_images(args.data)
    model = initial_model(args.init, train_config(args), device)
    sampler = RandomCropSampler(images, size=model.config.image_size, weights=source_weights(names), seed=args.seed)
    opt, sched = build_optimizer(model, args.steps, args.lr)

    ckpt, log_path = out / CHECKPOINT_NAME, out / LOG_NAME
    start = 0
    if args.resume and ckpt.exists():
        start = load_checkpoint(ckpt, model, opt, sched, sampler, args)
        truncate_log(log_path, start)
    print(f"{len(images)} training images from {args.data}; device={device} precision={args.precision}; "
          f"steps {start}..{args.steps}", flush=True)

    model.train()
    window = []
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, dynamic_ncols=True)
    for step in bar:
        t0 = time.perf_counter()
        x = to_tensor(sampler.sample(args.batch_size)).to(device, memory_format=MEMORY_FORMAT)
        t1 = time.perf_counter()
        terms = train_step(model, x, opt, sched, dtype, args.ssim_weight)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        window.append(terms | {"data_s": t1 - t0, "step_s": t2 - t0})
        if step % LOG_EVERY == 0 or step == args.steps - 1:
            record = {"step": step, "lr": sched.get_last_lr()[0], "precision": args.precision, **terms,
                      **{f"mean_{k}": float(np.mean([w[k] for w in window])) for k in window[0]}}
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{record['mean_loss']:.4f}", step_s=f"{record['mean_step_s']:.2f}")
            window = []
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            save_checkpoint(ckpt, step + 1, model, opt, sched, sampler, args)
    bar.close()

    save_qkvae(model, out)
    report = [eval_record(model, source) for source in args.eval]
    atomic_write(out / "eval.json", json.dumps(report, indent=2) + "\n")
    for r in report:
        print(f"{r['source']}: {r['images']} images, PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
