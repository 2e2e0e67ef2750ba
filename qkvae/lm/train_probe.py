"""Training the probe: random windows of the images' LM sequences, AdamW, a CPU-time budget.

The probe's attention is a sliding window, so windows of ``2 * window`` ids teach it everything
a whole sequence would, at a fraction of the cost. The learning rate warms up, then follows a
cosine over the budget (CPU seconds of this process, or steps, whichever ends first), so two
heads trained on the same budget are compared fairly.
"""

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from qkvae.lm.probe import Probe, ProbeConfig, sequences
from qkvae.model import QKVAEConfig
from qkvae.tokens import TokenError, read_shards

WARMUP = 30  # steps


@dataclass(frozen=True)
class ProbeTraining:
    """How a probe was trained, for its card."""

    steps: int
    images: int  # training images
    batch_size: int  # windows per step
    window_ids: int  # ids per window
    learning_rate: float
    cpu_seconds: float  # CPU time of the training loop (all threads)
    wall_seconds: float
    final_loss_bits: float  # mean bits per code over the last 20 steps
    losses: tuple[float, ...]  # bits per code of every step


def shard_tokens(folder, limit: int | None = None) -> tuple[np.ndarray, QKVAEConfig]:
    """The token ids of a folder of shards, and the tokenizer config they were made with."""
    shards = read_shards(folder)
    if not len(shards.tokens):
        raise TokenError(f"{folder} holds no tokenized images")
    meta = shards.metadata
    config = QKVAEConfig.from_dict(json.loads(meta["config"])) if "config" in meta else QKVAEConfig()
    return shards.tokens[:limit], config


def learning_rate(peak: float, step: int, fraction: float) -> float:
    """Linear warm-up over ``WARMUP`` steps, then a cosine from ``peak`` to a tenth of it as
    ``fraction`` of the budget goes from 0 to 1."""
    if step < WARMUP:
        return peak * (step + 1) / WARMUP
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * min(fraction, 1.0))))


def train_probe(tokens: np.ndarray, config: ProbeConfig, cpu_seconds: float = float("inf"),
                max_steps: int | None = None, batch_size: int = 16, peak_lr: float = 3e-3, seed: int = 0,
                log=None) -> tuple[Probe, ProbeTraining]:
    """Train a fresh probe on ``tokens`` (N, 2304) until ``cpu_seconds`` of CPU time or ``max_steps``."""
    if not math.isfinite(cpu_seconds) and max_steps is None:
        raise ValueError("give the training a budget: cpu_seconds or max_steps")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    probe = Probe(config).train()
    seqs = sequences(tokens, config)
    length = min(2 * config.window, seqs.shape[1] - 1)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=peak_lr, weight_decay=0.01, betas=(0.9, 0.95))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    losses, step = [], 0
    while True:
        fraction = max((time.process_time() - cpu0) / cpu_seconds, step / max_steps if max_steps else 0.0)
        if fraction >= 1.0:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(peak_lr, step, fraction)
        rows = rng.integers(0, len(seqs), batch_size)
        starts = rng.integers(0, seqs.shape[1] - length, batch_size)
        batch = torch.stack([seqs[r, s:s + length + 1] for r, s in zip(rows, starts)])
        nats, count = probe.nll(batch)
        loss = nats / count
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item() / math.log(2))
        step += 1
        if log is not None and step % 20 == 0:
            log(step, losses[-1], time.process_time() - cpu0)
    probe.eval()
    return probe, ProbeTraining(step, len(tokens), batch_size, length + 1, peak_lr, time.process_time() - cpu0,
                                time.perf_counter() - wall0, float(np.mean(losses[-20:])), tuple(losses))


def write_training(training: ProbeTraining, folder) -> Path:
    """``training.json`` in ``folder``: the recipe and the loss of every step."""
    path = Path(folder) / "training.json"
    path.write_text(json.dumps({**asdict(training), "losses": [round(x, 4) for x in training.losses]}) + "\n")
    return path
