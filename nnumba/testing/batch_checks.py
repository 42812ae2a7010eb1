"""The layer kit's checks of what a batch does to a layer: at a large batch of copies
the output and input gradient are copies of the example's and a parameter's gradient
is a sum over the batch (no race between threads), a training forward moves no
trainable parameter, and in evaluation mode a sample's output is its own (and finite,
and the same at every call) and no parameter, state included, moves."""
from __future__ import annotations

import warnings

import numpy as np
from numba import get_num_threads

from ..errors import NnumbaError
from .failures import _fail, _worst

#: the batch-sum check's batch, in input (or output) elements: a part for every core
BATCH_SUM_ELEMENTS = 1 << 17


def check_finite(layer, y, example):
    """A forward of a finite input gives a finite output (checked before what compares
    outputs: NaN equals nothing, not even itself)."""
    if not np.isfinite(y).all():
        _fail(layer, f"output holds NaN or inf for a finite input ({example}), at "
                     f"{tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])}")


def check_state(layer, x):
    """A training forward leaves the trainable parameters as they were (an optimizer
    alone moves them; what the layer updates itself is state, ``add_param(...,
    trainable=False)``), and in evaluation mode the output is finite, the same at a
    second call, a sample's does not depend on the rest of its batch (predict cuts
    batches where it likes; a batch norm uses what it kept there, not the batch's
    statistics), and no parameter moves, state included; a layer with neither state nor
    draws gets a warning where its two modes' outputs differ."""
    was = {name: p.value.copy() for name, p in layer.params().items() if p.trainable}
    trained = np.array(forward(layer.train(True), x, "in training"))
    for name, value in was.items():
        if not np.array_equal(layer.params()[name].value, value):
            _fail(layer, f"a training forward changed the parameter {name!r}, which only an "
                         f"optimizer may move (weight decay and momentum act on it too): "
                         f"declare what the layer updates itself with add_param({name!r}, "
                         f"shape, trainable=False) (docs/plugins.md, \"State that is not "
                         f"trained\")")
    layer.eval()
    kept = {name: p.value.copy() for name, p in layer.params().items()}
    try:
        whole = np.array(forward(layer, x, "in evaluation mode"))
        again = np.array(forward(layer, x, "in evaluation mode"))
        alone = np.concatenate([np.array(forward(layer, x[i:i + 1], "in evaluation mode"))
                                for i in range(len(x))]) if len(x) > 1 else whole
    except NnumbaError as exc:
        _fail(layer, f"in evaluation mode it refused one sample ({exc}); predict may hand "
                     f"it one")
    finally:
        layer.train(True)
    check_finite(layer, whole, f"the example of shape {x.shape}, in evaluation mode")
    if not np.allclose(whole, again, rtol=1e-9, atol=1e-12):
        worst = _worst(again, whole)
        _fail(layer, f"in evaluation mode two forwards of the same input differ (at {worst} "
                     f"{whole[worst]:.8g}, then {again[worst]:.8g}): it is not deterministic. "
                     f"Keep no count or state that changes from one call to the next, and "
                     f"draw at random in training only")
    if not np.allclose(whole, alone, rtol=1e-9, atol=1e-12):
        _fail(layer, "in evaluation mode a sample's output depends on the rest of its batch "
                     "(predict cuts batches where it likes): use what the layer kept in "
                     "training there, as a batch norm uses its running statistics")
    for name, value in kept.items():
        if not np.array_equal(layer.params()[name].value, value):
            _fail(layer, f"a forward in evaluation mode changed {name!r}: predict and a "
                         f"trainer's test pass run there, and must leave the model as it "
                         f"was; update state in training only (if self.training)")
    still = all(p.trainable for p in layer.params().values()) and \
        layer.random_generator() is None  # nothing that may make the two modes differ
    if still and not np.allclose(whole, trained, rtol=1e-9, atol=1e-12):
        worst = _worst(trained, whole)
        warnings.warn(f"{layer.type_name}: in evaluation mode its output differs from "
                      f"training's (at {worst} {whole[worst]:.8g}, not {trained[worst]:.8g}), "
                      f"though it keeps no state and draws nothing (random_generator() is "
                      f"None): predict computes another function than the one trained. "
                      f"Ignore this where that is meant", stacklevel=2)


def forward(layer, x, when: str):
    """``layer.forward(x)``, or a failure where its shape is not what ``output_shape``
    promises (the kit's own comparison would break on it, naming neither)."""
    y = layer.forward(x)
    want = (x.shape[0],) + tuple(layer.output_shape(x.shape[1:]))
    if getattr(y, "shape", None) != want:
        _fail(layer, f"{when}, a batch of {x.shape[0]} (input {x.shape}) gave an output of "
                     f"shape {getattr(y, 'shape', None)}, but output_shape() promises {want}; "
                     f"a model refuses it (the batch axis stays, for one sample too)")
    return y


def _first_bad_sample(got, want, atol):
    """The first sample of ``got`` (batch axis first) not close to ``want``'s, or None."""
    bad = ~np.isclose(got, want, rtol=1e-8, atol=atol)
    rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
    return int(rows[0]) if rows.size else None


def _check_copies(layer, what, got, one, k, why):
    """``got``, computed on k copies of the example, is k copies of ``one``, the
    example's own, to a tolerance relative to its largest value; else it fails naming
    the first sample that differs."""
    want = np.concatenate([one] * k)
    scale = float(np.abs(one).max(initial=0.0))
    i = _first_bad_sample(got, want, 1e-9 * max(1.0, scale))
    if i is not None:
        worst = (i,) + _worst(got[i], want[i])
        _fail(layer, f"at a batch of {k} copies of the example, {what} of sample {i} (a copy "
                     f"of the example's sample {i % len(one)}) differs from the example's: at "
                     f"{worst} {got[worst]:.8g}, not {want[worst]:.8g}: {why}")


class OneThreadWarning(Warning):
    """The kit's note that numba runs one thread, so no race can show: about the test
    run, not the layer.  Not a UserWarning, which docs/plugins.md has authors make an
    error (a one-core CI runner then failed every layer with parameters)."""


def check_batch_sums(layer, x):
    """At a batch of k copies of ``x``, large enough for a parallel kernel to split it
    between threads (and as large as predict's batches), the layer computes what it
    does at ``x``.  In evaluation mode the output is k copies of the example's (a
    chunk or block boundary shows here, not in the examples' few samples).  In
    training, with k copies of an upstream gradient g, the input gradient is k copies
    of the example's, and a parameter's gradient, a sum over the batch, is k times
    the example's: threads that add into one element at once lose updates, which
    small batches rarely show (an input gradient can be a sum within a sample, as in
    overlapping pools).  g is random, not ones (a batch norm's scale gets a gradient
    of exactly 0 from ones), and the tolerance scales with the largest gradient: one
    lost term shows, the rounding of k times more terms does not.  The training
    checks are skipped where the copies' outputs are not copies of x's (a random or
    batch-coupled layer), and for a layer without gradient.  With one numba thread
    (``NUMBA_NUM_THREADS=1``) no race can show: it warns, for a layer with parameters."""
    threads = get_num_threads()
    if threads < 2 and layer.params():  # (Python shows it once per caller line)
        warnings.warn("check_batch_sums: numba runs one thread, so a race between threads "
                      "cannot show; run the kit with NUMBA_NUM_THREADS=2 or more",
                      OneThreadWarning, stacklevel=2)
    layer.eval()
    try:
        y = np.array(forward(layer, x, "in evaluation mode"))
        k = max(2, -(-BATCH_SUM_ELEMENTS // max(x.size, y.size)))
        big = np.concatenate([x] * k)
        y_big = forward(layer, big, "in evaluation mode")
    finally:
        layer.train(True)
    check_finite(layer, y_big, f"{k} copies of the example, in evaluation mode")
    _check_copies(layer, "in evaluation mode the output", y_big, y, k,
                  "a sample's output must not depend on where it sits in a batch (predict "
                  "runs batches of up to 1000): look for a chunk or block boundary")
    if not layer.has_gradient:
        return
    y = np.array(forward(layer, x, "in training"))
    g = np.random.default_rng(0).standard_normal(y.shape).astype(y.dtype)
    layer.zero_grad()
    dx = layer.backward(g.copy())
    dx = None if dx is None else dx.copy()
    grads = {name: p.grad.copy() for name, p in layer.params().items()}
    layer.zero_grad()
    y_big = forward(layer, big, "in training")
    if not np.allclose(y_big, np.concatenate([y] * k), rtol=1e-12, atol=1e-12):
        return
    dx_big = layer.backward(np.concatenate([g] * k))
    race = ("threads adding into one element at once lose updates (a race in a parallel "
            "loop). Add per-element terms into a buffer and sum them once (docs/plugins.md, "
            "\"Parameter gradients\")") if threads > 1 else \
        ("with one thread no race can: the gradient is not a sum of per-sample terms, or "
         "backward keeps something from an earlier call")
    for name, p in layer.params().items():
        want = k * grads[name]
        scale = float(np.abs(grads[name]).max()) if grads[name].size else 0.0
        if not np.allclose(p.grad, want, rtol=1e-8, atol=max(1e-10, 1e-9 * k * scale)):
            worst = _worst(p.grad, want)
            _fail(layer, f"at a batch of {k} copies of the example, the gradient for {name} "
                         f"at {worst} is {p.grad[worst]:.8g}, not {k} times the example's "
                         f"({want[worst]:.8g}): {race}")
    if dx is not None and dx_big is not None:
        _check_copies(layer, "the input gradient", np.asarray(dx_big), dx, k,
                      "a sample's input gradient must not depend on where it sits in a "
                      "batch: look for a chunk or block boundary, or " +
                      ("a race between threads adding into one element" if threads > 1
                       else "something backward keeps from an earlier call"))
