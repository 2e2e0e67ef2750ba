"""Publish a training run into ``assets/``: weights, config, training log and loss curve (a
maintainer's tool, not part of the package).

    python -m scripts.publish runs/qkvae-1m [--out assets]

Works on a finished run and on one still in progress (it then takes the model from the latest
checkpoint), so the app can ship interim weights while a long CPU run goes on.
"""

import argparse
import json
from pathlib import Path

import torch

from analysis.plots import loss_curve
from qkvae.atomic import atomic_path, atomic_write
from qkvae.model import QKVAE, QKVAEConfig
from qkvae.train import CHECKPOINT_NAME, LOG_NAME
from qkvae.weights import ASSETS, save_qkvae

def checkpoint_model(ckpt: dict) -> QKVAE:
    """The model held by a training checkpoint (``qkvae.train``'s ``checkpoint.pt``, loaded)."""
    model = QKVAE(QKVAEConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model


def publish(run: Path, out: Path) -> str:
    ckpt = torch.load(run / CHECKPOINT_NAME, map_location="cpu", weights_only=False)
    save_qkvae(checkpoint_model(ckpt), out)
    records = [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]
    records = [r for r in records if r["step"] < ckpt["step"]]
    atomic_write(out / LOG_NAME, "".join(json.dumps(r) + "\n" for r in records))
    with atomic_path(out / "loss_curve.png") as staging:
        loss_curve(records, ckpt["step"], ckpt["recipe"]["steps"]).savefig(staging, format="png")
    return f"published step {ckpt['step']} of {ckpt['recipe']['steps']} from {run} to {out}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m scripts.publish", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="a training output folder holding checkpoint.pt and the log")
    p.add_argument("--out", type=Path, default=ASSETS)
    args = p.parse_args(argv)
    print(publish(args.run, args.out))


if __name__ == "__main__":
    main()
