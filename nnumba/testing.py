"""The conformance kit for layer authors.

``check_layer(LayerClass, kwargs, input_shape)`` checks, in float64:

- the output shape equals ``output_shape`` and the dtype follows the input;
- the gradient for the input and for every parameter against central finite
  differences of ``sum(forward(x) * g)`` for a random ``g``;
- that gradients accumulate (a second backward adds the same again);
- that a wrong shape, a wrong dtype, NaN and an empty batch raise clear errors
  naming the layer;
- a save/load round trip through :mod:`nnumba.io`.

Layers without a gradient (``has_gradient = False``) must raise
NoGradientError from backward. ``check_all(LayerClass)`` runs every entry of
``LayerClass.examples``. The test suite runs it over every registered layer.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .errors import DTypeError, NoGradientError, NonFiniteError, ShapeError


class ConformanceError(AssertionError):
    pass


def _fail(layer, what):
    raise ConformanceError(f"{layer.type_name}: {what}")


def _inputs(shape, rng):
    # Away from 0 and from each other: keeps ReLU kinks and max-pool ties out
    # of the finite-difference stencil.
    x = rng.uniform(0.1, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return x + rng.normal(0, 1e-3, size=shape)


def _expect_error(layer, call, kinds, what):
    try:
        call()
    except kinds as exc:
        if layer.type_name not in str(exc):
            _fail(layer, f"the error for {what} does not name the layer: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - reported as a conformance failure
        _fail(layer, f"{what} raised {type(exc).__name__} ({exc}), expected {kinds}")
    _fail(layer, f"{what} was accepted; it must raise a clear error")


def check_gradients(layer, x, rng, eps=1e-6, rtol=1e-5, atol=1e-7):
    y = layer.forward(x).copy()
    g = rng.normal(size=y.shape)

    def objective():
        return float(np.sum(layer.forward(x) * g))

    params = layer.params()
    for p in params.values():
        p.grad.fill(0)
    layer.needs_input_grad = True
    layer.forward(x)
    dx = layer.backward(g)
    dx = None if dx is None else dx.copy()
    grads = {name: p.grad.copy() for name, p in params.items()}
    targets = [("input", x, dx)] + [(name, p.value, grads[name]) for name, p in params.items()]
    for name, array, analytic in targets:
        if analytic is None or analytic.shape != array.shape:
            _fail(layer, f"gradient for {name} has shape "
                         f"{None if analytic is None else analytic.shape}, expected {array.shape}")
        numeric = np.empty_like(array)
        flat, out = array.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps
            up = objective()
            flat[i] = keep - eps
            down = objective()
            flat[i] = keep
            out[i] = (up - down) / (2 * eps)
        if not np.allclose(analytic, numeric, rtol=rtol, atol=atol * max(1.0, np.abs(numeric).max())):
            worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), array.shape)
            _fail(layer, f"gradient for {name} disagrees with finite differences: at {worst} "
                         f"backward gives {analytic[worst]:.8g}, differences {numeric[worst]:.8g}")
    # Parameter gradients accumulate: a second backward adds the same again.
    if params:
        layer.forward(x)
        layer.backward(g)
        for name, p in params.items():
            if not np.allclose(p.grad, 2 * grads[name], rtol=1e-9, atol=1e-12):
                _fail(layer, f"backward must accumulate (+=) into {name}.grad, not overwrite it")


def check_rejections(layer, x):
    _expect_error(layer, lambda: layer.forward(x.astype(np.int64)), DTypeError, "an int64 input")
    _expect_error(layer, lambda: layer.forward(x.astype(np.float32)), DTypeError,
                  "a float32 input to a float64 layer")
    _expect_error(layer, lambda: layer.forward(x.tolist()), DTypeError, "a list input")
    _expect_error(layer, lambda: layer.forward(x[:0]), ShapeError, "an empty batch")
    bad = x.copy()
    bad.reshape(-1)[0] = np.nan
    _expect_error(layer, lambda: layer.forward(bad), NonFiniteError, "a NaN input")
    want = layer.input_shape()
    if want is not None:
        fixed = [i for i, w in enumerate(want) if w is not None]
        if fixed:  # widen an axis whose size the layer fixes
            shape = list(x.shape)
            shape[fixed[-1] + 1] += 3
            wider = np.zeros(shape)
            _expect_error(layer, lambda: layer.forward(wider), ShapeError,
                          f"an input of shape {wider.shape}")
        _expect_error(layer, lambda: layer.forward(x.reshape(x.shape[0], -1, 1, 1)[..., 0, 0]
                                                   if x.ndim > 2 else x[..., None]),
                      ShapeError, "an input with the wrong number of axes")


def check_round_trip(layer, x):
    from . import io
    from .model import Sequential
    model = Sequential(layer)
    model.eval()
    before = model.forward(x).copy()
    with tempfile.TemporaryDirectory() as tmp:
        path = io.save(model, Path(tmp) / "layer.npz")
        twin = io.load_model(path)
    twin.eval()
    if twin.spec() != model.spec():
        _fail(layer, f"spec changed through save/load: {model.spec()} -> {twin.spec()}")
    if not np.array_equal(twin.forward(x), before):
        _fail(layer, "outputs differ after a save/load round trip")


def check_layer(layer_cls, kwargs: dict, input_shape: tuple, seed: int = 0):
    """Run every check on ``layer_cls(**kwargs)`` with inputs of ``input_shape``."""
    rng = np.random.default_rng(seed)
    layer = layer_cls(**kwargs).astype(np.float64)
    layer.reset_parameters(rng)
    x = _inputs(input_shape, rng)
    y = layer.forward(x)
    want = (input_shape[0],) + tuple(layer.output_shape(tuple(input_shape[1:])))
    if y.shape != want:
        _fail(layer, f"output shape {y.shape} differs from output_shape(): {want}")
    if y.dtype != np.float64:
        _fail(layer, f"a float64 input gave a {y.dtype} output")
    y32 = layer_cls(**kwargs).forward(x.astype(np.float32))
    if y32.dtype != np.float32 or y32.shape != want:
        _fail(layer, f"a float32 input gave {y32.dtype} {y32.shape}, expected float32 {want}")
    if layer.has_gradient:
        check_gradients(layer, x, rng)
    else:
        layer.forward(x)
        _expect_error(layer, lambda: layer.backward(np.ones(want)), NoGradientError,
                      "backward of a layer without gradient")
    check_rejections(layer, x)
    check_round_trip(layer, x)


def check_all(layer_cls):
    """Run check_layer over every entry in ``layer_cls.examples``."""
    if not layer_cls.examples:
        raise ConformanceError(f"{layer_cls.type_name}: no examples; add "
                               f"examples = [(kwargs, input_shape), ...] to the class")
    for kwargs, shape in layer_cls.examples:
        check_layer(layer_cls, kwargs, shape)
