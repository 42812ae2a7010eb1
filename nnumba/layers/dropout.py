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
import math

import numpy as np

from .contract import Layer, layer_hook
from .validation import flag, integer, number


class Dropout(Layer):
    """In training, each value is zeroed with probability p and the others scaled by
    1/(1-p); in eval mode, the identity."""
    examples = [({"p": 0.0}, (3, 4)),
                ({"p": 0.5, "seed": 1, "resample": False}, (4, 6)),
                ({"p": 0.3, "resample": False}, (2, 3, 4, 4))]

    def __init__(self, p: float = 0.5, seed: int | None = None, resample: bool = True):
        super().__init__()
        self.p = number("Dropout", "p", p, 0.0, 1.0)
        self.seed = None if seed is None else integer("Dropout", "seed", seed, 0, maximum=None)
        self.resample = flag("Dropout", "resample", resample)
        self._keep = self._mask = None  # which units stay (host), and that as a factor

    def reset_parameters(self, rng):
        # An explicit seed wins; otherwise the model's generator seeds ours.
        self._rng = np.random.default_rng(
            self.seed if self.seed is not None else rng.integers(2**63))
        self._keep = self._mask = None

    def random_generator(self):
        return self._rng

    def for_rank(self, rank: int, size: int):
        """Draw from a stream of this rank's own, seeded from this generator and the
        rank: MPI ranks (which share one seed) then drop independent units of their
        samples, and a run stays reproducible. ``size``: the number of ranks."""
        self._rng = np.random.default_rng([int(self._rng.integers(2**63)), rank, size])
        self._keep = self._mask = None

    def new_mask(self):
        """Forget the kept mask: the next training forward draws a new one."""
        self._keep = self._mask = None

    def flops(self, input_shape):
        n = math.prod(input_shape)
        active = n if self.p > 0 else 0
        return active, 0, active

    def _forward(self, x):
        # The mask is drawn on the host from the layer's own generator (a seeded run
        # drops the same units on every device) and copied to the device once per draw.
        self._active = self.training and self.p > 0.0
        if not self._active:
            return x
        if self.resample or self._keep is None or self._keep.shape != x.shape:
            self._keep = self._rng.random(x.shape, dtype=self.dtype) >= self.p
            self._mask = None
        if self._mask is None or self._mask.dtype != x.dtype:  # a kept mask, converted or moved
            scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
            self._mask = self.device.to_device(self._keep.astype(self.dtype) *
                                               self.dtype.type(scale))
        y = self._buffer("y", x.shape)
        self.kernels.multiply(x.reshape(x.size), self._mask.reshape(x.size), y.reshape(x.size))
        return y

    def _backward(self, dl_dy):
        if not self._active:
            return dl_dy
        dx = self._buffer("dx", dl_dy.shape)
        n = dl_dy.size
        self.kernels.multiply(dl_dy.reshape(n), self._mask.reshape(n), dx.reshape(n))
        return dx

    def set_device(self, device):
        super().set_device(device)
        self._mask = None


nnumba_register_layers = layer_hook(Dropout)
