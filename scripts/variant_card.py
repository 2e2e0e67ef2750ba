"""A shipped variant's files: ``variant.json`` (its frontier point and training) and its short card,
``README.md``. ``scripts.ship_variant`` writes them when it ships a run, ``scripts.frontier``
again with every new measurement, so the card's numbers are the frontier's."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from analysis.frontier import Point
from qkvae.atomic import atomic_write
from qkvae.model import QKVAE, QKVAEConfig


@dataclass(frozen=True)
class Training:
    """How a variant was trained, from its run's checkpoint and train log."""

    recipe: dict  # the checkpoint's recipe: steps, batch_size, lr, seed, init, ssim_weight, config
    steps_done: int
    step_seconds: float  # the sum of the logged step times (the mean of each log window x its steps)
    precisions: dict  # precision -> steps


def card(name: str, p: Point, t: Training) -> str:
    c, r = p.config, t.recipe
    codebook = QKVAEConfig.from_dict(c).codebook_size
    shipped = sum(q.numel() for q in QKVAE().parameters())
    precision = ", ".join(f"{k} {v:,} steps" for k, v in t.precisions.items())
    rows = [
        ("config", f"channels {c['channels']}, {c['num_res_blocks']} ResBlocks, levels {tuple(c['levels'])} "
                   f"(codebook {codebook:,}), {c['image_size'] // 2}x{c['image_size'] // 2} tokens"),
        ("parameters", f"{p.parameters:,} (QKVAE-1m: {shipped:,})"),
        ("GFLOP per image", f"encode {p.encode_gflop:.3f}, decode {p.decode_gflop:.3f} "
                            "(torch.utils.flop_counter: convolutions, 2 x MACs)"),
        ("recipe", f"the card's: {r['steps']:,} steps x batch {r['batch_size']}, AdamW, OneCycle peak {r['lr']:g}, "
                   f"seed {r['seed']}, loss L1 + 0.25 MSE + 0.5 Sobel-L1"
                   + (f" + {r['ssim_weight']:g} (1 - SSIM)" if r["ssim_weight"] else "")),
        ("trained", (f"{t.steps_done:,} of {r['steps']:,} steps ({precision}); {t.step_seconds / 3600:.2f} h of "
                     "step time (train log), on 2 CPU cores shared with other runs")),
        *((f"{q.source} ({q.images} images)", f"PSNR {q.psnr:.2f} dB, SSIM {q.ssim:.4f}") for q in p.quality),
        ("encode", f"{p.encode_images_per_s:,.0f} images/s (fp32, batch 64, median of interleaved rounds on 2 CPU "
                   "cores, as last timed; `python -m scripts.frontier` times every checkpoint together and "
                   "rewrites this card: compare ratios, not absolutes)"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (f"# {name}\n\nA smaller QKVAE on the size frontier (`assets/MODEL_CARD.md`), trained with QKVAE-1m's "
            f"recipe by `python -m qkvae.train --config CONFIG` and shipped by `python -m scripts.ship_variant`.\n\n"
            f"| | |\n|---|---|\n{table}\n\n"
            f"```python\nfrom qkvae import load_qkvae\nmodel = load_qkvae(\"assets/variants/{name}\")\n```\n\n"
            f"Against QKVAE-1m, image by image: `python -m analysis.compare --a assets --b assets/variants/{name} "
            f"--data ../shared/data/stl10-samples --out runs/compare-{name}`.\n")


def write_variant(folder: Path, p: Point, t: Training) -> None:
    """``folder``'s ``variant.json`` and ``README.md`` for point ``p`` and training ``t``."""
    atomic_write(folder / "variant.json", json.dumps({**p.to_json(), "training": asdict(t)}, indent=1) + "\n")
    atomic_write(folder / "README.md", card(folder.name, p, t))


def read_training(folder: Path) -> Training:
    """The training recorded in ``folder``'s ``variant.json``."""
    return Training(**json.loads((folder / "variant.json").read_text())["training"])
