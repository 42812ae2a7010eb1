"""Plugin trial 27 (a video plugin on Conv3d): check_all also runs each example with the
axes input_shape() leaves free at size 1, where a kernel that reads past a one-frame
clip shows."""
import numpy as np
import pytest
from numba import njit, prange

from nnumba import Layer, testing


@njit(parallel=True, cache=False)
def _forward_reads_frame_one(x, y, am, t, hw):
    # planted bug: the loop starts at frame 1 even when T == 1, so a clip of one
    # frame takes the max with the next (sample, channel) plane (past the array's
    # end for the last one)
    for i in prange(y.size):
        base = (i // hw) * t * hw + i % hw
        best = x[base]
        k = 0
        for s in range(1, max(t, 2)):
            v = x[base + s * hw]
            if v > best:
                best = v
                k = 0 if s >= t else s
        y[i] = best
        am[i] = k


@njit(parallel=True, cache=False)
def _backward(dy, am, dx, t, hw):
    for i in prange(dy.size):
        base = (i // hw) * t * hw + i % hw
        for s in range(t):
            dx[base + s * hw] = dy[i] if s == am[i] else dx.dtype.type(0)


class TimeMaxT1Bug(Layer):
    """(N, C, T, H, W) -> (N, C, H, W), the max over T; wrong for T == 1 only."""
    examples = [({}, (2, 3, 4, 2, 3)), ({}, (1, 2, 5, 1, 1))]   # no example has T == 1
    devices = ("cpu",)
    kept_for_backward = ("_am", "_t")

    def input_shape(self):
        return (None, None, None, None)

    def output_shape(self, input_shape):
        c, t, h, w = input_shape
        return (c, h, w)

    def _forward(self, x):
        n, c, t, h, w = x.shape
        y = self._buffer("y", (n, c, h, w))
        am = self._buffer("am", (n, c, h, w), dtype=np.int64)
        _forward_reads_frame_one(x.reshape(x.size), y.reshape(y.size), am.reshape(am.size),
                                 t, h * w)
        self._am, self._t = am, t
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        n, c, h, w = dl_dy.shape
        dx = self._buffer("dx", (n, c, self._t, h, w))
        _backward(dl_dy.reshape(dl_dy.size), self._am.reshape(self._am.size),
                  dx.reshape(dx.size), self._t, h * w)
        return dx


def test_check_all_tries_size_one_on_the_axes_input_shape_leaves_free():
    # The layer is wrong at T == 1 (numpy's max over the axis is the reference) ...
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 1, 2, 3))
    layer = TimeMaxT1Bug().astype("float64")
    assert not np.allclose(layer.forward(x), x.max(axis=2))
    # ... and right at the examples' sizes.
    for _, shape in TimeMaxT1Bug.examples:
        x = np.random.default_rng(1).uniform(-1, 1, shape)
        np.testing.assert_allclose(TimeMaxT1Bug().astype("float64").forward(x), x.max(axis=2))
    # input_shape() says every axis but the batch's is free: the kit should also run
    # each example with a free axis at size 1 (or say that no example covers it).
    with pytest.raises(testing.ConformanceError):
        testing.check_all(TimeMaxT1Bug)
