"""The loss kit (:mod:`nnumba.testing`)."""
from __future__ import annotations

import inspect
import warnings

import numpy as np

from ..device import to_host
from ..errors import ContractError, DTypeError, LabelError, ShapeError
from ..layers.contract import Parameter
from ..losses import Loss
from .layers import (ConformanceError, _build, _class, _compare, _examples, _expect_error,
                     _fail, _name, _raised, _shape, numeric_gradient)
from .precision import FLOAT32_MAX, LARGE

#: The target kinds of a loss's examples.
KINDS = ("classes", "signs", "values")


def _targets(kind, shape, rng):
    """Targets for predictions of ``shape``: "classes" (labels in [0, C)), "signs"
    (labels in {-1, +1}) or "values" (same shape as the predictions)."""
    n = shape[0]
    if kind == "classes":
        return rng.integers(0, shape[1], n)
    if kind == "signs":
        return np.where(rng.random(shape) < 0.5, -1, 1) if len(shape) > 1 and shape[1] == 1 \
            else np.where(rng.random(n) < 0.5, -1, 1)
    return rng.normal(size=shape)


def check_loss_case(loss_cls, kwargs: dict, shape: tuple, kind: str, seed: int = 0,
                    eps=1e-6, rtol=1e-5, atol=1e-7):
    """One example of ``loss_cls``: value, gradient and errors."""
    _class("check_loss_case", loss_cls, Loss)
    if not isinstance(kwargs, dict):
        raise ConformanceError(f"check_loss_case: kwargs must be a dict of the constructor's "
                               f"arguments, got {kwargs!r:.80}")
    if kind not in KINDS:
        raise ConformanceError(f"{_name(loss_cls)}: target kind {kind!r:.40} is none of "
                               f"{', '.join(map(repr, KINDS))}")
    shape = _shape(f"check_loss_case({_name(loss_cls)})", shape)
    if kind == "classes" and len(shape) != 2:
        raise ConformanceError(f"{_name(loss_cls)}: the kind 'classes' takes predictions of "
                               f"shape (N, C), got {shape}")
    try:
        _check_case(loss_cls, kwargs, shape, kind, seed, eps, rtol, atol)
    except ConformanceError:
        raise
    except ContractError as exc:  # a forgotten return in _compute: the kit's error too
        raise ConformanceError(f"{_name(loss_cls)}: ContractError: {exc}") from exc
    except Exception as exc:  # the author's code raised: say where, keep its traceback
        raise _raised(_name(loss_cls), "check_loss_case", shape, exc) from exc


def _check_case(loss_cls, kwargs, shape, kind, seed, eps, rtol, atol):
    rng = np.random.default_rng(seed)
    loss = _build(loss_cls, kwargs)
    config = loss.config()
    for key, value in kwargs.items():
        if key not in config or config[key] != value:
            _fail(loss, f"config() gives {config}, not the option {key}={value!r} it was "
                        f"built with; return every option: {{{key!r}: ..., "
                        f"**super().config()}}")
    try:
        again = loss_cls(**config).config()
    except Exception as exc:  # noqa: BLE001 - reported
        _fail(loss, f"{_name(loss_cls)}(**config()) raised {type(exc).__name__}: {exc}")
    if again != config:
        _fail(loss, f"{_name(loss_cls)}(**config()) has config {again}, not {config}")
    y_hat = rng.normal(size=shape) * 2
    y = _targets(kind, shape, rng)
    value = _forward_leaves_inputs(loss, y_hat, y)
    if not isinstance(value, float) or not np.isfinite(value):
        _fail(loss, f"forward must return a finite Python float, got {value!r}")
    losses, _ = loss._compute(np.ascontiguousarray(y_hat), y, y_hat.dtype.type(1.0))
    if np.asarray(losses).shape != (shape[0],):
        _fail(loss, f"per-sample losses have shape {np.asarray(losses).shape}, "
                    f"expected ({shape[0]},)")
    reduced = losses.sum() / (shape[0] if loss.reduction == "mean" else 1)
    if not np.isclose(value, reduced, rtol=1e-12, atol=1e-12):
        _fail(loss, f"forward gives {value}, but its per-sample losses reduce "
                    f"({loss.reduction}) to {reduced}")
    loss.forward(y_hat, y)
    grad = np.array(loss.backward(), copy=True)
    if grad.shape != y_hat.shape or grad.dtype != y_hat.dtype:
        _fail(loss, f"backward gives {grad.dtype} {grad.shape}, expected {y_hat.dtype} "
                    f"{y_hat.shape}")
    _compare(loss, "the predictions",
             grad, numeric_gradient(lambda: loss_cls(**kwargs).forward(y_hat, y), y_hat, eps),
             rtol, atol)
    loss.forward(y_hat, y)
    if not np.allclose(loss.backward(0.5), 0.5 * grad, rtol=1e-12, atol=1e-15):
        _fail(loss, "backward(weight) must scale the gradient by weight")
    # The targets as a trainer hands them over: in the loss's target_dtype, else the
    # model's float dtype (class labels become floats unless target_dtype = "int64").
    from ..train.batches import target_dtype
    given = np.ascontiguousarray(y, dtype=target_dtype(loss, y_hat.dtype, np.asarray(y)))
    try:
        as_trained = loss_cls(**kwargs).forward(y_hat, given)
    except (LabelError, ShapeError, DTypeError) as exc:
        fix = ('declare target_dtype = "int64" for class labels' if kind == "classes" else
               "accept targets of the predictions' float dtype")
        _fail(loss, f"refuses {kind} targets as a trainer passes them, {given.dtype} "
                    f"({exc}); {fix}")
    if not np.isclose(as_trained, value, rtol=1e-12, atol=1e-12):
        _fail(loss, f"{given.dtype} targets (as a trainer passes them) give {as_trained}, "
                    f"{np.asarray(y).dtype} ones {value}")
    if kind == "signs" and shape[1:] == (1,):  # nnumba train's labels: one per sample
        try:
            flat = loss_cls(**kwargs).forward(y_hat, given.reshape(shape[0]))
        except (LabelError, ShapeError, DTypeError) as exc:
            _fail(loss, f"refuses sign targets of shape ({shape[0]},) for predictions {shape} "
                        f"({exc}); nnumba train passes such labels for a model's one output "
                        f"per sample: accept (N,) and (N, 1) alike")
        if not np.isclose(flat, value, rtol=1e-12, atol=1e-12):
            _fail(loss, f"sign targets of shape ({shape[0]},) give {flat}, of shape "
                        f"{shape} {value}")
    l32 = loss_cls(**kwargs)
    v32 = l32.forward(y_hat.astype(np.float32), y)
    if not np.isclose(v32, value, rtol=1e-4, atol=1e-5):
        _fail(loss, f"float32 predictions give {v32}, float64 {value}")
    if (g32 := np.asarray(l32.backward())).dtype != np.float32:
        _fail(loss, f"float32 predictions give a {g32.dtype} gradient: return it in the "
                    f"predictions' dtype (a Python float or a float64 array promotes it)")
    _check_large(loss_cls, kwargs, y_hat * LARGE, y)
    fresh = loss_cls(**kwargs)
    _expect_error(fresh, lambda: fresh.forward(y_hat.astype(np.int64), y), DTypeError,
                  "integer predictions")
    _expect_error(fresh, lambda: fresh.forward(y_hat[:0], y[:0]), ShapeError, "an empty batch")
    _expect_error(fresh, lambda: fresh.forward(y_hat, y[:-1]), (LabelError, ShapeError),
                  "one target too few")
    _expect_error(fresh, lambda: fresh.forward(y_hat, np.stack([y, y], -1)),
                  (LabelError, ShapeError), "targets with an extra axis (broadcast)")
    # labels past their kind (but an ignore_index): a loss that reads them trains wrongly
    for bad, what in _outside(kind, shape, y, fresh.config().get("ignore_index")):
        _expect_error(fresh, lambda: fresh.forward(y_hat, bad), LabelError, what)


def _forward_leaves_inputs(loss, y_hat, y) -> float:
    """loss.forward(y_hat, y), failing where it wrote into either."""
    given = y_hat.copy(), np.array(y, copy=True)
    value = loss.forward(y_hat, y)
    for what, before, after in (("predictions (y_hat)", given[0], y_hat),
                                ("targets (y)", given[1], y)):
        if not np.array_equal(before, after):
            _fail(loss, f"forward changed its {what} in place: they are the model's output "
                        f"and the trainer's batch; compute on a copy (docs/plugins.md, 'A "
                        f"loss')")
    return value


def _check_large(loss_cls, kwargs, y_hat, y):
    """At predictions of some hundreds (logits past exp's float32 range), a float32
    loss and gradient are finite where float64's are within float32's range (a
    softmax cross-entropy without the row maximum subtracted gives NaN); and neither
    forward writes into them (a clip to +-5 in place passed at the examples' scale)."""
    want = _forward_leaves_inputs(loss_cls(**kwargs), y_hat, y)
    l32 = loss_cls(**kwargs)
    with np.errstate(over="ignore", invalid="ignore"):
        got = _forward_leaves_inputs(l32, y_hat.astype(np.float32), y)
        grad = np.asarray(l32.backward())
    if abs(want) <= FLOAT32_MAX / 2 and not (np.isfinite(got) and np.isfinite(grad).all()):
        _fail(l32, f"float32 predictions {LARGE:g} times the example's give the loss {got} "
                   f"and {'a finite' if np.isfinite(grad).all() else 'a NaN or inf'} "
                   f"gradient, float64 ones {want}: compute them so that no step overflows "
                   f"(a softmax subtracts each row's maximum before exp)")


def _outside(kind, shape, y, ignored=None):
    """Targets of ``kind`` with one label outside it (class -1 and C, sign 0 and 2; not
    the loss's ``ignore_index``): a loss that took them trained a model of -1/+1 labels
    to predict one class, or class -1 as the last one."""
    if kind == "values":
        return []
    out = []
    for value in ((-1, shape[1]) if kind == "classes" else (0, 2)):
        if _same(value, ignored):
            continue
        bad = np.array(y, copy=True)
        bad.flat[0] = value
        out.append((bad, f"a {'class' if kind == 'classes' else 'sign'} label {value}"))
    return out


def check_loss(loss_cls):
    """Run check_loss_case over every entry of ``loss_cls.examples``
    ([(kwargs, prediction shape, "classes" | "signs" | "values")]), each with both
    reductions where the loss takes ``reduction``: the gradient's scale (1/N for a
    mean) is part of what each reduction gets right; and the two against each other
    (:func:`check_reductions`)."""
    examples = _examples(loss_cls, "kwargs, prediction shape, target kind", "check_loss", Loss)
    for kwargs, shape, kind in examples:
        check_loss_case(loss_cls, kwargs, shape, kind)
        reduction = _build(loss_cls, kwargs).config().get("reduction")
        if reduction in ("mean", "sum"):
            other = {**kwargs, "reduction": "sum" if reduction == "mean" else "mean"}
            check_loss_case(loss_cls, other, shape, kind)
            check_reductions(loss_cls, kwargs, _shape("check_loss", shape), kind)
    check_options_matter(loss_cls, examples)


def check_options_matter(loss_cls, examples):
    """Warn of an option that the examples set away from its default and that changes
    neither an example's loss nor the weight penalty (Hinge's lam): a loss that forgot it
    passed every other check (an option may rightly change nothing on some batch, hence
    a warning)."""
    defaults = {k: p.default for k, p in inspect.signature(loss_cls).parameters.items()
                if p.default is not inspect.Parameter.empty and k != "reduction"}
    set_away = {k for kwargs, _, _ in examples for k, v in kwargs.items()
                if k in defaults and not _same(v, defaults[k])}
    for option in sorted(set_away):
        for kwargs, shape, kind in examples:
            if option not in kwargs or _same(kwargs[option], defaults[option]):
                continue
            rng = np.random.default_rng(0)
            y_hat, y = rng.normal(size=tuple(shape)) * 2, _targets(kind, tuple(shape), rng)
            plain = {k: v for k, v in kwargs.items() if k != option}
            value, targets = kwargs[option], [y]
            if kind == "classes" and isinstance(value, (int, np.integer)) and \
                    not isinstance(value, bool):  # (an ignore_index: a label it names)
                marked = np.array(y, copy=True)
                marked.flat[0] = value
                targets.append(marked)
            changed = False
            for t in targets:
                try:
                    changed = changed or _effect(_build(loss_cls, kwargs), y_hat, t) != \
                        _effect(_build(loss_cls, plain), y_hat, t)
                except Exception:  # noqa: BLE001 - one of them refuses it: it matters
                    changed = True
            if changed:
                break
        else:
            warnings.warn(f"{_name(loss_cls)}: the option {option!r} changes no example's "
                          f"loss against its default {defaults[option]!r}: is it used?",
                          UserWarning, stacklevel=3)


def _same(a, b) -> bool:
    """a == b as one bool, or False where it is none (arrays, odd objects)."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an element-wise or failing ==
        return False


def _effect(loss, y_hat, y) -> tuple:
    """(the loss of a batch, the penalty of a weight of ones, named as a model names its
    first layer's): what an option may change."""
    return loss.forward(y_hat, y), loss.penalty([("0.weight", Parameter(np.ones(3)))])


def check_reductions(loss_cls, kwargs: dict, shape: tuple, kind: str, seed: int = 0):
    """The two reductions compute one loss: per sample, "sum" gives c times what
    "mean" gives, c being 1, or K for K outputs a sample (the mean over them), and
    the gradients follow (N c times): a "sum" that forgot an option passed each
    reduction's own checks."""
    rng = np.random.default_rng(seed)
    y_hat, y = rng.normal(size=shape) * 2, _targets(kind, shape, rng)
    got = {}
    for reduction in ("mean", "sum"):
        loss = _build(loss_cls, {**kwargs, "reduction": reduction})
        losses, _ = loss._compute(np.ascontiguousarray(y_hat), y, y_hat.dtype.type(1.0))
        loss.forward(y_hat, y)
        got[reduction] = (np.array(to_host(losses), np.float64), np.array(loss.backward()))
    (mean, g_mean), (total, g_sum) = got["mean"], got["sum"]
    k = int(np.prod(shape[1:], dtype=np.int64))
    c = next((c for c in {1, k} if np.allclose(total, c * mean, rtol=1e-9, atol=1e-12)), None)
    loss = _build(loss_cls, kwargs)
    if c is None:
        i = int(np.argmax(np.abs(total - mean)))
        _fail(loss, f"its per-sample losses under reduction='sum' are not those under 'mean' "
                    f"times 1 (or {k}, its outputs a sample): sample {i} gives {total[i]:.8g} "
                    f"and {mean[i]:.8g}; both reductions must compute the same loss, the "
                    f"options included")
    if not np.allclose(g_sum, shape[0] * c * g_mean, rtol=1e-9, atol=1e-12):
        _fail(loss, f"its gradient under reduction='sum' is not {shape[0] * c} (N = "
                    f"{shape[0]} times {c}) times the one under 'mean', as its losses are")
