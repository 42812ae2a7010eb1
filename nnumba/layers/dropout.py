"""Dropout: in training, zero each input element with probability p and scale the
survivors by 1/(1-p), so the expected output equals the input; in eval mode, the
identity (what inference with AlexNet uses).

When is a new mask drawn? With ``resample=True`` (the default, for training) at
every forward in training mode; the backward that follows uses the mask of that
forward. With ``resample=False`` the mask is drawn once per input shape and kept
until ``new_mask()`` or ``reset_parameters`` — a fixed mask makes forward a fixed
function, so gradients can be checked against finite differences (the conformance
kit's examples use it, and p=0).

The mask comes from the layer's own generator, seeded by ``seed`` when given, else
from ``reset_parameters(rng)`` (``Sequential(..., seed=s)`` or ``nnumba.build``), so
a seeded training run drops the same units every time.
"""
import numpy as np

from ..hookspecs import hookimpl
from .base import Layer, default_rng


class Dropout(Layer):
    examples = [({"p": 0.0}, (3, 4)),
                ({"p": 0.5, "seed": 1, "resample": False}, (4, 6)),
                ({"p": 0.3, "resample": False}, (2, 3, 4, 4))]

    def __init__(self, p: float = 0.5, seed: int | None = None, resample: bool = True):
        super().__init__()
        if not isinstance(p, (int, float, np.number)) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.seed = None if seed is None else int(seed)
        self.resample = bool(resample)
        self._mask = None
        self._device_mask = None
        self.reset_parameters(default_rng())

    def reset_parameters(self, rng):
        # An explicit seed wins; otherwise the model's generator seeds ours.
        self._rng = np.random.default_rng(
            self.seed if self.seed is not None else rng.integers(2**63))
        self._mask = None
        self._device_mask = None

    def new_mask(self):
        """Forget the kept mask: the next training forward draws a new one."""
        self._mask = None
        self._device_mask = None

    def _draw_mask(self, shape):
        keep = self._rng.random(shape, dtype=self.dtype) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return keep.astype(self.dtype) * self.dtype.type(scale)

    def _forward(self, x):
        self._active = self.training and self.p > 0.0
        if not self._active:
            return x
        if self.resample or self._mask is None or self._mask.shape != x.shape \
                or self._mask.dtype != x.dtype:
            self._mask = self._draw_mask(x.shape)
        return np.multiply(x, self._mask, out=self._buffer("y", x.shape))

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        if not self._active:
            return dl_dy
        return np.multiply(dl_dy, self._mask, out=self._buffer("dx", dl_dy.shape))

    # ---- on the GPU: the mask is drawn on the host from the same generator (so a
    # seeded run drops the same units as on the CPU) and copied over; one copy of
    # the activation's size per training step.
    def _forward_cuda(self, x):
        self._active = self.training and self.p > 0.0
        if not self._active:
            return x
        if self.resample or self._mask is None or self._mask.shape != x.shape \
                or self._mask.dtype != x.dtype:
            self._mask = self._draw_mask(x.shape)
            self._device_mask = None
        if self._device_mask is None:
            self._device_mask = self._device_buffer("mask", x.shape, keep=True)
            self._device_mask.copy_to_device(self._mask)
        from ..kernels.cuda.arrays import multiply
        y = self._device_buffer("y", x.shape)
        multiply(x.reshape(x.size), self._device_mask.reshape(x.size), y.reshape(x.size))
        return y

    def _backward_cuda(self, dl_dy):
        if not self.needs_input_grad:
            return None
        if not self._active:
            return dl_dy
        from ..kernels.cuda.arrays import multiply
        dx = self._device_buffer("dx", dl_dy.shape)
        n = dl_dy.size
        multiply(dl_dy.reshape(n), self._device_mask.reshape(n), dx.reshape(n))
        return dx

    def _set_device(self, device):
        super()._set_device(device)
        self._device_mask = None


@hookimpl
def nnumba_register_layers():
    return {"Dropout": Dropout}
