"""How unlike the reference photos an image is: features, calibration, the combined score, the verdict, the map.

Features of an image, all in bits per token (``TESTS`` lists how each is read):
- ``prior_bits``: the mean -log2 p(token | left, up, up-left) under the context prior
  (``analysis.prior``);
- ``png_bits``: the size of the 96x96 uint8 input as a PNG (Pillow, compress level 1,
  no optimization), in bits per token;
- ``complexity_corrected``: ``prior_bits - png_bits``, the input-complexity correction of
  Serra et al. 2020 (likelihood alone calls flat, simple images "likely"; subtracting a
  lossless code length of the pixels takes their simplicity out);
- ``excess_bits``: ``prior_bits`` minus what the prior costs a photo of the same ``png_bits``
  (a line fit on the calibration photos): the same correction, scaled to the photos' own
  trade-off between the two codes, so it varies far less among photos;
- ``kl``: the KL divergence of the image's token histogram from the reference's unigram
  frequencies;
- ``photo_distances``: for each group of cheap image statistics (``analysis.photo_features``:
  colour, light, spectrum, gradient, coding), the log squared Mahalanobis distance from the
  training photos' statistics (not in bits). These see photo-like images the token features miss:
  dark, grey, tinted, enlarged, blurred or damaged photos;
- ``spectrum_slope``: the slope of the input's radial power spectrum in log-log (one of the
  spectrum group's statistics, read on its own and one-sided: enlarging or blurring a photo
  steepens it, the card's "very large structures");
- ``face_windows``: how many windows a frontal-face detector accepts (``analysis.face_detector``);
  STL-10 has no people, and the card names faces as a failure case.

Each test turns one feature into an upper-tail probability ``p`` among held-out calibration
photos, empirical inside their range and extrapolated beyond their 90th percentile with an
exponential tail fit to the excesses. Two combinations read them: the pooled evidence, as in
Fisher's method, ``-sum(log10 p)``, and the strongest single test, ``-min(log10 p)`` (the max
of the percentiles). Pooling catches an image that is a little unusual on every count (a chart:
flat, stiff tokens, an odd token mix), which one test alone ranks below a photo that is very
unusual on one; the strongest test catches an image extreme on one count only (noise), which
pooling dilutes. The score is the larger of the two, each divided by its own 99th percentile
over the calibration photos, so about 1 means "as unusual as the 1% most unusual photos"; the
tests are correlated, so nothing here is chi-squared, and the thresholds are empirical: the
score's 95th and 99th percentiles over the calibration photos are the "unusual" and "out of
distribution" thresholds. The five photo-statistic distances (``alone=False``) count in the
pooled evidence only: as single tests each would raise the strongest test's 99th percentile (one
more independent chance for a photo to be extreme) for little gain. The slope and the face
windows count alone as well: one extreme reading of either (a 2x zoom, a portrait) is enough,
and pooled with eleven other tests it would be diluted. The test with the smallest ``p``
explains the verdict. The measurements behind these choices are in assets/MODEL_CARD.md ("OOD
score").

The per-token map is the same correction made per token: the token's surprisal under the prior
minus what a photo token of the same local pixel complexity costs (``local_bits``: a JPEG-LS
median-edge predictor, residuals modulo 256 coded with the image's own histogram, summed over the token's
2x2 pixels; the expected surprisal is a line fit on calibration photo tokens).
"""

import io
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image
from scipy.stats import rankdata, spearmanr

from analysis.codebook import code_counts
from analysis.face_detector import face_windows
from analysis.photo_features import NAMES, PhotoModel, photo_statistics
from analysis.prior import ContextPrior
from qkvae.fsq import as_indices

PNG_LEVEL = 1  # zlib level: the fastest; its ranking of images is what the score needs
TAIL_FROM = 90  # percentile of the calibration values above which the tail is extrapolated
PATCH = 2  # pixels per token side
MAP_VMIN, MAP_VMAX = -6.0, 6.0  # the map's fixed display range, bits per token
MIN_CALIBRATION = 20  # fewer calibration images cannot place a 95th percentile

SLOPE = NAMES.index("spectrum_slope")
IN_DISTRIBUTION, UNUSUAL, OUT_OF_DISTRIBUTION = "in distribution", "unusual", "out of distribution"


@dataclass(frozen=True)
class Test:
    """One reading of a feature: which tail of the calibration photos counts as unusual, in words."""

    name: str
    feature: str
    upper: bool  # True: high values are unusual; False: low values
    title: str  # a few words for a table row
    reason: str  # why an image far in this tail is flagged, for the verdict
    alone: bool = True  # whether the test counts as the strongest single test, or in the pooled evidence only


TESTS = (
    Test("complexity", "complexity_corrected", True, "prior bits − PNG bits, high",
         "structure unlike photos: its tokens cost more bits, against its pixels' PNG size, than a photo's"),
    Test("excess", "excess_bits", True, "prior bits above a photo's of its PNG size",
         "less predictable than photos of its complexity: its tokens cost more bits than a photo's of the same PNG size"),
    Test("token_mix", "kl", True, "KL of the token histogram",
         "token mix unlike photos: its histogram of tokens is far from theirs"),
    Test("simple", "prior_bits", False, "prior bits, low",
         "simpler than any photo: its tokens are more predictable than theirs"),
    Test("complex", "prior_bits", True, "prior bits, high",
         "more complex than photos: its tokens are less predictable than theirs"),
    Test("colour", "colour", True, "colour statistics, distance from photos'",
         "colours unlike photos': its saturation, hues or channel correlations are far from theirs", alone=False),
    Test("light", "light", True, "luminance statistics, distance from photos'",
         "light unlike photos': its brightness, contrast or dark and bright shares are far from theirs", alone=False),
    Test("scale", "spectrum", True, "power spectrum, distance from photos'",
         "detail at a scale unlike photos': its power spectrum is far from theirs (enlarged, blurred, shrunk or tiled)", alone=False),
    Test("edges", "gradient", True, "gradient statistics, distance from photos'",
         "edges unlike photos': its share of edges and flat areas is far from theirs", alone=False),
    Test("grain", "coding", True, "noise and coding statistics, distance from photos'",
         "grain unlike photos': its noise, compression blocks or number of colours are far from theirs", alone=False),
    Test("soft", "spectrum_slope", False, "power-spectrum slope, steep",
         "less fine detail than photos: its power spectrum falls off faster than theirs (enlarged or blurred)"),
    Test("face", "face_windows", True, "face detector windows, many",
         "a face: a frontal-face detector fires on it as on almost no photo (STL-10 has no people)"),
)

ALONE = np.array([t.alone for t in TESTS])  # the tests the strongest single test is taken over


@dataclass(frozen=True)
class Features:
    """An image's OOD features, bits per token. ``photo_bits`` is what the prior costs a photo of
    the same ``png_bits`` (the reference's complexity line); ``photo_distances`` the log squared
    Mahalanobis distance of each group of image statistics (``analysis.photo_features.GROUPS``);
    ``spectrum_slope`` the power spectrum's log-log slope; ``face_windows`` the face detector's
    accepted windows."""

    prior_bits: float
    png_bits: float
    kl: float
    photo_bits: float
    photo_distances: dict[str, float]
    spectrum_slope: float
    face_windows: int

    @property
    def complexity_corrected(self) -> float:
        return self.prior_bits - self.png_bits

    @property
    def excess_bits(self) -> float:
        return self.prior_bits - self.photo_bits

    def value(self, name: str) -> float:
        """A feature by name: a field or property, or a group of ``photo_distances``."""
        return self.photo_distances[name] if name in self.photo_distances else getattr(self, name)


@dataclass(frozen=True)
class Verdict:
    """The reading of a score: ``label`` (``IN_DISTRIBUTION``, ``UNUSUAL`` or ``OUT_OF_DISTRIBUTION``),
    a sentence for people, and the name of the test (``TESTS``) that drove it."""

    label: str
    explanation: str
    feature: str


@dataclass(frozen=True)
class OODScore:
    """The combined ``score`` (higher = more unusual), its features, each test's percentile among
    the calibration photos, and the verdict."""

    score: float
    features: Features
    percentiles: dict[str, float]
    verdict: Verdict

    def to_json(self) -> dict:
        features = {**asdict(self.features), "complexity_corrected": self.features.complexity_corrected,
                    "excess_bits": self.features.excess_bits}
        return {"score": self.score, "features": features, "percentiles": dict(self.percentiles),
                "verdict": asdict(self.verdict)}


def png_bits(rgb: np.ndarray, num_tokens: int) -> float:
    """Bits per token of a uint8 image as a PNG (``PNG_LEVEL``, no optimization)."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", optimize=False, compress_level=PNG_LEVEL)
    return 8 * buffer.tell() / num_tokens


def histogram_kl(indices, probs) -> float:
    """KL(P || Q) in bits, P the image's token frequencies and Q = ``probs`` (smoothed, no zeros)."""
    ids = as_indices(indices).ravel()
    p = code_counts(ids, probs.size) / ids.size
    seen = p > 0
    return max(float((p[seen] * np.log2(p[seen] / probs[seen])).sum()), 0.0)


def unigram_probabilities(counts, alpha: float) -> np.ndarray:
    """Smoothed token frequencies, float64: ``(counts + alpha) / (total + alpha * K)``."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + alpha) / (counts.sum() + alpha * counts.size)


def med_residuals(rgb: np.ndarray) -> np.ndarray:
    """Prediction residuals of JPEG-LS's median edge detector per channel, modulo 256 as JPEG-LS
    codes them: int64 (H, W, 3) in 0..255."""
    x = np.asarray(rgb).astype(np.int16)
    padded = np.pad(x, ((1, 0), (1, 0), (0, 0)), mode="edge")
    left, up, up_left = padded[1:, :-1], padded[:-1, 1:], padded[:-1, :-1]
    low, high = np.minimum(left, up), np.maximum(left, up)
    prediction = np.where(up_left >= high, low, np.where(up_left <= low, high, left + up - up_left))
    return (x - prediction).astype(np.int64) % 256


def local_bits(rgb: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Lossless-code bits of each token's ``patch`` x ``patch`` pixels, float64 (H/patch, W/patch).

    Residuals of ``med_residuals`` coded with the image's own residual histogram (KT-smoothed).
    """
    r = med_residuals(rgb)
    counts = np.bincount(r.ravel(), minlength=256)
    bits = -np.log2((counts + 0.5) / (counts.sum() + 0.5 * counts.size))[r].sum(axis=-1)
    h, w = bits.shape
    return bits.reshape(h // patch, patch, w // patch, patch).sum(axis=(1, 3))


def image_features(rgb: np.ndarray, indices, prior: ContextPrior, probs, line: tuple[float, float],
                   photo_model: PhotoModel, surprisal: np.ndarray | None = None) -> Features:
    """The features of one uint8 image and its token ids; ``line`` = (intercept, slope) of the
    photos' prior bits against their PNG bits; ``photo_model`` the photos' image statistics;
    ``surprisal`` the ids' ``prior.surprisal`` when the caller has it already."""
    prior_bits = float((prior.surprisal(indices) if surprisal is None else surprisal).mean())
    png = png_bits(rgb, as_indices(indices).size)
    statistics = photo_statistics(rgb)
    return Features(prior_bits, png, histogram_kl(indices, probs), line[0] + line[1] * png,
                    photo_model.distances(statistics), float(statistics[SLOPE]), face_windows(rgb))


def fit_line(x, y) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ``y`` against ``x``."""
    slope, intercept = np.polyfit(np.ravel(x), np.ravel(y), 1)
    return float(intercept), float(slope)


def _tail(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Sorted values, the tail's start and its exponential scale (mean excess over the start)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    start = float(np.percentile(values, TAIL_FROM))
    excess = values[values > start] - start
    return values, start, float(excess.mean()) if excess.size else 1.0


def upper_tail_log10_p(x: float, tail: tuple[np.ndarray, float, float]) -> float:
    """log10 P(calibration value >= x): empirical with one pseudo-count, exponential beyond the
    tail's start (in logs, so that extreme images keep their order instead of reaching p = 0)."""
    values, start, scale = tail
    n = values.size
    if x <= start:
        return math.log10((n - np.searchsorted(values, x, side="left") + 1) / (n + 1))
    return math.log10(1 - TAIL_FROM / 100) - (x - start) / max(scale, 1e-9) / math.log(10)


@dataclass(frozen=True)
class Calibration:
    """Feature values of held-out in-distribution photos, and the verdict thresholds from them.

    ``values`` is (n, len(TESTS)): each photo's feature as each test reads it (negated for lower
    tails, so every test looks at the upper tail). ``thresholds`` = (unusual, out of distribution).
    """

    values: np.ndarray
    thresholds: tuple[float, float]
    tails: tuple = field(init=False, repr=False, compare=False)
    scales: tuple[float, float] = field(init=False, repr=False, compare=False)  # (pooled, strongest) at 99%

    def __post_init__(self):
        if self.values.ndim != 2 or self.values.shape[1] != len(TESTS) or len(self.values) < MIN_CALIBRATION:
            raise ValueError(f"calibration values must be (n >= {MIN_CALIBRATION}, {len(TESTS)}), got {self.values.shape}")
        object.__setattr__(self, "tails", tuple(_tail(v) for v in self.values.T))
        log_p = np.array([self.log_p(row) for row in self.values])
        pooled, strongest = np.percentile(-log_p.sum(axis=1), 99), np.percentile(-log_p[:, ALONE].min(axis=1), 99)
        object.__setattr__(self, "scales", (max(float(pooled), 1e-9), max(float(strongest), 1e-9)))

    @classmethod
    def fit(cls, features: list[Features], percentiles=(95, 99)) -> "Calibration":
        """Calibrate on photos' features: the thresholds are percentiles of their own combined scores."""
        values = np.array([tail_values(f) for f in features])
        provisional = cls(values, (math.inf, math.inf))
        scores = [provisional.combine(v)[0] for v in values]
        unusual, outside = np.percentile(scores, percentiles)
        return cls(values, (float(unusual), float(outside)))

    def log_p(self, tail_values_row) -> np.ndarray:
        """Each test's log10 upper-tail p for one row of ``tail_values``."""
        return np.array([upper_tail_log10_p(x, tail) for x, tail in zip(tail_values_row, self.tails, strict=True)])

    def verdict(self, score: float, log_p: np.ndarray) -> Verdict:
        """The label for ``score`` against the thresholds, explained by the test with the smallest p
        (``log_p``: each test's log10 p, as ``combine`` gives them), and how far out the image is:
        on that test among the calibration photos, and the score against the outer threshold."""
        test = TESTS[int(np.argmin(log_p))]
        unusual, outside = self.thresholds
        how_far = f"score {score:.2f}, {score / outside:.2f} times the out-of-distribution threshold {outside:.2f}"
        among = percentile(log_p.min())  # where that test puts the image among the calibration photos
        if score <= unusual:
            return Verdict(IN_DISTRIBUTION, f"like the calibration photos ({how_far}; its most unusual reading, "
                                            f"{test.title}, is above {among:.0f}% of theirs)", test.name)
        label = UNUSUAL if score <= outside else OUT_OF_DISTRIBUTION
        n = len(self.values)
        where = (f"further out than all {n:,} calibration photos" if 10 ** log_p.min() < 1 / (n + 1)
                 else f"beyond {among:.1f}% of the calibration photos")
        return Verdict(label, f"{test.reason} ({where}; {how_far})", test.name)

    def combine(self, tail_values_row) -> tuple[float, np.ndarray]:
        """(combined score, each test's log10 upper-tail p) for one row of ``tail_values``: the
        larger of the pooled evidence (all tests) and the strongest single test (of the ``alone``
        ones), each in units of its own 99th percentile over the calibration photos."""
        log_p = self.log_p(tail_values_row)
        pooled, strongest = self.scales
        return max(-float(log_p.sum()) / pooled, -float(log_p[ALONE].min()) / strongest), log_p


def tail_values(features: Features) -> np.ndarray:
    """The feature each test reads, negated for lower-tail tests: (len(TESTS),) float64."""
    return np.array([features.value(t.feature) if t.upper else -features.value(t.feature) for t in TESTS])


def percentile(log10_p: float) -> float:
    """The percentile among the calibration photos of a value with upper-tail log10 p."""
    return 100 * (1 - 10**log10_p)


@dataclass(frozen=True)
class OODReference:
    """Everything the score needs: the context prior, the unigram frequencies, the photos' image
    statistics, the calibration, the per-token complexity line, and where they came from (the
    weights' SHA-256 above all)."""

    prior: ContextPrior
    unigram_counts: np.ndarray
    alpha: float
    photo_model: PhotoModel
    calibration: Calibration
    complexity_line: tuple[float, float]  # (intercept, slope): a photo's prior bits/token given its PNG bits/token
    map_line: tuple[float, float]  # (intercept, slope): a photo token's surprisal given its local bits
    num_images: int
    data_name: str
    calibration_name: str
    weights_name: str
    weights_sha256: str
    probs: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "probs", unigram_probabilities(self.unigram_counts, self.alpha))

    def score(self, rgb: np.ndarray, indices) -> OODScore:
        """Score one uint8 (H, W, 3) image with its token ids."""
        return self.score_features(image_features(rgb, indices, self.prior, self.probs, self.complexity_line,
                                                  self.photo_model))

    def score_features(self, features: Features) -> OODScore:
        score, log_p = self.calibration.combine(tail_values(features))
        percentiles = {t.name: percentile(q) for t, q in zip(TESTS, log_p, strict=True)}
        return OODScore(score, features, percentiles, self.calibration.verdict(score, log_p))

    def token_map(self, rgb: np.ndarray, indices, surprisal: np.ndarray | None = None) -> np.ndarray:
        """Per token: surprisal minus a photo token's expected surprisal at its local complexity, bits (S, S)."""
        intercept, slope = self.map_line
        surprisal = self.prior.surprisal(indices) if surprisal is None else surprisal
        return surprisal[0] - (intercept + slope * local_bits(rgb))

    def score_and_map(self, rgb: np.ndarray, indices) -> tuple[OODScore, np.ndarray]:
        """``score`` and ``token_map`` of one image, the prior's surprisal computed once for both."""
        surprisal = self.prior.surprisal(indices)
        features = image_features(rgb, indices, self.prior, self.probs, self.complexity_line, self.photo_model, surprisal)
        return self.score_features(features), self.token_map(rgb, indices, surprisal)


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve for telling ``scores_out`` (higher) from ``scores_in``; ties count half."""
    scores_in, scores_out = np.ravel(scores_in), np.ravel(scores_out)
    if not scores_in.size or not scores_out.size:
        raise ValueError("auroc needs at least one score on each side")
    ranks = rankdata(np.concatenate([scores_in, scores_out]))
    n_out = scores_out.size
    u = ranks[scores_in.size:].sum() - n_out * (n_out + 1) / 2
    return float(u / (scores_in.size * n_out))


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """The share of in-distribution scores at or above the threshold that catches ``tpr`` of ``scores_out``."""
    scores_in, scores_out = np.ravel(scores_in), np.ravel(scores_out)
    if not scores_in.size or not scores_out.size:
        raise ValueError("fpr_at_tpr needs at least one score on each side")
    threshold = np.quantile(scores_out, 1 - tpr, method="lower")
    return float((scores_in >= threshold).mean())


def map_error_correlation(token_map: np.ndarray, token_error: np.ndarray) -> float:
    """Spearman rank correlation across tokens between a map and the per-token error (0 when either is constant)."""
    a, b = np.ravel(token_map), np.ravel(token_error)
    if a.shape != b.shape:
        raise ValueError(f"map and error differ in size: {a.shape} vs {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])
