"""The layer kit's gradient check in evaluation mode, for a layer whose two modes
compute otherwise (state, as a batch norm's running statistics, or draws, as a
Dropout's): its backward there is the gradient of what that forward computed, the
state a constant (docs/plugins.md), which the training-mode check never sees."""
from __future__ import annotations

import numpy as np

from .failures import _backward, _compare, numeric_gradient, same_draws
from .inputs import other_batch


def check_eval_gradient(layer, x, rng, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Input and parameter gradients of a backward in evaluation mode against finite
    differences there, after a few training forwards moved the state."""
    params = layer.params()
    if not layer.has_gradient or (all(p.trainable for p in params.values())
                                  and layer.random_generator() is None):
        return  # both modes compute alike: the training check covers it
    state = {name: np.array(p.value) for name, p in params.items() if not p.trainable}
    other = other_batch(layer, x, rng)
    for _ in range(3):  # the state off its initial values (a mean of 0, a variance of 1),
        layer.train(True).forward(other)  # as training moves it: no value it could
    layer.eval()                          # not take (an index, a count)
    again = same_draws(layer)  # a layer may draw in evaluation mode too (MC dropout)

    def forward():
        again()
        return layer.forward(x)
    try:
        g = rng.normal(size=forward().shape)

        def objective():
            return float(np.sum(forward() * g))
        for p in params.values():
            p.grad.fill(0)
        layer.set_flags(needs_input_grad=True)
        forward()
        dx = np.array(_backward(layer, g))
        grads = {name: np.array(p.grad) for name, p in params.items() if p.trainable}
        _compare(layer, "input in evaluation mode", dx, numeric_gradient(objective, x, eps),
                 rtol, atol)
        for name, grad in grads.items():
            _compare(layer, f"{name} in evaluation mode", grad,
                     numeric_gradient(objective, params[name].value, eps), rtol, atol)
    finally:
        layer.train(True)
        for name, value in state.items():  # as it was, for the kit's later checks
            params[name].value[...] = value
