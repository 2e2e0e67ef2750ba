"""The size frontier: reconstruction quality against parameters and encode cost, one point per checkpoint.

``measure_quality`` scores several models on the same fitted images (each source fit once);
``Point`` is one checkpoint's row (parameters, FLOPs per image from ``qkvae.flops``, PSNR/SSIM per
source, encode images/s when measured); ``frontier_figure`` draws PSNR and SSIM against
parameters and against encode GFLOP per image; ``frontier_table`` and ``replace_section`` put
the table into a Markdown file between two markers, so it can be regenerated
(``python -m scripts.frontier``).
"""

from dataclasses import asdict, dataclass

import numpy as np
from matplotlib.figure import Figure

from analysis.compare import reconstruct_fitted
from qkvae.flops import flops_per_image
from qkvae.model import QKVAE
from qkvae.pipeline import BATCH_SIZE, load_fitted

SECTION_START = "<!-- frontier:start (python -m scripts.frontier writes this part) -->"
SECTION_END = "<!-- frontier:end -->"


@dataclass(frozen=True)
class Quality:
    source: str  # the source's name, e.g. "stl10-samples"
    images: int
    psnr: float  # mean, dB
    ssim: float


@dataclass(frozen=True)
class Point:
    name: str
    parameters: int
    config: dict
    encode_gflop: float  # per image
    decode_gflop: float
    quality: tuple[Quality, ...]
    encode_images_per_s: float | None  # fp32, batch 64, median of interleaved rounds; None if not timed

    def on(self, source: str) -> Quality:
        return next(q for q in self.quality if q.source == source)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Point":
        return cls(**{**d, "quality": tuple(Quality(**q) for q in d["quality"])})


def measure_quality(models: dict[str, QKVAE], sources: dict[str, str]) -> dict[str, tuple[Quality, ...]]:
    """Mean PSNR/SSIM of every model (name -> model) on every source (name -> spec); each source
    is decoded and fit once (all models must take the same image size)."""
    sizes = {m.config.image_size for m in models.values()}
    if len(sizes) != 1:
        raise ValueError(f"the models take different image sizes: {sorted(sizes)}")
    size = sizes.pop()
    out = {name: [] for name in models}
    for source, spec in sources.items():
        fitted = load_fitted(spec, size)
        for name, model in models.items():
            r = reconstruct_fitted(model, fitted, BATCH_SIZE)
            out[name].append(Quality(source, len(r.names), float(r.psnr.mean()), float(r.ssim.mean())))
    return {name: tuple(q) for name, q in out.items()}


def point(name: str, model: QKVAE, quality: tuple[Quality, ...], encode_images_per_s: float | None) -> Point:
    flops = flops_per_image(model)
    return Point(name, sum(p.numel() for p in model.parameters()), model.config.to_dict(), flops.encode / 1e9,
                 flops.decode / 1e9, quality, encode_images_per_s)


def frontier_figure(points: list[Point], sources: list[str]) -> Figure:
    """PSNR (top) and SSIM (bottom) against parameters (left) and encode GFLOP per image (right):
    one colour per source, a line through the checkpoints of one codebook (one marker per
    codebook), each point labelled with its checkpoint."""
    families = sorted({tuple(p.config["levels"]) for p in points}, key=lambda levels: -int(np.prod(levels)))
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    for col, (xlabel, x) in enumerate((("parameters", lambda p: p.parameters),
                                       ("encode GFLOP per image", lambda p: p.encode_gflop))):
        for row, metric in enumerate(("psnr", "ssim")):
            ax = axes[row, col]
            for k, source in enumerate(sources):
                for f, levels in enumerate(families):
                    family = sorted((p for p in points if tuple(p.config["levels"]) == levels), key=x)
                    ax.plot([x(p) for p in family], [getattr(p.on(source), metric) for p in family],
                            "os^dv"[f % 5] + "-", ms=5, color=f"C{k}", alpha=0.9,
                            label=f"{source}, codebook {int(np.prod(levels)):,}")
            for p in points:
                ax.annotate(p.name, (x(p), getattr(p.on(sources[0]), metric)), fontsize=7, xytext=(4, -10),
                            textcoords="offset points")
            ax.set(xscale="log", xlabel=xlabel, ylabel="PSNR (dB)" if metric == "psnr" else "SSIM")
            ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("The size frontier: quality against model size and encode cost")
    return fig


def frontier_table(points: list[Point], sources: list[str]) -> str:
    """A Markdown table, largest model first."""
    head = ["checkpoint", "parameters", "channels, ResBlocks", "levels (codebook)", "encode GFLOP/image"]
    head += [f"{s} PSNR / SSIM" for s in sources] + ["encode images/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in sorted(points, key=lambda p: -p.parameters):
        c = p.config
        cells = [p.name, f"{p.parameters:,}", f"{c['channels']}, {c['num_res_blocks']}",
                 f"{tuple(c['levels'])} ({int(np.prod(c['levels'])):,})", f"{p.encode_gflop:.3f}"]
        cells += [f"{p.on(s).psnr:.2f} dB / {p.on(s).ssim:.4f}" for s in sources]
        cells.append("" if p.encode_images_per_s is None else f"{p.encode_images_per_s:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_section(text: str, body: str) -> str:
    """``text`` with what lies between ``SECTION_START`` and ``SECTION_END`` replaced by ``body``;
    the marked section is appended when ``text`` has none."""
    section = f"{SECTION_START}\n{body.strip()}\n{SECTION_END}"
    if SECTION_START in text and SECTION_END in text:
        before, rest = text.split(SECTION_START, 1)
        return before + section + rest.split(SECTION_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + section + "\n"
