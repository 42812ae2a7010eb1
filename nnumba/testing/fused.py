"""The model kit's check of fused steps (:meth:`nnumba.layers.Layer.fuse_after`): each
computes what the layers it stands for compute one after another, its output, input
gradient and every parameter's gradient, in float64 on the model's own input."""
from __future__ import annotations

import numpy as np

from ..layers.fusion import fuse
from .failures import ConformanceError, _worst


def check_fused(name: str, model, x, train: bool = True):
    """Fail naming the first fused step of ``model`` (built as ``name``) that computes
    otherwise than its layers; ``x``: a batch the model takes."""
    members = [idx for _, idx in fuse(model.layers)]  # which layers each step stands for
    if len(members) == len(model.layers):
        return
    m = model.copy().astype(np.float64).train()
    h = np.ascontiguousarray(x, dtype=np.float64)
    for step, idx in zip(m.steps, members):
        layers = [m.layers[i] for i in idx]
        if len(layers) > 1:
            _compare(name, m, step, layers, h, train)
        for layer in layers:
            h = np.array(layer.run_forward(h))


def _compare(name, model, step, layers, x, train):
    what = (f"model {name!r}: its fused step {step.label} ({type(step).__name__}, from "
            f"{type(layers[-1]).__name__}.fuse_after) computes")
    alone = " then ".join(layer.label for layer in layers)
    draws = [g.bit_generator.state for g in _generators(layers)]
    for layer in (step, *layers):
        layer.set_flags(needs_input_grad=True)
    got = np.array(step.run_forward(x))
    for g, state in zip(_generators(layers), draws):  # the same draws for both (a Dropout)
        g.bit_generator.state = state
    want = x
    for layer in layers:
        want = layer.run_forward(want)
    want = np.array(want)
    _same(f"{what} another output than {alone}", got, want)
    if not train or not all(layer.has_gradient for layer in (step, *layers)):
        return
    g = np.random.default_rng(2).standard_normal(want.shape)
    model.zero_grad()
    dx, grads = np.array(step.run_backward(g.copy())), _grads(model, layers)
    model.zero_grad()
    for layer in reversed(layers):
        g = layer.run_backward(g)
    _same(f"{what} another input gradient than {alone}", dx, np.array(g))
    for key, grad in _grads(model, layers).items():
        _same(f"{what} another gradient for {key} than {alone} (it must add into the "
              f"gradients of the parameters it computes with)", grads[key], grad)


def _generators(layers):
    return [g for g in (layer.random_generator() for layer in layers) if g is not None]


def _grads(model, layers) -> dict:
    """{"<layer label>.<name>": a copy of the gradient} of ``layers``' parameters."""
    return {f"{layer.label} {key}": np.array(p.grad)
            for layer in layers for key, p in layer.params().items()}


def _same(what, got, want):
    if got.shape != want.shape:
        raise ConformanceError(f"{what}: shape {got.shape}, not {want.shape}")
    scale = float(np.abs(want).max(initial=0.0))
    if not np.allclose(got, want, rtol=1e-7, atol=1e-9 * max(1.0, scale)):
        worst = _worst(got, want)
        raise ConformanceError(f"{what}: at {worst} {got[worst]:.8g}, not {want[worst]:.8g}")
