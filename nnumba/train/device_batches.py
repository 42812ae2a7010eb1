"""Mini-batches for a model on the GPU, drawn in the same order as on the CPU.

The training set is copied to the device once per ``fit`` (60,000 MNIST images
are 188 MB) and each shuffled batch is gathered there by one kernel from the
permutation the trainer's generator draws, exactly as ``data.batching`` draws it
on the CPU, so a seeded run visits the same samples in the same order on both
devices. In order (no shuffle), batches are views of the device copy. A set too
large for half the free device memory is streamed instead: each batch is
gathered on the host and copied into a reused device buffer.
"""
from __future__ import annotations

import numpy as np

from ..data.batching import batches, iterate


def target_dtype(loss, model_dtype):
    """Targets on the device: int64 class labels where the loss asks for them
    (CrossEntropy), otherwise the model's float dtype (as the CPU losses convert)."""
    return np.dtype(getattr(loss, "device_target_dtype", None) or model_dtype)


class DeviceData:
    """One training set made ready for the GPU for the length of a fit."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, y_dtype):
        from ..device import CUDA
        self.n, self.batch_size = len(x), int(batch_size)
        self.x_shape = x.shape[1:]
        self.features = int(np.prod(self.x_shape, dtype=np.int64))
        self.y_shape = y.shape[1:]
        self.y_features = int(np.prod(self.y_shape, dtype=np.int64))
        self.x_host, self.y_host = x, y
        self.y_dtype = np.dtype(y_dtype)
        need = x.nbytes + self.n * self.y_features * self.y_dtype.itemsize
        self.resident = need <= _free_device_bytes() // 2
        if self.resident:
            self.x = CUDA.to_device(x.reshape(self.n, self.features))
            self.y = CUDA.to_device(np.ascontiguousarray(y, self.y_dtype)
                                    .reshape(self.n, self.y_features))
        bs = min(self.batch_size, self.n)
        self.xb = CUDA.empty((bs, self.features), x.dtype)
        self.yb = CUDA.empty((bs, self.y_features), self.y_dtype)
        self.idx = CUDA.empty(bs, np.int64)

    def _shaped(self, xb, yb, k):
        return (xb.reshape((k,) + self.x_shape), yb.reshape((k,) + self.y_shape))

    def batches(self, shuffle: bool, rng):
        """(xb, yb) device arrays for one epoch; each is valid until the next one."""
        from ..kernels.cuda.arrays import gather_rows
        if not self.resident:
            for xh, yh in iterate(self.x_host, self.y_host, self.batch_size, shuffle, rng):
                k = len(xh)
                xb, yb = self.xb[:k], self.yb[:k]
                xb.copy_to_device(np.ascontiguousarray(xh).reshape(k, self.features))
                yb.copy_to_device(np.ascontiguousarray(yh, self.y_dtype).reshape(k, -1))
                yield self._shaped(xb, yb, k)
            return
        if not shuffle:
            for s in range(0, self.n, self.batch_size):
                k = min(self.batch_size, self.n - s)
                yield self._shaped(self.x[s:s + k], self.y[s:s + k], k)
            return
        for order in batches(self.n, self.batch_size, shuffle=True, rng=rng):
            k = len(order)
            idx, xb, yb = self.idx[:k], self.xb[:k], self.yb[:k]
            idx.copy_to_device(order.astype(np.int64))  # a permutation: in range
            gather_rows(self.x, idx, xb)
            gather_rows(self.y, idx, yb)
            yield self._shaped(xb, yb, k)


def _free_device_bytes() -> int:
    from numba import cuda
    try:
        free, _ = cuda.current_context().get_memory_info()
    except Exception:  # noqa: BLE001 - unknown: assume a small card
        return 2**31
    return int(min(free, 2**62))
