"""Set a trained probe LM's held-out bits per code next to the context prior's and the unigram's.

    python -m analysis.lm_probe RUN --train-shards tokens/ --val-shards val-tokens/

The context prior (``analysis.prior``) and the unigram (``analysis.ood.unigram_probabilities``,
the OOD reference's smoothing) are fit on the same training shards as the probe and scored on
the same held-out images as ``RUN/probe.json`` (written by ``python -m qkvae.lm train
--val-shards``). Writes ``RUN/comparison.json`` and prints a Markdown table.
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from analysis.ood import unigram_probabilities
from analysis.prior import ContextPrior
from analysis.reference import ALPHA
from qkvae.cli import run_cli
from qkvae.lm.train_probe import shard_tokens


@dataclass(frozen=True)
class ProbeComparison:
    """Held-out bits per code of the probe, the context prior and the unigram, on the same images."""

    val_images: int
    train_images: int
    probe_bits: float
    context_prior_bits: float
    unigram_bits: float

    def table(self) -> str:
        rows = [("probe LM", self.probe_bits), ("context prior (analysis.prior)", self.context_prior_bits),
                ("unigram frequencies", self.unigram_bits)]
        return "\n".join([f"| model | held-out bits per code ({self.val_images} images) |", "|---|---|",
                          *(f"| {name} | {bits:.2f} |" for name, bits in rows)])


def compare(run, train_shards, val_shards) -> ProbeComparison:
    probe = json.loads((Path(run) / "probe.json").read_text())
    train, config = shard_tokens(train_shards)
    val, _ = shard_tokens(val_shards, probe["val_images"])
    prior = ContextPrior.fit(train.astype(np.int64).reshape(len(train), config.grid_size, -1), config.levels)
    unigram = unigram_probabilities(np.bincount(train.ravel(), minlength=config.codebook_size), ALPHA)
    return ProbeComparison(len(val), len(train), probe["val_bits_per_code"],
                           float(prior.surprisal(val.astype(np.int64).reshape(len(val), config.grid_size, -1)).mean()),
                           float(-np.log2(unigram[val.astype(np.int64)]).mean()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.lm_probe", description=__doc__.split("\n")[0])
    p.add_argument("run", help="the probe's run folder (python -m qkvae.lm train ... --val-shards)")
    p.add_argument("--train-shards", required=True, metavar="DIR")
    p.add_argument("--val-shards", required=True, metavar="DIR")
    args = p.parse_args(argv)
    return run_cli(lambda: write_comparison(args.run, compare(args.run, args.train_shards, args.val_shards)), KeyError)


def write_comparison(run, result: ProbeComparison) -> None:
    (Path(run) / "comparison.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    print(result.table())


if __name__ == "__main__":
    sys.exit(main())
