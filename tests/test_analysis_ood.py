"""analysis.ood: features, tail probabilities, calibration, verdicts, the map, and the detection metrics."""

import json
import math

import numpy as np
import pytest

from analysis.ood import (IN_DISTRIBUTION, OUT_OF_DISTRIBUTION, TAIL_FROM, TESTS, UNUSUAL, Calibration, Features,
                          OODScore, auroc, fpr_at_tpr, histogram_kl, local_bits, map_error_correlation, png_bits,
                          tail_values, unigram_probabilities, upper_tail_log10_p)
from analysis.ood import _tail as tail_of
from analysis.photo_features import GROUPS


LINE = (1.7, 0.14)  # a photo's prior bits against its PNG bits


TYPICAL = {group: float(np.log(len(names))) for group, names in GROUPS.items()}  # a photo's squared distance: about its dimension


SLOPE, FACES = -2.85, 0  # a photo's power-spectrum slope and face-detector windows


def features(prior_bits: float, png: float, kl: float, distances: dict | None = None, slope: float = SLOPE,
             faces: int = FACES) -> Features:
    return Features(prior_bits, png, kl, LINE[0] + LINE[1] * png, {**TYPICAL, **(distances or {})}, slope, faces)


def photo_like_features(n: int = 400, seed: int = 0) -> list[Features]:
    rng = np.random.default_rng(seed)
    png = rng.normal(63, 8, n)
    return [features(float(LINE[0] + LINE[1] * b + rng.normal(0, 0.4)), float(b), float(rng.normal(2.3, 0.3)),
                     {g: float(np.log(rng.chisquare(len(names)))) for g, names in GROUPS.items()},
                     float(rng.normal(SLOPE, 0.4)), int(rng.poisson(0.4))) for b in png]


def test_png_and_local_bits_rank_flat_below_noise(rgb):
    flat = np.full((96, 96, 3), 90, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert png_bits(flat, 2304) < 2 < png_bits(rgb, 2304) < png_bits(noise, 2304)
    assert 80 < png_bits(noise, 2304) < 100  # incompressible: about 96 bits (4 pixels x 24 bits) per token
    assert local_bits(flat).shape == (48, 48)
    assert local_bits(flat).max() < 0.2  # only the smoothing's cost
    assert 80 < local_bits(noise).mean() < 100
    edge = local_bits(rgb)
    assert edge[15, 14] > edge[20, 20]  # the token on the red square's edge costs more than its inside


def test_histogram_kl():
    probs = unigram_probabilities(np.array([10, 10, 10, 10]), alpha=0.5)
    assert histogram_kl([0, 1, 2, 3], probs) == pytest.approx(0.0)
    assert histogram_kl([0, 0, 0, 0], probs) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        unigram_probabilities([1, 2], alpha=0)


def test_upper_tail_p_is_empirical_then_exponential():
    values = np.arange(1.0, 101.0)
    tail = tail_of(values)

    def p(x):
        return 10 ** upper_tail_log10_p(x, tail)

    assert p(-1e9) == pytest.approx(1.0)
    assert p(50.0) == pytest.approx(52 / 101)  # 51 values >= 50, plus one
    start = tail[1]
    assert p(start + 1e-9) == pytest.approx(1 - TAIL_FROM / 100, rel=0.01)
    xs = np.linspace(0, 400, 200)
    log_ps = [upper_tail_log10_p(x, tail) for x in xs]
    assert all(a >= b for a, b in zip(log_ps, log_ps[1:]))
    assert log_ps[-1] < -6
    assert math.isfinite(upper_tail_log10_p(1e12, tail))  # far out, still ordered, never p = 0


def test_calibration_thresholds_sit_at_the_photos_percentiles():
    features = photo_like_features()
    cal = Calibration.fit(features)
    scores = np.array([cal.combine(tail_values(f))[0] for f in features])
    unusual, outside = cal.thresholds
    assert unusual < outside
    assert (scores > unusual).mean() == pytest.approx(0.05, abs=0.01)
    assert (scores > outside).mean() == pytest.approx(0.01, abs=0.006)
    with pytest.raises(ValueError):
        Calibration(np.zeros((5, len(TESTS))), (1.0, 2.0))


def test_verdicts_name_the_feature_that_drove_them():
    cal = Calibration.fit(photo_like_features())
    typical = photo_like_features(1, seed=5)[0]
    smooth = features(1.0, 60.0, 2.3)  # very predictable tokens for its PNG size
    text = features(11.0, 30.0, 2.3)  # unpredictable tokens for its few pixel bits
    mix = features(10.5, 63.0, 9.0)
    noise = features(18.0, 120.0, 2.3)
    dark = features(10.5, 63.0, 2.3, {"light": np.log(200.0)})
    tiled = features(10.5, 63.0, 2.3, {"spectrum": np.log(150.0)})
    enlarged = features(10.5, 63.0, 2.3, slope=-5.5)
    portrait = features(10.5, 63.0, 2.3, faces=20)
    for f, name in ((smooth, "simple"), (text, "excess"), (mix, "token_mix"), (noise, "complex"), (dark, "light"),
                    (tiled, "scale"), (enlarged, "soft"), (portrait, "face")):
        v = cal.verdict(*cal.combine(tail_values(f)))
        assert (v.label, v.feature) == (OUT_OF_DISTRIBUTION, name)
        assert next(t.reason for t in TESTS if t.name == name) in v.explanation
        assert "further out than all 400 calibration photos" in v.explanation
    assert cal.verdict(*cal.combine(tail_values(typical))).label in (IN_DISTRIBUTION, UNUSUAL)
    assert cal.verdict(0.0, np.zeros(len(TESTS))).label == IN_DISTRIBUTION
    near = cal.verdict(0.5 * cal.thresholds[1], np.log10([0.5, 0.5, 0.04] + [0.5] * (len(TESTS) - 3)))
    assert near.label == IN_DISTRIBUTION and near.feature == "token_mix"  # how far in, and on what, said too
    assert "0.50 times the out-of-distribution threshold" in near.explanation
    assert f"{TESTS[2].title}, is above 96% of theirs" in near.explanation
    v = cal.verdict(cal.thresholds[0] + 0.01, np.log10([0.5, 0.5, 0.004] + [0.5] * (len(TESTS) - 3)))
    assert v.label == UNUSUAL and v.feature == "token_mix" and "beyond 99.6% of the calibration photos" in v.explanation
    far = cal.verdict(3 * cal.thresholds[1], np.log10([1e-9] * len(TESTS)))
    assert far.label == OUT_OF_DISTRIBUTION and "3.00 times the out-of-distribution threshold" in far.explanation


def test_ood_score_json():
    v = Calibration.fit(photo_like_features()).verdict(50.0, np.log10([1e-6] + [0.5] * (len(TESTS) - 1)))
    s = OODScore(5.0, features(10.0, 30.0, 3.0), {t.name: 50.0 for t in TESTS}, v)
    out = json.loads(json.dumps(s.to_json()))
    assert out["score"] == 5.0
    assert out["features"]["complexity_corrected"] == -20.0
    assert out["features"]["excess_bits"] == pytest.approx(10.0 - (1.7 + 0.14 * 30))
    assert out["features"]["photo_distances"] == TYPICAL
    assert (out["features"]["spectrum_slope"], out["features"]["face_windows"]) == (SLOPE, FACES)
    assert out["verdict"] == {"label": OUT_OF_DISTRIBUTION, "explanation": v.explanation, "feature": "complexity"}


def test_auroc_and_fpr_at_tpr():
    assert auroc([1, 2, 3], [4, 5]) == 1.0
    assert auroc([4, 5], [1, 2, 3]) == 0.0
    assert auroc([1, 2, 3], [1, 2, 3]) == pytest.approx(0.5)
    assert auroc([0, 2], [1, 3]) == pytest.approx(0.75)
    assert fpr_at_tpr(np.arange(100), np.arange(100, 120)) == 0.0
    assert fpr_at_tpr(np.arange(100), np.arange(100)) == pytest.approx(0.96)  # threshold 4 catches 95 of 100
    with pytest.raises(ValueError):
        auroc([], [1])
    with pytest.raises(ValueError):
        fpr_at_tpr([1], [])


def test_map_error_correlation():
    a = np.arange(16.0).reshape(4, 4)
    assert map_error_correlation(a, a**2) == pytest.approx(1.0)
    assert map_error_correlation(a, -a) == pytest.approx(-1.0)
    assert map_error_correlation(np.zeros((4, 4)), a) == 0.0
    with pytest.raises(ValueError):
        map_error_correlation(a, np.zeros(3))
    assert math.isfinite(map_error_correlation(a, np.random.default_rng(0).random((4, 4))))
