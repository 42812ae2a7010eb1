"""Update rules on a model's (flat) parameters."""
from __future__ import annotations

import numpy as np

from .device import to_host
from .errors import DTypeError, SpecError
from .layers.validation import check_cast, number, show


class SGD:
    """w <- w - lr * v with v <- momentum * v + grad + weight_decay * w (PyTorch's rule);
    at momentum 0, w <- w - lr * (grad + weight_decay * w) and v is left as it is (torch
    keeps no buffer then: momentum switched on later starts from the gradient).

    momentum=0, weight_decay=0 is the lecture's w <- w - eta * grad."""

    def __init__(self, model, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        from .model import Sequential
        if not isinstance(model, Sequential):  # else an AttributeError, maybe at step()
            raise DTypeError(f"SGD: model must be an nnumba Sequential, got {show(model)}")
        self.model = model
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        tiny = float(np.finfo(model.dtype).tiny)  # (not when set later: a schedule decays it)
        if 0 < self.lr < tiny:  # 1e-50 is 0 in float32: not one weight would move
            raise SpecError(f"SGD: lr {self.lr:g} is below the model's {model.dtype.name}'s "
                            f"smallest normal number ({tiny:.4g}): no step would move a "
                            f"weight; use 0 to train nothing")
        self.velocity = None

    def __setattr__(self, name, value):  # a setting is checked when set, later too
        if name in ("lr", "momentum", "weight_decay"):
            value = number("SGD", name, value, 0.0)
            if name == "momentum" and value >= 1:
                raise SpecError(f"SGD: momentum must be a finite number in [0, 1), got "
                                f"{value!r}")
            self._check_range(self.model.dtype, {name: value})
        super().__setattr__(name, value)

    def _check_range(self, dtype, settings=None):
        """A value finite as a Python float can still be inf in the model's dtype
        (1e39 in float32), and the first step would then make every weight NaN; a
        momentum below 1 can round to 1 there (0.99999999 in float32): no decay."""
        dtype = np.dtype(dtype)
        top = float(np.finfo(dtype).max)
        for name, value in (settings or self.config()).items():
            if value > top:
                raise SpecError(f"SGD: {name} {value:g} does not fit the model's {dtype.name}, "
                                f"whose largest value is {top:.4g}")
            if name == "momentum" and dtype.type(value) >= 1:
                below = float(np.nextafter(dtype.type(1), dtype.type(0)))
                raise SpecError(f"SGD: momentum {value!r} is 1 in the model's {dtype.name}: "
                                f"it would never decay; use at most {below:.9g}")

    def step(self):
        """One update of every parameter from its gradient (the rule above); the
        gradients are left as they are (zero_grad() before the next backward)."""
        model = self.model
        params = model.flat_params
        v = self.velocity
        if v is None or v.shape != params.shape:  # the first step, or another model size
            self._check_range(params.dtype)
            self.velocity = model.device.zeros(params.shape, params.dtype)
        elif v.dtype != params.dtype or not model.device.owns(v):
            # the model was converted or moved since: the momentum goes on (torch keeps
            # its buffers across model.double() too), converted, not restarted from zeros
            self._check_range(params.dtype)
            host = to_host(v)
            check_cast("SGD", "the momentum buffer", host, params.dtype,  # not to infinity
                       f"keep the model in {host.dtype.name}")
            self.velocity = model.device.to_device(host.astype(params.dtype))
        t = np.dtype(params.dtype).type  # scalars in the params' dtype keep float32 kernels
        model.device.kernels.sgd_step(params, model.flat_grads, self.velocity,
                                      t(self.lr), t(self.momentum), t(self.weight_decay))
        # what the last forward kept belongs to the old weights (torch refuses it too)
        model._no_backward = ("an optimizer step changed the weights since the last "
                              "forward(): run forward() again before backward()")

    def config(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
