"""The layer kit's float32 check: a float32 copy of a layer computes what the float64
layer does, to float32 accuracy (:mod:`nnumba.testing`)."""
from __future__ import annotations

import copy

import numpy as np

from .failures import _backward, _fail, _finite_gradient, _worst

#: float32's machine epsilon (2^-23)
EPS32 = float(np.finfo(np.float32).eps)
#: how far a float32 result may be from float64's, in units of the spread that
#: perturbing every input by float32 rounding gives (at least EPS32 times its largest
#: value): float32 arithmetic adds rounding of the same kind, a few times more in the
#: kit's small examples (growing as sqrt(n) in a plain sum of n terms: ~30 at 65,536),
#: while float16 (2^-11) is some 2000 units away
SPREAD_FACTOR = 64
#: the large inputs' scale: the examples' +-[0.1, 1] times it pass exp's float32 range
#: (88.7), which a softmax without its row maximum subtracted overflows
LARGE = 100.0
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _results(layer, x, g) -> dict:
    """The output, the input gradient and every parameter gradient at x and g."""
    out = {"the output": np.array(layer.forward(x), np.float64)}
    if layer.has_gradient:
        layer.zero_grad()
        dx = _backward(layer, g)
        out["the input gradient"] = None if dx is None else np.array(dx, np.float64)
        for name, p in layer.params().items():
            out[f"the gradient for {name}"] = np.array(p.grad, np.float64)
    return out


def _modes(layer, x, g=None) -> dict:
    """The state (``trainable=False``) a training forward at x leaves, and then the
    output in evaluation mode (what predict returns), of a copy of ``layer`` (g unused)."""
    layer = copy.deepcopy(layer).train(True)
    layer.forward(x)
    out = {f"the state {name} after a training forward": np.array(p.value, np.float64)
           for name, p in layer.params().items() if not p.trainable}
    out["the output in evaluation mode"] = np.array(layer.eval().forward(x), np.float64)
    return out


def _spread(layer, x, g, base, results=_results, trials=3) -> dict:
    """How far the float64 layer's results move when x, g and every parameter (state
    too) are multiplied by 1 + u * EPS32 (u uniform in [-1, 1]): the conditioning of
    what it computes at float32 resolution, which grows with the length of its
    reductions."""
    rng = np.random.default_rng(0)  # its own: the kit's draws stay as they were

    def jiggle(a):
        return a * (1 + EPS32 * rng.uniform(-1, 1, size=np.shape(a)))

    spread = {what: 0.0 for what in base}
    for _ in range(trials):
        twin = copy.deepcopy(layer)
        for p in twin.params().values():
            p.value[...] = jiggle(p.value)
        for what, r in results(twin, jiggle(x), None if g is None else jiggle(g)).items():
            if r is not None and base[what] is not None and r.shape == base[what].shape:
                spread[what] = max(spread[what], float(np.abs(r - base[what]).max(initial=0)))
    return spread


def check_float32(layer, x, rng, factor=SPREAD_FACTOR, modes=True, large=False):
    """A float32 copy of ``layer`` computes what the float64 one does on the same
    (float32-rounded) input and upstream gradient, to float32 accuracy: the forward,
    the input gradient and every parameter gradient, each within ``factor`` times
    the spread of the float64 results under float32-sized perturbations of the input,
    the upstream gradient and the parameters (and never below ``factor`` * EPS32 *
    its largest value, or for a parameter gradient that cancelled, at most sqrt(EPS32)
    times the largest parameter gradient, that one's: a key bias's under a softmax
    keeps the rounding of its terms).  Skipped for a layer whose two float64 forwards
    differ (a random one, in training mode).  With ``modes``,
    :func:`check_float32_modes` too.  ``large``: x is
    :data:`LARGE` times an example, and float32's results need only be finite where
    float64's are within float32's range (a sigmoid's gradient near saturation keeps
    few digits in float32, in torch's too; a softmax without its maximum subtracted
    gives NaN)."""
    x = x.astype(np.float32).astype(np.float64)
    start = copy.deepcopy(layer) if modes else None  # the state as it is now
    l32 = copy.deepcopy(layer).astype(np.float32)
    y = layer.forward(x).copy()
    if np.array_equal(layer.forward(x), y):
        g = rng.normal(size=y.shape).astype(np.float32)
        want = _results(layer, x, g.astype(np.float64))
        spread = None if large else _spread(layer, x, g.astype(np.float64), want)
        with np.errstate(over="ignore", invalid="ignore"):  # compared, and named, below
            got = _results(l32, x.astype(np.float32), g)
        _compare32(layer, want, got, spread, factor, large)
    if modes:
        check_float32_modes(start, x, factor)


def check_float32_modes(layer, x, factor=SPREAD_FACTOR):
    """As :func:`check_float32`, for the state (``trainable=False``) a training forward
    of a copy of ``layer`` leaves and the output in evaluation mode after it (what
    predict returns), the spread taken over the state too."""
    x = x.astype(np.float32).astype(np.float64)
    start = copy.deepcopy(layer)  # (it may belong to a model, which astype refuses)
    want = _modes(start, x)
    got = _modes(copy.deepcopy(start).astype(np.float32), x.astype(np.float32))
    _compare32(layer, want, got, _spread(start, x, None, want, _modes), factor)


def _compare32(layer, want, got, spread, factor, large=False):
    grads = max((float(np.abs(ref).max(initial=0)) for what, ref in want.items()
                 if what.startswith("the gradient for ") and ref is not None), default=0.0)
    at = f" at inputs {LARGE:g} times the example's" if large else ""
    for what, ref in want.items():
        if ref is None:
            continue
        if large and not np.abs(ref).max(initial=0) <= FLOAT32_MAX / 2:
            continue  # past float32's range in float64 too
        _finite_gradient(layer, what, ref)
        scale = float(np.abs(ref).max(initial=0))
        a = got[what]
        if a is not None and a.shape == ref.shape and not np.isfinite(a).all():
            _fail(layer, f"in float32{at}, {what} holds NaN or inf where float64's is "
                         f"finite, at {tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])}"
                         f": compute it so that "
                         f"no step overflows (a softmax subtracts each row's maximum before "
                         f"exp)")
        if large:  # only overflow: near saturation float32 loses digits as torch's does
            continue
        if what.startswith("the gradient for ") and scale <= EPS32 ** 0.5 * grads:
            scale = grads  # cancelled (a key bias's under a softmax): its terms' rounding
        tol = factor * max(spread[what], EPS32 * scale)
        if a is None or a.shape != ref.shape or not np.abs(a - ref).max(initial=0) <= tol:
            worst = _worst(a, ref) if a is not None and a.shape == ref.shape else None
            _fail(layer, f"in float32{at}, {what} differs from float64's beyond float32 "
                         f"rounding" + (f": at {worst} {a[worst]:.8g} against {ref[worst]:.8g}"
                                        f" (allowed {tol:.3g}, {factor} times what "
                                        f"float32-sized changes of its inputs move it)"
                                        if worst is not None else
                                        f": shape {np.shape(a)} against {ref.shape}"))
