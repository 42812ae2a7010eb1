"""The lecture's perceptron algorithm, exactly:

    w = 0; for each epoch, for each n in order: if y_n (w . x_n) <= 0: w += y_n x_n;
    stop after an epoch without change, or after max_epochs.

The bias is one more weight on a constant input feature equal to 1 (``bias=False``:
none, the homogeneous perceptron of the convergence proof).  The table of
epochs (``PerceptronResult.history``) keeps at most ``HISTORY_ROWS`` rows, however
many epochs run: see :class:`PerceptronHistory`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import DTypeError, LabelError, NonFiniteError, ShapeError
from ..kernels.cpu.perceptron import (ROUNDOFF, SUBNORMAL, perceptron_epoch, scores,
                                      sign_errors)
from ..layers.validation import flag, integer, show, takes, unmasked


#: the most rows a PerceptronHistory keeps (each a dict of ~400 bytes: ~4 MB at most)
HISTORY_ROWS = 10_000
#: inputs all smaller than this make w . x (products of two of them) underflow float64
TINY = 2.0 ** -511


class PerceptronHistory(list):
    """The table's rows (dicts: epoch, nb_changes, train_error, test_error), one per
    epoch up to ``HISTORY_ROWS`` epochs. A longer run keeps memory bounded by thinning
    it out: the rows kept are those of every ``stride``-th epoch (the stride doubles
    each time the rows would exceed the limit), from epoch 0, and always the last
    epoch's row; each row names its epoch.  ``epochs`` counts every epoch run, and
    equals ``len(history)`` until the thinning starts. A list, so it goes into JSON."""

    def __init__(self, rows=()):
        super().__init__()
        self.limit, self.stride, self.epochs = max(HISTORY_ROWS, 2), 1, 0
        for row in rows:
            self.add(row)

    def add(self, row: dict):
        """Record the row of the next epoch (``row["epoch"]``)."""
        if self and self[-1]["epoch"] % self.stride:  # the last epoch's, kept till now
            self.pop()
        self.append(row)
        self.epochs += 1
        if len(self) > self.limit:  # every other row of the stride goes: half as many
            self.stride *= 2
            self[:] = [r for r in self if r["epoch"] % self.stride == 0 or r is row]


@dataclass
class PerceptronResult:
    w: np.ndarray           # (D,) weights of the raw features
    b: float                # bias (the weight of the constant feature)
    converged: bool         # an epoch went by without a change
    updates: int            # total number of updates k
    history: PerceptronHistory = field(default_factory=PerceptronHistory)  # the table

    def __post_init__(self):
        if not isinstance(self.history, PerceptronHistory):  # a list of rows given
            self.history = PerceptronHistory(self.history)

    @property
    def epochs(self) -> int:
        """The epochs run (the history keeps at most HISTORY_ROWS of their rows)."""
        return self.history.epochs

    def decision(self, x) -> np.ndarray:
        """w . x + b, one per sample of ``x`` (N, ...): none for N = 0."""
        x = np.asarray(unmasked("perceptron", x, "the input"))  # else what lies under a mask
        if x.dtype.kind not in "biuf" or x.ndim == 0:
            raise DTypeError(f"perceptron: expected inputs as a numeric array of samples, got "
                             f"{x.dtype} of shape {x.shape}")
        # the features counted from the shape: reshape(0, -1) cannot infer them
        flat = x.reshape(len(x), math.prod(x.shape[1:]))
        if flat.shape[1] != self.w.size:
            raise ShapeError(f"perceptron: inputs have {flat.shape[1]} features, the weights "
                             f"{self.w.size}")
        if x.dtype.kind == "f" and not np.isfinite(flat).all():  # NaN would predict -1
            raise NonFiniteError("perceptron: inputs hold NaN or infinity")
        return score_rows(flat, self.w, self.b)

    def predict(self, x) -> np.ndarray:
        """sigma(w . x + b) in {-1, +1}."""
        return np.where(self.decision(x) >= 0, 1, -1)

    def table(self) -> str:
        """The lecture's table: epoch, nb_changes, train_error, test_error (the rows
        the history kept: every epoch's up to HISTORY_ROWS epochs)."""
        lines = []
        for row in self.history:
            test = row["test_error"]
            test_text = "" if test is None else f" test_error {100 * test:.2f}%"
            lines.append(f"epoch {row['epoch']} nb_changes {row['nb_changes']} "
                         f"train_error {100 * row['train_error']:.2f}%{test_text}")
        return "\n".join(lines)

    def to_model(self, dtype="float32"):
        """A Sequential (Flatten, Linear(D, 1), Threshold) carrying these weights, in
        ``dtype`` (float32 or float64: the weights themselves are float64)."""
        from ..layers import Flatten, Linear, Threshold
        from ..layers.validation import float_dtype
        from ..model import Sequential
        dtype = float_dtype("perceptron: to_model", dtype)
        top = max(float(np.abs(self.w).max(initial=0.0)), abs(self.b))
        if top > float(np.finfo(dtype).max):  # cast to inf: inf - inf is NaN, then -1
            raise NonFiniteError(f"perceptron: to_model: weights as large as {top:.4g} do not "
                                 f"fit {dtype.name} (at most {float(np.finfo(dtype).max):.4g}): "
                                 f"use to_model(dtype='float64'), or scale the inputs")
        linear = Linear(self.w.size, 1).astype(dtype)
        linear.weight.value[...] = self.w.reshape(1, -1)
        linear.bias.value[...] = self.b
        return Sequential(Flatten().astype(dtype), linear, Threshold().astype(dtype))


def _check_set(x, y, what):
    """Refuse a set that is not float samples (N, ...) with at least one feature each,
    with labels (N,) in {-1, +1}: before a group (:mod:`nnumba.distributed`) shards it."""
    if not isinstance(x, np.ndarray) or x.dtype.char not in "efd":
        raise DTypeError(f"perceptron: {what} inputs must be a numpy array of float16, float32 "
                         f"or float64 (numba has no long double)")
    unmasked(f"perceptron: {what} set", x, "inputs")  # else the data under the mask is used
    unmasked(f"perceptron: {what} set", y, "labels")
    if x.ndim == 0:
        raise ShapeError(f"perceptron: {what} inputs must be an array of samples (N, ...), "
                         f"got a 0-d array")
    if len(x) == 0:
        raise ShapeError(f"perceptron: {what} set is empty")
    if x.size == 0:
        raise ShapeError(f"perceptron: {what} samples have no features (shape {x.shape})")
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":  # np.unique of None and ints: a bare TypeError
        raise LabelError(f"perceptron: labels must be -1 or +1 as numbers, got dtype {y.dtype}")
    if y.shape != (len(x),):
        raise LabelError(f"perceptron: {what} set has {len(x)} inputs but labels of "
                         f"shape {y.shape}")
    if not np.isin(y, (-1, 1)).all():
        raise LabelError(f"perceptron: labels must be -1 or +1, got {np.unique(y)[:5].tolist()}")


def score_rows(flat, w, b) -> np.ndarray:
    """w . x + b for every row of ``flat`` (N, D), with ``w`` (D,) and ``b``, or (K, D)
    and (K,) for one column per class: BLAS's products (as scikit-learn's
    decision_function), but summed as the epochs sum theirs wherever rounding leaves
    the sign in doubt (BLAS's fused multiply-adds tip a sample on the boundary): a
    sample the table counts right, predict gets right."""
    flat = np.asarray(flat, np.float64)
    weights, biases = np.atleast_2d(w), np.atleast_1d(b)
    with np.errstate(over="ignore", invalid="ignore"):  # (the callers refuse inf)
        out = flat @ w + b if np.ndim(w) == 1 else flat @ weights.T + biases
        size = np.abs(flat) @ np.abs(weights).T + np.abs(biases)
    out = out.reshape(len(flat), len(biases))
    doubt = ~(np.abs(out) > 4.0 * (flat.shape[1] + 1) * (ROUNDOFF * size + SUBNORMAL))
    for k in np.flatnonzero(doubt.any(axis=0)):  # (NaN too: the kernel says NaN)
        rows = doubt[:, k]
        again = np.empty(int(rows.sum()))
        scores(flat[rows], np.append(weights[k], biases[k]), 1.0, again)
        out[rows, k] = again
    return out if np.ndim(w) == 2 else out[:, 0]


class _Alone:
    """The perceptron in one process; :mod:`nnumba.distributed.perceptron` runs the
    same loop over MPI ranks by overriding these three steps."""

    def prepare(self, x, y, what):
        """(inputs as float64 rows (N, D), labels) of a set that train_perceptron
        checked (_check_set, _largest); ``what``: "training" or "test". Float64 as the lecture's np.zeros; a float64
        C-contiguous set is used as it is, not copied (the kernels add the bias feature
        themselves)."""
        flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float64)
        return flat, np.asarray(y, dtype=np.float64)

    def epoch(self, xs, ys, w, b) -> tuple[int, np.ndarray]:
        """One pass with the bias feature ``b``; returns (number of updates, the weights
        after it)."""
        return perceptron_epoch(xs, ys, w, b), w

    def total(self, *counts):
        return counts


def _check_range(w, top, n, epoch):
    """Refuse an epoch whose sums w . x could overflow float64: the kernel's sign tests
    would then compare inf or NaN, and the weights come out as garbage (or inf) with no
    error. With every |x_j| <= top, an epoch of n samples grows sum |w_j| by at most
    n * d * top, so (sum |w| + n * d * top) * top bounds every |w . x| it computes."""
    with np.errstate(over="ignore", invalid="ignore"):
        bound = (np.abs(w).sum() + n * w.size * top) * top
    if not np.isfinite(bound):
        raise NonFiniteError(
            f"perceptron: inputs as large as {top:.4g} make the sums w . x overflow "
            f"float64 {'from the start' if epoch == 0 else f'after epoch {epoch - 1}'}: "
            f"scale the inputs (e.g. to [-1, 1]) and train again")


def _largest(x, what, training=False) -> float:
    """The largest |x| of a set (the full one: every rank holds it), which bounds every
    w . x to come (_check_range); from each sample's max and min, no copy of the set.
    Refuses NaN and infinity, and in a training set a sample all of whose values are
    below TINY (0 aside): its products with weights made of such samples underflow
    float64 to 0 or subnormals, whose signs the updates read, and the run can go on
    without converging, with a bias too (it can come back to 0). Refused whatever the
    rest of the set, so also where a bias would carry the run through: scaling the
    inputs is the fix either way."""
    flat = x.reshape(len(x), -1)
    top = np.maximum(flat.max(axis=1), -flat.min(axis=1))  # NaN propagates
    if not np.isfinite(top.max()):
        raise NonFiniteError(f"perceptron: {what} inputs hold NaN or infinity")
    small = np.flatnonzero((top > 0) & (top < TINY)) if training and x.dtype.itemsize == 8 \
        else ()  # (float32 holds nothing as small)
    if len(small):
        raise NonFiniteError(f"perceptron: {small.size} sample(s) no larger than "
                             f"{top[small].max():.4g} (the first: sample {small[0]}) make "
                             f"the sums w . x underflow float64 (their products fall below "
                             f"2**-1022, to subnormals or 0, whose signs the updates read): "
                             f"scale the inputs (e.g. to [-1, 1]) and train again")
    return float(top.max())


def train_perceptron(x, y, max_epochs: int = 100, *, x_test=None, y_test=None,
                     callback=None, bias: bool = True, group=None) -> PerceptronResult:
    """Run the lecture's perceptron on (x, y), labels in {-1, +1}; see the module
    docstring.  ``bias=False``: no bias weight (b stays 0).  ``callback(row)``: called
    after each epoch with that epoch's row of the history (one argument, where the
    gradient trainers' callbacks take (trainer, row)).  ``group``: how the passes are
    shared between processes (None: this one alone)."""
    max_epochs = integer("perceptron", "max_epochs", max_epochs, 1, None)
    bias = flag("perceptron", "bias", bias)
    if callback is not None and (not callable(callback) or not takes(callback, 1)):
        raise DTypeError(f"perceptron: callback must be a function of one argument, the "
                         f"epoch's row (a trainer's callback(trainer, row) takes two), got "
                         f"{show(callback)}")  # else found after an epoch
    if (x_test is None) != (y_test is None):  # as the gradient trainers' fit
        raise DTypeError(f"perceptron: x_test and y_test come together; got only "
                         f"{'x_test' if y_test is None else 'y_test'}")
    _check_set(x, y, "training")
    if x_test is not None:
        _check_set(x_test, y_test, "test")
    group = _Alone() if group is None else group
    top = max(_largest(x, "training", training=True), float(bias))  # 1: the bias feature
    if x_test is not None:
        top = max(top, _largest(x_test, "test"))
    xs, ys = group.prepare(x, y, "training")
    test = None if x_test is None else group.prepare(x_test, y_test, "test")
    if callback is not None:  # it may change the caller's arrays: train on the set as given
        xs, ys = _own(xs, x), _own(ys, y)
        if test is not None:
            test = (_own(test[0], x_test), _own(test[1], y_test))
    if test is not None and test[0].shape[1] != xs.shape[1]:
        raise ShapeError(f"perceptron: test inputs have {test[0].shape[1]} "
                         f"features, training inputs {xs.shape[1]}")
    n_train, n_test = len(x), (len(x_test) if test is not None else 0)
    b = float(bias)  # the bias feature's value: 0 keeps the bias weight w[-1] at 0
    w = np.zeros(xs.shape[1] + 1)
    history, updates, converged = PerceptronHistory(), 0, False
    try:
        for epoch in range(max_epochs):
            _check_range(w, top, len(xs), epoch)
            changes, w = group.epoch(xs, ys, w, b)
            updates += changes
            # no change: every sample scored on the right side of this w, so no error
            errors = group.total(sign_errors(xs, ys, w, b) if changes else 0,
                                 sign_errors(*test, w, b) if test is not None else 0)
            row = {"epoch": epoch, "nb_changes": int(changes),
                   "train_error": float(errors[0]) / n_train,
                   "test_error": float(errors[1]) / n_test if test is not None else None}
            history.add(row)
            if callback is not None:
                callback(row)
            if changes == 0:
                converged = True
                break
    except KeyboardInterrupt as stop:  # Ctrl-C: the weights so far go with it
        stop.result = _result(w, False, updates, history)
        raise
    return _result(w, converged, updates, history)


def _own(a, given):
    """``a``, copied where it is (a view of) the caller's ``given``."""
    return a.copy() if np.may_share_memory(a, given) else a


def _result(w, converged, updates, history) -> PerceptronResult:
    """The weights of the features, and the bias (w[-1]: 0 where bias=False)."""
    return PerceptronResult(w[:-1].copy(), float(w[-1]), converged, updates, history)
