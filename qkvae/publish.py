"""Publish a training run into ``assets/``: weights, config, training log and loss curve.

    python -m qkvae.publish train_state/qkvae-1m [--out assets]

Works on a finished run and on one still in progress (it then takes the model from the latest
checkpoint), so the app can ship interim weights while a long CPU run goes on.
"""

import argparse
import itertools
import json
from pathlib import Path

import torch
from matplotlib.figure import Figure

from qkvae.model import QKVAE, QKVAEConfig
from qkvae.train import CHECKPOINT_NAME, LOG_NAME
from qkvae.weights import ASSETS, save_qkvae

CARD_LOSS = {0: 0.3989, 1000: 0.2211, 2000: 0.1610, 3000: 0.1248, 4000: 0.1124, 5000: 0.1033, 6000: 0.0987}


def loss_curve(records: list[dict], done: int, total: int) -> Figure:
    """Our logged loss (per step and 50-step mean) against the card's published points, with
    a dotted line where a resumed part of the run changed precision."""
    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    steps = [r["step"] for r in records]
    ax.plot(steps, [r["loss"] for r in records], lw=0.8, alpha=0.5, label="ours, one batch")
    ax.plot(steps, [r["mean_loss"] for r in records], lw=1.6, label="ours, mean since last log")
    ax.plot(list(CARD_LOSS), list(CARD_LOSS.values()), "ko--", ms=4, lw=0.8, label="published card")
    for before, after in itertools.pairwise(records):
        if before["precision"] != after["precision"]:  # a resumed part of the run on other hardware
            ax.axvline(after["step"], color="0.5", lw=0.8, ls=":")
            ax.annotate(f" {before['precision']} → {after['precision']}", (after["step"], 0.98),
                        xycoords=("data", "axes fraction"), va="top", fontsize=8, color="0.3")
    ax.set(xlabel="step", ylabel="loss (L1 + 0.25 MSE + 0.5 Sobel-L1)", yscale="log",
           xlim=(0, total), title=f"QKVAE-1m training, {done} of {total} steps")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return fig


def publish(run: Path, out: Path) -> str:
    ckpt = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=False)
    model = QKVAE(QKVAEConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    save_qkvae(model, out)
    records = [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]
    records = [r for r in records if r["step"] < ckpt["step"]]
    (out / LOG_NAME).write_text("".join(json.dumps(r) + "\n" for r in records))
    loss_curve(records, ckpt["step"], ckpt["recipe"]["steps"]).savefig(out / "loss_curve.png")
    return f"published step {ckpt['step']} of {ckpt['recipe']['steps']} from {run} to {out}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m qkvae.publish", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a training output folder holding checkpoint.pt and the log")
    p.add_argument("--out", type=Path, default=ASSETS)
    args = p.parse_args(argv)
    print(publish(args.run, args.out))


if __name__ == "__main__":
    main()
