"""The model kit's check of fused steps (:meth:`nnumba.layers.Layer.fuse_after`): each
computes what the layers it stands for compute one after another, in float64 on the
model's own input: the output, the state a training forward leaves, the input
gradient and every parameter's gradient, in both modes, with and without the input
gradient asked for (a model's first step is not asked), and again after the
parameters move (as an optimizer moves them: nothing may be cached from a forward);
the gradients again at a large batch (sums a parallel kernel splits), and the
output in float32 too (as models train)."""
from __future__ import annotations

import numpy as np

from ..layers.fusion import fuse
from .batch_checks import BATCH_SUM_ELEMENTS
from .failures import ConformanceError, _worst, dtype_hint, same_draws
from .layers import check_kept_names


def check_fused(name: str, model, x, train: bool = True):
    """Fail naming the first fused step of ``model`` (built as ``name``) that computes
    otherwise than its layers; ``x``: a batch the model takes.  ``train``: compare the
    gradients too.  Warns, as ``check_all`` does, of a fused step keeping its input
    in an attribute ``kept_for_backward`` does not name."""
    members = [idx for _, idx in fuse(model.layers)]  # which layers each step stands for
    if len(members) == len(model.layers):
        return
    m = model.copy().astype(np.float64).train()
    h = np.ascontiguousarray(x, dtype=np.float64)
    rng = np.random.default_rng(2)
    for step, idx in zip(m.steps, members):
        layers = [m.layers[i] for i in idx]
        if len(layers) > 1:
            try:
                _check_step(name, m, step, layers, h, train, rng)
            except ConformanceError:
                raise
            except Exception as exc:  # noqa: BLE001 - the step's own code: name the step
                raise ConformanceError(
                    f"model {name!r}: its fused step {step.label} ({type(step).__name__}, from "
                    f"{type(layers[-1]).__name__}.fuse_after) raised {type(exc).__name__} "
                    f"({exc}) where its layers ran{dtype_hint(exc)}") from exc
        for layer in layers:
            h = np.array(layer.train().run_forward(h))
    _check_float32(name, model, x, members)


def _check_step(name, m, step, layers, h, train, rng):
    """The comparisons of one fused step with its layers (see the module docstring)."""
    for when in ("", " after its parameters moved"):
        if when:  # in place, as an optimizer moves them (and off an initial 0)
            for p in (p for layer in layers for p in layer.params().values()):
                if p.trainable:
                    p.value[...] += 0.1 * rng.standard_normal(p.value.shape)
        for training in (True, False):
            for asked in (False, True):
                _compare(name, m, step, layers, h, train, training, asked, when)
    check_kept_names(step, h)
    if train:  # the gradients' sums over a batch a parallel kernel splits
        big = _large_batch(h)
        for asked in (False, True):
            _compare(name, m, step, layers, big, train, True, asked,
                     f" at a batch of {len(big)}")


def _large_batch(h):
    """``h`` repeated to about BATCH_SUM_ELEMENTS values (at least 130 rows, past a
    run of 64), within 2**22 values: what check_all's batch-sum check gives a layer."""
    per = max(1, h[0].size)
    rows = max(len(h), min(max(130, -(-BATCH_SUM_ELEMENTS // per)), (1 << 22) // per))
    return np.ascontiguousarray(np.resize(h, (rows,) + h.shape[1:]))


def _check_float32(name, model, x, members):
    """Each fused step in float32 (as models train) against its layers in float64:
    within 16 times the error of its layers run one after another in float32, or a
    few float32 ulps of the output's scale (evaluation mode: no draws)."""
    m64, m32 = (model.copy().astype(dtype).eval() for dtype in (np.float64, np.float32))
    h = np.ascontiguousarray(x, dtype=np.float64)
    for step, idx in zip(m32.steps, members):
        want = h
        for i in idx:
            want = np.array(m64.layers[i].run_forward(want))
        if len(idx) > 1:
            alone = h.astype(np.float32)
            for i in idx:
                alone = m32.layers[i].run_forward(alone)
            got = np.array(step.run_forward(h.astype(np.float32)), np.float64)
            scale = float(np.abs(want).max(initial=0.0))
            bound = 16 * max(float(np.abs(np.array(alone, np.float64) - want).max(initial=0.0)),
                             4 * float(np.finfo(np.float32).eps) * scale)
            err = np.abs(got - want)
            if err.max(initial=0.0) > bound:
                worst = _worst(got, want)
                raise ConformanceError(
                    f"model {name!r}: its fused step {step.label} computes in float32 "
                    f"{got[worst]:.8g} at {worst}, where its layers give {want[worst]:.8g} "
                    f"in float64: off by {err.max():.3g}, past 16 times the error of its "
                    f"layers run in float32 ({bound / 16:.3g})")
        h = want


def _compare(name, model, step, layers, x, train, training, asked, when=""):
    mode = "in training" if training else "in evaluation mode"
    what = (f"model {name!r}: its fused step {step.label} ({type(step).__name__}, from "
            f"{type(layers[-1]).__name__}.fuse_after) computes, {mode}{when},")
    alone = " then ".join(layer.label for layer in layers)
    for layer in (step, *layers):
        layer.train(training)
    step.set_flags(needs_input_grad=asked)
    layers[0].set_flags(needs_input_grad=asked)
    for layer in layers[1:]:
        layer.set_flags(needs_input_grad=True)
    state, draws = _state(layers), [same_draws(layer) for layer in layers]
    given = x.copy()
    got = np.array(step.run_forward(given))
    if not np.array_equal(given, x):
        raise ConformanceError(f"{what} by writing into its input (the step before's output)")
    fused_state = _state(layers)
    _restore(layers, state)  # the same state and draws (a Dropout's) for the layers
    for again in draws:
        again()
    want = x
    for layer in layers:
        want = layer.run_forward(want)
    want = np.array(want)
    _same(f"{what} another output than {alone}", got, want)
    for key, value in _state(layers).items():
        _same(f"{what} another {key} (state) than {alone}", fused_state[key], value)
    if not train or not all(layer.has_gradient for layer in (step, *layers)):
        return
    rng = np.random.default_rng(3)
    g = rng.standard_normal(want.shape)
    for p in (p for layer in layers for p in layer.params().values()):  # to add onto
        p.grad[...] = rng.standard_normal(p.grad.shape) if p.trainable else 0
    start, given = _grads(layers), g.copy()
    dx = step.run_backward(given)
    if not np.array_equal(given, g):
        raise ConformanceError(f"{what} by writing into the gradient it was given (dl_dy)")
    grads = {key: grad - start[key] for key, grad in _grads(layers).items()}
    dx = None if dx is None else np.array(dx)
    model.zero_grad()
    for layer in reversed(layers):
        g = layer.run_backward(g)
    if asked:
        _same(f"{what} another input gradient than {alone}", dx, np.array(g))
    for key, grad in _grads(layers).items():
        wrote_over = np.allclose(grads[key] + start[key], grad)
        hint = ("it must add into the gradients of the parameters it computes with, not "
                "overwrite them") if wrote_over else \
            "a sum over the batch: every row, and no race between threads" \
            if "batch of" in when else ""
        mode = "" if asked else "needs_input_grad False as for a first step"
        why = "; ".join(part for part in (hint, mode) if part)
        _same(f"{what} another gradient for {key} than {alone}" + (f" ({why})" if why else ""),
              grads[key], grad)


def _state(layers) -> dict:
    """{"<label> <name>": a copy} of the state (``trainable=False`` parameters)."""
    return {f"{layer.label} {key}": np.array(p.value) for layer in layers
            for key, p in layer.params().items() if not p.trainable}


def _restore(layers, state):
    for layer in layers:
        for key, p in layer.params().items():
            if not p.trainable:
                p.value[...] = state[f"{layer.label} {key}"]


def _grads(layers) -> dict:
    """{"<label> <name>": a copy of the gradient} of ``layers``' parameters."""
    return {f"{layer.label} {key}": np.array(p.grad)
            for layer in layers for key, p in layer.params().items()}


def _same(what, got, want):
    if got is None or got.shape != want.shape:
        raise ConformanceError(f"{what}: {'None' if got is None else f'shape {got.shape}'}, "
                               f"not shape {want.shape}")
    scale = float(np.abs(want).max(initial=0.0))
    if not np.allclose(got, want, rtol=1e-7, atol=1e-9 * max(1.0, scale)):
        worst = _worst(got, want)
        raise ConformanceError(f"{what}: at {worst} {got[worst]:.8g}, not {want[worst]:.8g}")
