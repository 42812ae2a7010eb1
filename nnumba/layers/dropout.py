"""Dropout: in training, zero each input element with probability p and scale the
survivors by 1/(1-p), so the expected output equals the input; in eval mode, the
identity (what inference with AlexNet uses).

When is a new mask drawn? With ``resample=True`` (the default, for training) at
every forward in training mode; the backward that follows uses the mask of that
forward. With ``resample=False`` each input shape has its mask (a short last batch
its own), kept until ``new_mask()`` or ``reset_parameters`` — a fixed mask makes
forward a fixed function, so gradients can be checked against finite differences
(the conformance kit's examples use it, and p=0). A kept mask is a function of the
generator's state and the shape, and leaves the generator as it is: a resumed run
(which restores that state) keeps the masks of the run it continues.

``p`` may change after construction (a schedule): it is checked as the
constructor checks it, and ``spec()`` and a saved model hold the new value.

The mask comes from the layer's own generator, seeded by ``seed`` when given, else
from ``reset_parameters(rng)`` (``Sequential(..., seed=s)`` or ``nnumba.build``), so
a seeded training run drops the same units every time.
"""
import copy
import math

import numpy as np

from ..errors import SpecError
from ..jsonfile import jsonable
from .contract import Layer, layer_hook
from .streams import rank_stream
from .validation import flag, integer, number


class Dropout(Layer):
    """In training, each value is zeroed with probability p and the others scaled by
    1/(1-p); in eval mode, the identity.

    ``seed``: the layer's own generator's seed (None: drawn from the model's seed,
    so a seeded model drops the same units on every run and device); ``resample``:
    True draws a new mask at every training forward, False keeps one per input shape
    until ``new_mask()`` (a fixed function, for gradient checks)."""
    examples = [({"p": 0.0}, (3, 4)),
                ({"p": 0.5, "seed": 1, "resample": False}, (4, 6)),
                ({"p": 0.3, "resample": False}, (2, 3, 4, 4))]

    def __init__(self, p: float = 0.5, seed: int | None = None, resample: bool = True):
        super().__init__()
        self.p = p
        self.seed = None if seed is None else integer("Dropout", "seed", seed, 0, maximum=None)
        self.resample = flag("Dropout", "resample", resample)
        self._kept, self._mask = {}, None  # {shape: kept mask}, and the last forward's

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value):  # checked, and what spec() and a saved model hold
        if "p" not in self._config and "_p" in self.__dict__:
            # a subclass naming it otherwise (rate=...): its spec would lose a new p
            raise SpecError(f"{type(self).__name__}: p comes from its constructor's "
                            f"arguments {sorted(self._config)}, which its spec keeps; "
                            f"build a new layer to change it")
        self._p = number("Dropout", "p", value, 0.0, 1.0)
        if "p" in self._config:
            self._config["p"] = jsonable(value)  # as the constructor records it: 0 stays 0
        self._kept = {}  # masks of the old p

    def reset_parameters(self, rng):
        # An explicit seed wins; otherwise the model's generator seeds ours.
        self._rng = np.random.default_rng(
            self.seed if self.seed is not None else rng.integers(2**63))
        self._kept, self._mask = {}, None

    def random_generator(self):
        return self._rng

    def for_rank(self, rank: int, size: int):
        """This MPI rank's own stream (:func:`.streams.rank_stream`), and no mask kept
        from the shared one. ``size``: the number of ranks."""
        rank_stream(self._rng, rank, size)
        self._kept, self._mask = {}, None

    def new_mask(self):
        """Forget the kept masks: the next training forward draws new ones."""
        self._rng.integers(2**63)  # a kept mask is a function of the generator's state
        self._kept, self._mask = {}, None

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
        if self.resample:
            self._mask = self._factor(self._rng, x.shape)
        else:
            self._mask = self._kept.get(x.shape)
            if self._mask is None or self._mask.dtype != x.dtype:  # new, converted or moved
                if len(self._kept) >= 8:  # (a mask is drawn again the same: only a cache)
                    self._kept.clear()
                seed = int(copy.deepcopy(self._rng).integers(2**63))  # ours left as it is
                self._mask = self._kept[x.shape] = self._factor(
                    np.random.default_rng([seed, *x.shape]), x.shape, np.float64)
        y = self._buffer("y", x.shape)
        self.kernels.multiply(x.reshape(x.size), self._mask.reshape(x.size), y.reshape(x.size))
        return y

    def _factor(self, rng, shape, dtype=np.float32):
        """A mask drawn from ``rng``: 0 for a dropped unit, else 1/(1-p), on the device.
        Drawn in ``dtype``, not the model's: a float64 model drops the units a float32
        one does (a run checked again in float64 is the same run)."""
        keep = rng.random(shape, dtype=dtype) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return self.device.to_device(keep.astype(self.dtype) * self.dtype.type(scale))

    def _backward(self, dl_dy):
        if not self._active:
            return dl_dy
        dx = self._buffer("dx", dl_dy.shape)
        n = dl_dy.size
        self.kernels.multiply(dl_dy.reshape(n), self._mask.reshape(n), dx.reshape(n))
        return dx

    def __setstate__(self, state):  # one pickled before p was a property: _p, masks by shape
        if "p" in state:
            state["_p"] = state.pop("p")
        state.pop("_keep", None)
        state.setdefault("_kept", {})
        self.__dict__.update(state)

    def set_device(self, device):
        super().set_device(device)
        self._kept, self._mask = {}, None


nnumba_register_layers = layer_hook(Dropout)
