"""The training set, made ready for the model's device for the length of a fit.

The set is put on the device once (on the CPU it is the caller's array itself,
no copy; 60,000 MNIST images are 188 MB on a GPU) and every shuffled mini-batch
is gathered there by the device's ``gather_rows`` kernel into buffers kept for
the whole fit, from the permutation the trainer's generator draws
(:func:`nnumba.data.batching.batches`), so a seeded run visits the same samples
in the same order on every device.  Batches in order are views.  A set too large
for half the device's free memory is streamed instead: each batch is gathered
on the host and copied over.
"""
from __future__ import annotations

import numpy as np

from ..data.batching import batches


def target_dtype(loss, model_dtype, y) -> np.dtype:
    """The targets' dtype on the device: the loss's own (int64 class labels for
    CrossEntropy) or the model's float dtype, where the labels convert to it
    without loss; otherwise their own dtype, which the loss then refuses clearly."""
    want = np.dtype(getattr(loss, "target_dtype", None) or model_dtype)
    return want if np.can_cast(y.dtype, want, "same_kind") else y.dtype


class Batches:
    """Mini-batches of one training set on one device."""

    def __init__(self, device, x: np.ndarray, y: np.ndarray, batch_size: int, y_dtype):
        self.device, self.n, self.batch_size = device, len(x), int(batch_size)
        self.x_shape, self.y_shape = x.shape[1:], y.shape[1:]
        features = int(np.prod(self.x_shape, dtype=np.int64))
        y_features = int(np.prod(self.y_shape, dtype=np.int64))
        y = np.ascontiguousarray(y, dtype=y_dtype)
        self.x_host = np.ascontiguousarray(x).reshape(self.n, features)
        self.y_host = y.reshape(self.n, y_features)
        self.resident = device.owns(self.x_host) or \
            self.x_host.nbytes + self.y_host.nbytes <= device.free_memory() // 2
        self.x = device.to_device(self.x_host) if self.resident else None
        self.y = device.to_device(self.y_host) if self.resident else None
        k = min(self.batch_size, self.n)
        self._xb = device.empty((k, features), x.dtype)
        self._yb = device.empty((k, y_features), y.dtype)

    def order(self, shuffle: bool, rng, drop_last: bool = False) -> list:
        """This epoch's global batches, as index arrays (a short last one left out
        with ``drop_last``)."""
        return list(batches(self.n, self.batch_size, shuffle=shuffle, rng=rng,
                            drop_last=drop_last))

    def take(self, idx: np.ndarray):
        """(xb, yb) on the device for indices ``idx``; valid until the next take."""
        k = len(idx)
        if k and idx[-1] - idx[0] == k - 1 and (k == 1 or np.all(np.diff(idx) == 1)):
            lo, hi = int(idx[0]), int(idx[-1]) + 1   # consecutive: views, no copy
            xb = self.x[lo:hi] if self.resident else self.device.to_device(self.x_host[lo:hi])
            yb = self.y[lo:hi] if self.resident else self.device.to_device(self.y_host[lo:hi])
        elif self.resident:
            order = self.device.to_device(np.ascontiguousarray(idx, np.int64))
            xb, yb = self._xb[:k], self._yb[:k]   # written in place (a kernel need not return)
            self.device.kernels.gather_rows(self.x, order, xb)
            self.device.kernels.gather_rows(self.y, order, yb)
        else:
            xb = self.device.to_device(self.x_host[idx])
            yb = self.device.to_device(self.y_host[idx])
        return xb.reshape((k,) + self.x_shape), yb.reshape((k,) + self.y_shape)
