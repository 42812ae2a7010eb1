"""Update rules on a model's (flat) parameters."""
from __future__ import annotations

import numpy as np


class SGD:
    """w <- w - lr * v with v <- momentum * v + grad + weight_decay * w (PyTorch's rule).

    momentum=0, weight_decay=0 is the lecture's w <- w - eta * grad."""

    def __init__(self, model, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"SGD: {name} must be a finite number >= 0, got {value!r}")
        if momentum >= 1:
            raise ValueError(f"SGD: momentum must be < 1, got {momentum}")
        self.model = model
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.velocity = None

    def step(self):
        model = self.model
        params = model.flat_params
        v = self.velocity
        if v is None or v.shape != params.shape or v.dtype != params.dtype \
                or not model.device.owns(v):
            self.velocity = model.device.zeros(params.shape, params.dtype)  # moved or converted
        t = np.dtype(params.dtype).type  # scalars in the params' dtype keep float32 kernels
        model.device.kernels.sgd_step(params, model.flat_grads, self.velocity,
                                      t(self.lr), t(self.momentum), t(self.weight_decay))

    def config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
