"""FSQ invariants: the implicit codebook, index round trips, straight-through gradients, bf16 safety."""

import itertools

import pytest
import numpy as np
import torch

from qkvae import fsq

LEVELS = (8, 8, 8, 6, 5)


def test_codebook_size_and_uniqueness():
    book = fsq.implicit_codebook(LEVELS)
    assert book.shape == (15360, 5)
    assert book.dtype == torch.float32
    assert len(torch.unique(book, dim=0)) == 15360


@pytest.mark.parametrize("d,L", list(enumerate(LEVELS)))
def test_grid_membership(d, L):
    """Each dimension takes exactly L values k / (L // 2); even levels are asymmetric (-4..3 for 8)."""
    half = L // 2
    expected = torch.arange(-half, L - half, dtype=torch.float32) / half
    assert torch.equal(torch.unique(fsq.implicit_codebook(LEVELS)[:, d]), expected)


def test_round_trip_all_ids():
    ids = torch.arange(15360)
    assert torch.equal(fsq.codes_to_indices(fsq.indices_to_codes(ids, LEVELS), LEVELS), ids)


def test_index_order_dimension_zero_least_significant():
    assert fsq.basis(LEVELS).tolist() == [1, 8, 64, 512, 3072]
    codes = fsq.indices_to_codes(torch.tensor([1, 8, 3072]), LEVELS)
    low = torch.tensor([-1.0, -1.0, -1.0, -1.0, -1.0])
    # id 1 is one level up in dimension 0 only; id 3072 one level up in dimension 4 only
    assert torch.equal(codes[0] != low, torch.tensor([True, False, False, False, False]))
    assert torch.equal(codes[2] != low, torch.tensor([False, False, False, False, True]))


def test_quantize_lands_on_grid_and_covers_every_level():
    z = torch.linspace(-6, 6, 2001).unsqueeze(-1).expand(-1, 5)
    codes = fsq.quantize(z, LEVELS)
    for d, L in enumerate(LEVELS):
        assert len(torch.unique(codes[:, d])) == L
    ids = fsq.codes_to_indices(codes, LEVELS)
    assert ids.min() == 0 and ids.max() == 15359


def test_bound_centre():
    """bound(0) rounds to the centre level: 0 for odd levels, -0.5 -> 0 step for even ones."""
    out = fsq.bound(torch.zeros(1, 5), LEVELS).round()
    assert out.tolist() == [[0.0, 0.0, 0.0, 0.0, 0.0]]


def test_straight_through_gradient():
    z = torch.randn(4, 5, requires_grad=True)
    fsq.quantize(z, LEVELS).sum().backward()
    # d/dz of round_ste(bound(z)) / half_width equals bound'(z) / half_width, which is > 0
    assert z.grad is not None
    assert torch.all(z.grad > 0)


def test_bf16_inputs_never_leave_the_codebook():
    """Rounding in bf16 once produced id 15360 with these levels (vector-quantize-pytorch #107)."""
    values = torch.tensor([-1e4, -20.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 20.0, 1e4])
    grid = torch.tensor(list(itertools.product(values, repeat=2)))
    z = torch.cat([grid, grid[:, :1], grid], dim=1)[:, :5].to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes = fsq.quantize(z, LEVELS)
    assert codes.dtype == torch.float32
    ids = fsq.codes_to_indices(codes, LEVELS)
    assert ids.min() >= 0 and ids.max() <= 15359
    assert torch.equal(ids, fsq.codes_to_indices(fsq.quantize(z.float(), LEVELS), LEVELS))
    assert ids.max() == 15359 and ids.min() == 0


def test_digits_invert_the_mixed_radix_index_for_arrays_and_tensors():
    d = [(0, 0, 0, 0, 0), (7, 0, 0, 0, 0), (1, 2, 3, 4, 4), (7, 7, 7, 5, 4)]
    ids = [x[0] + 8 * x[1] + 64 * x[2] + 512 * x[3] + 3072 * x[4] for x in d]
    assert ids[-1] == 15359
    out = fsq.indices_to_digits(ids, LEVELS)
    assert isinstance(out, np.ndarray) and out.tolist() == [list(x) for x in d]
    t = fsq.indices_to_digits(torch.tensor(ids).view(2, 2), LEVELS)
    assert isinstance(t, torch.Tensor) and t.shape == (2, 2, 5) and t.view(-1, 5).tolist() == [list(x) for x in d]
    assert fsq.digits_to_indices(out, LEVELS).tolist() == ids
    everything = torch.arange(15360)
    assert torch.equal(fsq.digits_to_indices(fsq.indices_to_digits(everything, LEVELS), LEVELS), everything)


def test_with_digit_and_lower_digits_are_the_mixed_radix_arithmetic():
    levels = (8, 8, 8, 6, 5)
    ids = np.arange(15360)
    digits = fsq.indices_to_digits(ids, levels)
    for index in (0, 1, 777, 15359):
        for dim, n in enumerate(levels):
            moved = fsq.with_digit(index, dim, n - 1, levels)
            expected = digits[index].copy()
            expected[dim] = n - 1
            assert (digits[moved] == expected).all()
    for k in range(len(levels) + 1):
        np.testing.assert_array_equal(fsq.lower_digits(ids, k, levels), fsq.digits_to_indices(
            np.where(np.arange(len(levels)) < k, digits, 0), levels))
    assert fsq.as_indices(torch.tensor([[1, 2]])).dtype == np.int64
