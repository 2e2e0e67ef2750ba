"""Cheap statistics of an image that photos share, and how far an image's lie from photos'.

``photo_statistics`` measures a uint8 (H, W, 3) image on five counts, each a few numbers
(``NAMES`` lists them in order):
- colour: the chroma's mean and spread, the share of near-grey pixels, the hue's circular mean
  (weighted by chroma, as a vector) and concentration, the share of chromatic pixels in six hue
  sectors, the three channel correlations and the two opponent-colour means (a colour cast);
- luminance: mean, spread, 5th/50th/95th percentiles, the shares of dark and bright pixels;
- spectrum: the slope of the radially averaged power spectrum in log-log (natural images sit
  near -2; enlarged or blurred ones fall faster, tiled or noisy ones slower), the share of
  power at high and at middle frequencies, and the strongest normalized autocorrelation at a
  lag of a half, third or quarter of the side (tiling);
- gradients: the log mean gradient magnitude, the share of edge pixels and of flat pixels,
  the gradient magnitude's kurtosis;
- noise and coding: the log median absolute Laplacian, its ratio to the mean gradient, the
  blockiness at JPEG's 8-pixel grid, the log number of distinct colours.

``PhotoModel`` is a one-class model of photos' statistics (Lee et al. 2018's Mahalanobis
distance, on these statistics instead of a network's features): the statistics are standardized
by the photos' median and interquartile range and clipped, and each group's squared Mahalanobis
distance is taken under a Ledoit-Wolf shrinkage covariance fit on photos, in logs. ``analysis.ood``
calibrates each group's distance as one more test. The tokenizer's own encoder features (the
per-channel mean and spread after its ResBlocks, the continuous latent and its distance to the
rounding grid) were measured too and told near-OOD images from STL-10 worse than these
(assets/MODEL_CARD.md, "OOD score").
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BLOCK = 8  # JPEG's block side, for the blockiness
GREY_CHROMA = 0.06  # chroma (max - min channel, on [0, 1]) below which a pixel counts as grey
DARK, BRIGHT = 0.1, 0.9  # luminance shares
EDGE, FLAT = 0.1, 0.01  # gradient magnitudes (luminance on [0, 1] per pixel) for edges and flat pixels
HUE_SECTORS = 6
SPECTRUM_BAND = (0.06, 0.45)  # radial frequencies (cycles per pixel) of the slope fit
HIGH_FREQUENCY, MID_FREQUENCY = 0.25, 0.12  # cycles per pixel: the high band starts here, the middle band between
TILE_LAGS = (2, 3, 4)  # the side divided by these: the lags of the tiling autocorrelation
CLIP = 12.0  # standardized statistics are clipped at +-CLIP, so that one wild count cannot dominate
TINY = 1e-12  # added to a squared distance before its log

COLOUR = ("chroma_mean", "chroma_std", "grey_share", "hue_cos", "hue_sin", "hue_concentration",
          *(f"hue_sector_{k}" for k in range(HUE_SECTORS)), "corr_rg", "corr_gb", "corr_rb", "red_green", "yellow_blue")
LIGHT = ("luma_mean", "luma_std", "luma_p5", "luma_p50", "luma_p95", "dark_share", "bright_share")
SPECTRUM = ("spectrum_slope", "high_frequency_share", "mid_frequency_share", "tiling")
GRADIENT = ("log_gradient", "edge_share", "flat_share", "gradient_kurtosis")
CODING = ("log_laplacian", "laplacian_to_gradient", "blockiness", "log_colours")
# Each group is one Gaussian and one test of analysis.ood: a distance over all 36 statistics
# at once drowns an image unlike photos on a few of them (dark, or enlarged) in the spread of the
# other thirty; one per group keeps it.
GROUPS = {"colour": COLOUR, "light": LIGHT, "spectrum": SPECTRUM, "gradient": GRADIENT, "coding": CODING}
NAMES = tuple(name for group in GROUPS.values() for name in group)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 1e-12 else 1.0


def colour_statistics(r: np.ndarray, g: np.ndarray, b: np.ndarray) -> list[float]:
    """``r``, ``g``, ``b``: float (H, W) on [0, 1]."""
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    # Hue from the opponent axes: the angle of (a, c), smooth and without HSV's branches
    a, c = 2 * r - g - b, np.sqrt(3) * (g - b)
    hue = np.arctan2(c, a)
    weight = chroma / (np.hypot(a, c) + 1e-9) / max(float(chroma.sum()), 1e-9)
    cos, sin = float((weight * a).sum()), float((weight * c).sum())
    chromatic = chroma >= GREY_CHROMA
    sectors = np.floor((hue[chromatic] + np.pi) / (2 * np.pi) * HUE_SECTORS).astype(np.int64) % HUE_SECTORS
    shares = np.bincount(sectors, minlength=HUE_SECTORS) / r.size
    return [float(chroma.mean()), float(chroma.std()), 1 - float(chromatic.mean()), cos, sin, float(np.hypot(cos, sin)),
            *map(float, shares), _corr(r, g), _corr(g, b), _corr(r, b),
            float((r - g).mean()), float(((r + g) / 2 - b).mean())]


def luminance_statistics(y: np.ndarray) -> list[float]:
    """``y``: float (H, W) on [0, 1]."""
    p5, p50, p95 = np.percentile(y, (5, 50, 95))
    return [float(y.mean()), float(y.std()), float(p5), float(p50), float(p95),
            float((y < DARK).mean()), float((y > BRIGHT).mean())]


@lru_cache(maxsize=8)
def _spectrum_grid(h: int, w: int) -> tuple:
    """For an (h, w) image: the Hann window, the high and middle band masks, each frequency's
    radial bin, the bins' counts, and the bins of the slope fit with their log frequencies."""
    window = np.outer(np.hanning(h), np.hanning(w))
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.hypot(fy, fx)
    bins = np.round(radius * min(h, w)).astype(np.int64).ravel()
    counts = np.maximum(np.bincount(bins), 1)
    f = np.arange(counts.size) / min(h, w)
    band = np.flatnonzero((f >= SPECTRUM_BAND[0]) & (f <= SPECTRUM_BAND[1]))
    high, mid = radius >= HIGH_FREQUENCY, (radius >= MID_FREQUENCY) & (radius < HIGH_FREQUENCY)
    return window, high, mid, bins, counts, band, np.log(f[band])


def spectrum_statistics(y: np.ndarray) -> list[float]:
    """Radial power spectrum of the mean-removed, Hann-windowed luminance: slope and band shares;
    and the tiling autocorrelation of the unwindowed luminance."""
    h, w = y.shape
    window, high_band, mid_band, bins, counts, band, log_f = _spectrum_grid(h, w)
    power = np.abs(np.fft.fft2((y - y.mean()) * window)) ** 2
    total = max(float(power.sum()), 1e-12)
    high = float(power[high_band].sum()) / total
    mid = float(power[mid_band].sum()) / total
    radial = np.bincount(bins, power.ravel()) / counts
    slope = float(np.polyfit(log_f, np.log(radial[band] + 1e-12), 1)[0])
    centred = y - y.mean()
    spectrum = np.fft.fft2(centred)
    autocorrelation = np.real(np.fft.ifft2(spectrum * np.conj(spectrum)))
    autocorrelation /= max(float(autocorrelation[0, 0]), 1e-12)
    tiling = max(max(autocorrelation[h // k, 0], autocorrelation[0, w // k]) for k in TILE_LAGS)
    return [slope, high, mid, float(tiling)]


def gradient_statistics(y: np.ndarray) -> list[float]:
    gy, gx = np.gradient(y)
    magnitude = np.hypot(gx, gy)
    m = magnitude.ravel()
    centred = m - m.mean()
    variance = float((centred ** 2).mean())
    kurtosis = float((centred ** 4).mean()) / variance ** 2 if variance > 1e-12 else 0.0
    return [float(np.log(m.mean() + 1e-4)), float((m > EDGE).mean()), float((m < FLAT).mean()), float(np.log1p(kurtosis))]


def coding_statistics(y: np.ndarray, rgb: np.ndarray, mean_gradient: float) -> list[float]:
    """Noise (the Laplacian's median), JPEG blockiness, and the number of distinct colours."""
    laplacian = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    median_laplacian = float(np.median(np.abs(laplacian)))
    across = np.abs(np.diff(y, axis=1))  # (H, W - 1): the step between columns c and c + 1
    boundary = (np.arange(across.shape[1]) % BLOCK) == BLOCK - 1
    blockiness = (across[:, boundary].mean() + 1e-4) / (across[:, ~boundary].mean() + 1e-4)
    down = np.abs(np.diff(y, axis=0))
    boundary = (np.arange(down.shape[0]) % BLOCK) == BLOCK - 1
    blockiness = (blockiness + (down[boundary].mean() + 1e-4) / (down[~boundary].mean() + 1e-4)) / 2
    packed = np.sort(((rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]).ravel())
    colours = 1 + int(np.count_nonzero(packed[1:] != packed[:-1]))
    return [float(np.log(median_laplacian + 1e-4)), median_laplacian / (mean_gradient + 1e-4),
            float(np.log(blockiness)), float(np.log(colours))]


def photo_statistics(rgb: np.ndarray) -> np.ndarray:
    """The ``NAMES`` statistics of a uint8 (H, W, 3) image: float64 (len(NAMES),)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    r, g, b = np.moveaxis(rgb, -1, 0).astype(np.float64) / 255.0  # planes: reductions over channels are cheap
    y = 0.299 * r + 0.587 * g + 0.114 * b  # luma, ITU-R BT.601
    gradients = gradient_statistics(y)
    values = [*colour_statistics(r, g, b), *luminance_statistics(y), *spectrum_statistics(y), *gradients,
              *coding_statistics(y, rgb, float(np.exp(gradients[0])))]
    return np.asarray(values, dtype=np.float64)


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf (2004) shrinkage estimate of the covariance of the rows of ``x`` (n, d),
    towards a multiple of the identity; well conditioned even when n is close to d."""
    n, d = x.shape
    x = x - x.mean(axis=0)
    sample = x.T @ x / n
    mu = np.trace(sample) / d
    delta = ((sample - mu * np.eye(d)) ** 2).sum() / d
    # sum_i ||x_i x_i^T - S||^2 = sum_i ||x_i||^4 - n ||S||^2, since sum_i x_i x_i^T = n S
    beta = min(delta, (((x * x).sum(axis=1) ** 2).sum() - n * (sample**2).sum()) / n**2 / d)
    shrinkage = beta / delta if delta > 0 else 1.0
    return shrinkage * mu * np.eye(d) + (1 - shrinkage) * sample


def _group_slices() -> dict[str, slice]:
    start, out = 0, {}
    for group, names in GROUPS.items():
        out[group] = slice(start, start + len(names))
        start += len(names)
    return out


SLICES = _group_slices()  # each group's place in ``NAMES``


@dataclass(frozen=True)
class PhotoModel:
    """One Gaussian per group (``GROUPS``) over photos' standardized ``photo_statistics``:
    ``centre`` and ``spread`` (the photos' median and interquartile range per statistic), ``mean``
    of the standardized, clipped statistics, and ``precision``, block diagonal by group (each
    block the inverse of the group's shrinkage covariance)."""

    centre: np.ndarray
    spread: np.ndarray
    mean: np.ndarray
    precision: np.ndarray

    def __post_init__(self):
        n = len(NAMES)
        if self.centre.shape != (n,) or self.spread.shape != (n,) or self.mean.shape != (n,) or self.precision.shape != (n, n):
            raise ValueError(f"a photo model has {n} statistics; got shapes {self.centre.shape}, {self.spread.shape}, "
                             f"{self.mean.shape}, {self.precision.shape}")

    @classmethod
    def fit(cls, statistics: np.ndarray) -> "PhotoModel":
        """Fit on photos' statistics, (n, len(NAMES))."""
        statistics = np.asarray(statistics, dtype=np.float64)
        if statistics.ndim != 2 or statistics.shape[1] != len(NAMES) or len(statistics) < 2:
            raise ValueError(f"photo statistics must be (n >= 2, {len(NAMES)}), got {statistics.shape}")
        low, centre, high = np.percentile(statistics, (25, 50, 75), axis=0)
        spread = np.maximum(high - low, 1e-6)
        z = np.clip((statistics - centre) / spread, -CLIP, CLIP)
        precision = np.zeros((len(NAMES), len(NAMES)))
        for s in SLICES.values():
            precision[s, s] = np.linalg.inv(ledoit_wolf(z[:, s]))
        return cls(centre, spread, z.mean(axis=0), precision)

    def distances(self, statistics: np.ndarray) -> dict[str, float]:
        """Each group's log squared Mahalanobis distance of one image's statistics from the photos'.

        In logs because photos' squared distances have a heavy tail, which the calibration's
        exponential tail (``analysis.ood``) would stretch into tiny p-values for unusual photos:
        the photos' 99th percentile of the strongest test would rise, and images flagged by the
        token tests alone (text, textures) would fall below the thresholds."""
        d = np.clip((np.asarray(statistics, dtype=np.float64) - self.centre) / self.spread, -CLIP, CLIP) - self.mean
        return {group: float(np.log(d[s] @ self.precision[s, s] @ d[s] + TINY)) for group, s in SLICES.items()}
