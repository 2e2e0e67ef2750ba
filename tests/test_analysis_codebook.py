"""analysis.codebook: level histograms, entropy, usage and the accumulator on hand-made ids."""

import math

import numpy as np
import pytest
import torch

from analysis.codebook import CodebookStats, code_counts, entropy_bits, extreme_share, level_histograms

LEVELS = (8, 8, 8, 6, 5)


def index(d):
    """The id of integer levels d = (d0..d4), dimension 0 least significant."""
    return d[0] + 8 * d[1] + 64 * d[2] + 512 * d[3] + 3072 * d[4]


def test_level_histograms_of_hand_made_indices():
    ids = [index((0, 0, 0, 0, 0)), index((7, 1, 0, 5, 2)), index((7, 1, 3, 5, 4))]
    hists = level_histograms(ids, LEVELS)
    assert [len(h) for h in hists] == list(LEVELS)
    np.testing.assert_array_equal(hists[0], [1, 0, 0, 0, 0, 0, 0, 2])
    np.testing.assert_array_equal(hists[1], [1, 2, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hists[2], [2, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(hists[3], [1, 0, 0, 0, 0, 2])
    np.testing.assert_array_equal(hists[4], [1, 0, 1, 0, 1])
    assert extreme_share(hists) == pytest.approx([1, 1 / 3, 2 / 3, 1, 2 / 3])


def test_level_histograms_from_weighted_ids_match_the_ids_themselves():
    ids = np.random.default_rng(0).integers(0, 15360, 500)
    weighted = level_histograms(np.arange(15360), LEVELS, weights=code_counts(ids, 15360))
    for a, b in zip(level_histograms(ids, LEVELS), weighted, strict=True):
        np.testing.assert_array_equal(a, b)


def test_entropy_of_uniform_and_degenerate_histograms():
    assert entropy_bits(np.ones(15360)) == pytest.approx(math.log2(15360))
    assert entropy_bits([0, 5, 0, 5]) == pytest.approx(1.0)
    assert entropy_bits([0, 7, 0]) == 0.0
    assert entropy_bits([0, 0]) == 0.0


def test_stats_usage_dead_codes_top_codes_and_curve():
    stats = CodebookStats(LEVELS, tokens_per_image=4)
    stats.update(np.array([[0, 0, 1, 2], [2, 2, 2, 3]]))  # a batch: two images
    stats.update(torch.tensor([3, 3, 3, 3]))  # one image, as a tensor
    r = stats.result()
    assert r.counts.dtype == np.float64 and r.counts.shape == (15360,)
    np.testing.assert_array_equal(r.counts[:5], [2, 1, 4, 5, 0])
    assert r.num_images == 3 and r.num_tokens == 12
    assert r.codes_seen == 4 and r.usage == pytest.approx(4 / 15360)
    assert r.dead_codes == 15356
    assert r.dead_code_ids[:3].tolist() == [4, 5, 6] and len(r.dead_code_ids) == 15356
    assert r.top_codes == [(3, 5), (2, 4), (0, 2), (1, 1)]
    assert r.usage_curve == [(1, 3), (2, 4), (3, 4)]
    p = np.array([2, 1, 4, 5]) / 12
    assert r.entropy_bits == pytest.approx(-(p * np.log2(p)).sum())
    assert r.perplexity == pytest.approx(2 ** r.entropy_bits)
    assert r.max_entropy_bits == pytest.approx(13.907, abs=1e-3)


def test_uniform_usage_gives_maximum_entropy_and_no_dead_codes():
    stats = CodebookStats(LEVELS, tokens_per_image=15360)
    stats.update(np.arange(15360))
    r = stats.result()
    assert r.usage == 1.0 and r.dead_codes == 0
    assert r.entropy_bits == pytest.approx(r.max_entropy_bits)
    assert r.perplexity == pytest.approx(15360)
    # every level of every dimension is used equally: 2 of L levels are extreme
    assert r.extreme_share == pytest.approx([2 / n for n in LEVELS])


def test_reset_and_bad_input():
    stats = CodebookStats(LEVELS, tokens_per_image=2)
    stats.update([1, 2])
    stats.reset()
    r = stats.result()
    assert r.num_images == 0 and r.counts.sum() == 0 and r.entropy_bits == 0.0
    with pytest.raises(ValueError, match="whole number"):
        stats.update([1, 2, 3])
    with pytest.raises(ValueError, match="0..15359"):
        stats.update([1, 15360])
