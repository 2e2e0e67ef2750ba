"""Charts and diagrams drawn with matplotlib (Agg, never pyplot): plots, a flowchart, a table, a graph.

Each kind is drawn twice with other seeded data and another style (grid, colours, background),
on a 144-pixel figure that is then shrunk to the model's size like a chart thumbnail.
"""

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from analysis.ood_images.common import render, rng

FIGURE_INCHES, DPI = 2.4, 60  # 144 x 144 pixels
MARGINS = {"left": 0.22, "bottom": 0.18, "right": 0.95, "top": 0.88}  # fixed: a tight layout would triple the time
STYLES = ({"axes.grid": True, "font.size": 8}, {"axes.grid": False, "font.size": 9, "axes.facecolor": "#f4f4f8"})
PALETTES = (("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"),
            ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51"))


def line(ax, g, v):
    x = np.linspace(0, 10, 200)
    for k in range(2 + v):
        ax.plot(x, np.sin(x * (k + 1) / 2 + g.uniform(0, 3)) + 0.1 * k, label=f"run {k}")
    ax.legend(loc="upper right")
    ax.set(xlabel="step", ylabel="loss", title="Training")


def bars(ax, g, v):
    labels = ["A", "B", "C", "D", "E"]
    (ax.barh if v else ax.bar)(labels, g.uniform(1, 9, 5), color=PALETTES[v])
    ax.set_title("Sales by region")


def grouped_bars(ax, g, v):
    x = np.arange(4)
    for k in range(3):
        ax.bar(x + 0.27 * k, g.uniform(1, 8, 4), 0.27, label=f"Q{k + 1}")
    ax.set_xticks(x + 0.27, ["2021", "2022", "2023", "2024"])
    ax.legend(fontsize=6)


def stacked(ax, g, v):
    x = np.arange(10)
    ys = g.uniform(0.5, 2, (3, 10)).cumsum(axis=1) if v else g.uniform(1, 3, (3, 10))
    ax.stackplot(x, ys, labels=["x", "y", "z"])
    ax.set_title("Stacked area")


def scatter(ax, g, v):
    for k in range(2 + v):
        pts = g.normal(k * 2, 0.8, (40, 2))
        ax.scatter(pts[:, 0], pts[:, 1], s=12, label=f"class {k}")
    ax.set(xlabel="x₁", ylabel="x₂")


def pie(ax, g, v):
    ax.pie(g.uniform(1, 5, 4 + v), labels=["red", "blue", "green", "grey", "gold"][:4 + v], autopct="%d%%",
           wedgeprops={"width": 0.45} if v else None, textprops={"fontsize": 6})


def histogram(ax, g, v):
    ax.hist(g.normal(0, 1, 500), bins=20 + 10 * v, edgecolor="black", alpha=0.8)
    if v:
        ax.hist(g.normal(1.5, 0.7, 300), bins=20, alpha=0.6)
    ax.set_title("Histogram")


def boxplot(ax, g, v):
    ax.boxplot([g.normal(m, 1 + v, 50) for m in range(4)])
    ax.set_ylabel("value")


def heatmap(ax, g, v):
    im = ax.imshow(g.uniform(0, 1, (6, 6)), cmap=("viridis", "coolwarm")[v])
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Correlation")


def contour(ax, g, v):
    x, y = np.meshgrid(np.linspace(-3, 3, 80), np.linspace(-3, 3, 80))
    z = np.exp(-(x - g.uniform(-1, 1)) ** 2 - y ** 2) + 0.6 * np.exp(-(x + 1) ** 2 - (y - 1) ** 2)
    (ax.contourf if v else ax.contour)(x, y, z, 8, cmap="plasma")


def errorbars(ax, g, v):
    x = np.arange(8)
    ax.errorbar(x, g.uniform(2, 6, 8), yerr=g.uniform(0.2, 1, 8), fmt="o-" if v else "s--", capsize=3)
    ax.set(xlabel="epoch", ylabel="accuracy")


def steps_and_stems(ax, g, v):
    y = g.integers(0, 10, 15)
    if v:
        ax.stem(y)
    else:
        ax.step(np.arange(15), y, where="mid")
    ax.set_title("Events")


def log_plot(ax, g, v):
    n = np.logspace(1, 5, 30)
    ax.loglog(n, n ** (-0.5 - 0.2 * v) * g.uniform(0.8, 1.2, 30), "o-", markersize=3)
    ax.grid(True, which="both", linewidth=0.4)
    ax.set(xlabel="N", ylabel="error")


def polar(ax, g, v):
    theta = np.linspace(0, 2 * np.pi, 300)
    ax.plot(theta, 1 + 0.5 * np.cos((3 + 2 * v) * theta + g.uniform(0, 1)))
    ax.fill(theta, 0.5 + 0.2 * np.sin(4 * theta), alpha=0.4)


def flowchart(ax, g, v):
    steps = ["Start", "Load", "Encode", "Score", "End"][: 4 + v]
    ax.set(xlim=(0, 10), ylim=(0, 10))
    for k, label in enumerate(steps):
        y = 9 - k * (9 / len(steps))
        ax.add_patch(FancyBboxPatch((2.5, y - 0.8), 5, 1.2, boxstyle="round,pad=0.1", fc=PALETTES[v][k], ec="black"))
        ax.text(5, y - 0.2, label, ha="center", va="center", color="white", fontweight="bold")
        if k:
            ax.annotate("", (5, y + 0.5), (5, y + 9 / len(steps) - 0.8), arrowprops={"arrowstyle": "->"})
    ax.axis("off")


def table(ax, g, v):
    cells = [[f"{x:.{1 + v}f}" for x in row] for row in g.uniform(0, 100, (6, 3))]
    t = ax.table(cells, colLabels=["PSNR", "SSIM", "bpp"], loc="center", cellLoc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(7)
    ax.axis("off")


def graph(ax, g, v):
    """Nodes on a circle joined by seeded edges, a network diagram."""
    n = 6 + v
    pos = np.stack([np.cos(np.arange(n) * 2 * np.pi / n), np.sin(np.arange(n) * 2 * np.pi / n)], axis=1)
    for a, b in g.integers(0, n, (n + 3, 2)):
        ax.plot(*pos[[a, b]].T, color="grey", zorder=1)
    for k, (x, y) in enumerate(pos):
        ax.add_patch(Circle((x, y), 0.18, fc=PALETTES[v][k % 5], ec="black", zorder=2))
        ax.text(x, y, chr(65 + k), ha="center", va="center", fontsize=7, zorder=3)
    ax.set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal")
    ax.axis("off")


def gantt(ax, g, v):
    starts = g.integers(0, 10, 5)
    ax.barh([f"task {k}" for k in range(5)], g.integers(2, 8, 5), left=starts, color=PALETTES[v])
    ax.invert_yaxis()
    ax.set_xlabel("week")


KINDS = (line, bars, grouped_bars, stacked, scatter, pie, histogram, boxplot, heatmap, contour,
         errorbars, steps_and_stems, log_plot, polar, flowchart, table, graph, gantt)


def chart(kind, v: int) -> np.ndarray:
    name = f"{kind.__name__}_{v}"
    with matplotlib.rc_context({**STYLES[v], "axes.prop_cycle": matplotlib.cycler(color=PALETTES[v])}):
        fig = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=DPI)
        fig.subplots_adjust(**MARGINS)
        ax = fig.add_subplot(projection="polar" if kind is polar else None)
        kind(ax, rng(name), v)
        return render(fig)


def images() -> dict[str, np.ndarray]:
    return {f"{kind.__name__}_{v}": chart(kind, v) for kind in KINDS for v in (0, 1)}
