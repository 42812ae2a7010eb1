"""Update rules on a model's (flat) parameters."""
from __future__ import annotations

import numpy as np

from .kernels.cpu.optim import sgd_step


class SGD:
    """w <- w - lr * v with v <- momentum * v + grad + weight_decay * w (PyTorch's rule).

    momentum=0, weight_decay=0 is the lecture's w <- w - eta * grad."""

    def __init__(self, model, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"SGD: {name} must be a finite number >= 0, got {value}")
        if momentum >= 1:
            raise ValueError(f"SGD: momentum must be < 1, got {momentum}")
        self.model = model
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.velocity = _zeros_like(model.flat_params)

    def step(self):
        params = self.model.flat_params
        if not isinstance(params, np.ndarray):  # the model is on the GPU
            return self._step_device(params)
        if self.velocity.shape != params.shape or self.velocity.dtype != params.dtype \
                or not isinstance(self.velocity, np.ndarray):
            self.velocity = np.zeros_like(params)  # the model changed dtype or device
        t = params.dtype.type  # float32 scalars keep the kernel in float32
        sgd_step(params, self.model.flat_grads, self.velocity,
                 t(self.lr), t(self.momentum), t(self.weight_decay))

    def _step_device(self, params):
        from .kernels.cuda.optim import sgd_step as sgd_step_cuda
        if isinstance(self.velocity, np.ndarray) or self.velocity.shape != params.shape \
                or self.velocity.dtype != params.dtype:
            self.velocity = _zeros_like(params)  # the model moved or changed dtype
        t = np.dtype(params.dtype).type
        sgd_step_cuda(params, self.model.flat_grads, self.velocity,
                      t(self.lr), t(self.momentum), t(self.weight_decay))

    def config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}


def _zeros_like(a):
    """Zeros of a's shape and dtype where a lives (numpy, or a CUDA device array)."""
    if isinstance(a, np.ndarray):
        return np.zeros_like(a)
    from .device import CUDA
    return CUDA.zeros(a.shape, a.dtype)
