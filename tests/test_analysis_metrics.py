"""analysis.metrics: the error maps on hand-made images with known answers."""

import numpy as np

from analysis.metrics import pixel_error, token_error


def test_error_maps_average_over_rgb_and_over_each_token():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (30, 0, 0)  # one pixel, one channel: pixel error 10
    pe = pixel_error(a, b)
    assert pe.shape == (4, 4) and pe[0, 0] == 10 and pe.sum() == 10
    te = token_error(a, b)
    assert te.shape == (2, 2)
    np.testing.assert_allclose(te, [[2.5, 0], [0, 0]])  # 10 / the token's 4 pixels
