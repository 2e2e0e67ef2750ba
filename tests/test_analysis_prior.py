"""analysis.prior: context shapes, counts, a normalized smoothed prior, and what it learns."""

import math

import numpy as np
import pytest

from analysis.prior import ContextPrior, batch_grids, context_shapes, fit_counts, token_grids

LEVELS = (3, 2)  # 6 ids: small enough to enumerate every token


def stripes(n: int = 4, side: int = 8) -> np.ndarray:
    """n grids whose rows alternate between ids 1 and 4."""
    rows = np.where(np.arange(side) % 2 == 0, 1, 4)
    return np.broadcast_to(rows[None, :, None], (n, side, side)).copy()


def test_token_grids_accept_one_image_or_many():
    assert token_grids(np.arange(16)).shape == (1, 4, 4)
    assert token_grids(np.zeros((4, 4))).shape == (1, 4, 4)
    assert token_grids(np.zeros((3, 4, 4))).shape == (3, 4, 4)
    assert batch_grids(np.zeros((3, 16))).shape == (3, 4, 4)
    with pytest.raises(ValueError, match="square"):
        token_grids(np.arange(15))
    with pytest.raises(ValueError):
        token_grids(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        batch_grids(np.zeros((3, 15)))


def test_counts_cover_every_token_once_per_digit():
    ids = np.random.default_rng(0).integers(0, 6, (5, 8, 8))
    counts = fit_counts(ids, LEVELS)
    assert [c.shape for c in counts] == context_shapes(LEVELS) == [(64, 1, 3), (27, 3, 2)]
    assert all(c.sum() == ids.size for c in counts)
    # digit 0 of every top-left token sees three outside neighbours (value 3 -> the last context)
    assert counts[0][63].sum() == 5


def test_every_context_gives_a_normalized_distribution():
    ids = np.random.default_rng(1).integers(0, 6, (20, 6, 6))
    prior = ContextPrior.fit(ids, LEVELS)
    for neighbours in ([0, 0, 0], [5, 2, 3], [1, 1, 4]):  # up-left, up, left ids
        grids = np.array([[[neighbours[0], neighbours[1]], [neighbours[2], candidate]] for candidate in range(6)])
        bits = prior.surprisal(grids)[:, 1, 1]
        assert np.exp2(-bits).sum() == pytest.approx(1.0)


def test_it_learns_the_structure_and_backs_off_smoothly():
    prior = ContextPrior.fit(stripes(), LEVELS)
    assert prior.surprisal(stripes(1))[0, 1:].mean() < 0.1  # after the first row, each token is near certain
    noise = np.random.default_rng(2).integers(0, 6, (1, 8, 8))
    assert prior.surprisal(noise).mean() > 3  # unseen contexts: costly, but finite
    assert np.isfinite(prior.surprisal(noise)).all()
    loose = ContextPrior(prior.levels, prior.counts, strength=1000.0)
    assert loose.surprisal(stripes(1))[0, 1:].mean() > prior.surprisal(stripes(1))[0, 1:].mean()


def test_counts_must_match_the_levels():
    counts = fit_counts(stripes(), LEVELS)
    with pytest.raises(ValueError, match="do not match"):
        ContextPrior((3, 3), tuple(counts))


def test_a_seen_context_follows_its_counts():
    ids = stripes(50)
    ids[:, 1, 1] = np.where(np.arange(50) < 10, 1, 4)  # below a 1-row: 4 four times out of five
    prior = ContextPrior.fit(ids, LEVELS)
    grid = ids[:1].copy()
    grid[0, 1, 1] = 4
    assert prior.surprisal(grid)[0, 1, 1] < math.log2(1 / 0.5)
