"""The layer kit: gradients, rejections, save/load, the batch sums, devices
(:mod:`nnumba.testing`)."""
from __future__ import annotations

import pickle
import warnings

import numpy as np

from ..device import DeviceError
from ..errors import (ContractError, DTypeError, NnumbaError, NoGradientError, NonFiniteError,
                      ShapeError)
from ..layers.contract import Layer, Parameter, shapes_only
from ..layers.validation import compile_unit_of
from .batch_checks import (check_batch_sums, check_finite,  # noqa: F401 - the kit's, here too
                           check_state)
from .eval_gradient import check_eval_gradient
from .failures import (ConformanceError, _backward, _compare, _fail,  # noqa: F401 - the kit's
                       _finite_gradient, _raised, _worst, draw_alike, dtype_hint,
                       numeric_gradient, same_draws)
from .inputs import _draws_own, check_outside, example_batch
from .precision import LARGE, check_float32, check_float32_modes  # noqa: F401 - the kit's, too
from .round_trip import check_round_trip, check_state_in_model  # noqa: F401 - the kit's
from .caller_arrays import check_read_only  # noqa: F401 - the kit's, here too
from .stamps import check_devices_named, check_stamped


def _expect_error(owner, call, kinds, what):
    try:
        call()
    except kinds as exc:
        if owner.type_name not in str(exc):
            _fail(owner, f"the error for {what} does not name it: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - reported as a conformance failure
        _fail(owner, f"{what} raised {type(exc).__name__} ({exc}), expected {kinds}")
    _fail(owner, f"{what} was accepted; it must raise a clear error")


def check_gradients(layer, x, rng, eps=1e-6, rtol=1e-5, atol=1e-7):
    """``layer``'s input and parameter gradients at ``x`` (float64) against central finite
    differences of sum(forward(x) * g), g drawn from ``rng``; ConformanceError if not."""
    again = same_draws(layer)  # every forward below draws what the first one drew
    # and starts from the same state (trainable=False): a training output may use a
    # running statistic from before the batch, which its forward then moves
    state = [(p, p.value.copy()) for p in layer.params().values() if not p.trainable]

    def forward():
        again()
        for p, value in state:
            p.value[...] = value
        return layer.forward(x)
    y = forward().copy()
    if not np.array_equal(forward(), y, equal_nan=True):
        _fail(layer, "two training forwards of one input differ, with the generator "
                     "random_generator() returns and the state (trainable=False) put back "
                     "before each: either the layer draws from another generator (return "
                     "the one it draws from, not None, a copy or a new one), or its "
                     "training output depends on state its forward moves outside its "
                     "parameters (keep a running statistic or a count with add_param(..., "
                     "trainable=False)), which finite differences cannot check")
    g = rng.normal(size=y.shape)

    def objective():
        return float(np.sum(forward() * g))

    params = layer.params()
    grads = {}
    for wants_dx in (True, False):  # as an inner layer, then as a model's first layer
        for p in params.values():
            p.grad.fill(0)
        layer.set_flags(needs_input_grad=wants_dx)
        forward()
        dx = _backward(layer, g)
        mode = "" if wants_dx else " with needs_input_grad False (a model's first layer)"
        if wants_dx:
            dx = dx.copy()
            if dx.shape != x.shape or dx.dtype != x.dtype:
                _fail(layer, f"gradient for input is {dx.dtype} {dx.shape}, expected "
                             f"{x.dtype} {x.shape}")
            _compare(layer, "input", dx, numeric_gradient(objective, x, eps), rtol, atol)
            grads = {name: p.grad.copy() for name, p in params.items()}
        for name, p in params.items():
            if p.grad.shape != p.value.shape:
                _fail(layer, f"gradient for {name} has shape {p.grad.shape}, expected "
                             f"{p.value.shape}")
            if not p.trainable and p.grad.any():  # else blamed on a stale copy below
                _fail(layer, f"backward wrote into {name}.grad, the gradient of state "
                             f"(trainable=False) that no optimizer reads: leave it alone")
            if wants_dx:
                _compare(layer, name, p.grad, numeric_gradient(objective, p.value, eps),
                         rtol, atol)
            elif not np.allclose(p.grad, grads[name], rtol=1e-9, atol=1e-12):
                _fail(layer, f"the gradient for {name}{mode} differs from the one computed "
                             f"with the input gradient: backward must add the parameter "
                             f"gradients before returning None")
    layer.set_flags(needs_input_grad=True)
    # Parameter gradients accumulate: a second backward adds the same again.
    if params:
        forward()
        layer.backward(g)
        for name, p in params.items():
            if not np.allclose(p.grad, 2 * grads[name], rtol=1e-9, atol=1e-12):
                _fail(layer, f"backward must accumulate (+=) into {name}.grad, not overwrite it")


def check_seeded(layer_cls, kwargs, seed):
    """Two layers initialised from generators of one seed hold the same values, and a
    generator they draw from as they run is in the same state: a layer that draws from
    elsewhere (np.random, fresh entropy) breaks 'one seed, one model'."""
    a, b = (_build(layer_cls, kwargs) for _ in "ab")
    for one in (a, b):
        one.reset_parameters(np.random.default_rng(seed))
    for name, p in a.params().items():
        if not np.array_equal(p.value, b.params()[name].value):
            _fail(a, f"two copies reset from generators of one seed differ in {name}: "
                     f"draw every initial value from the rng reset_parameters is given")
    if not draw_alike(a, b):
        _fail(a, "two copies reset from generators of one seed hold generators "
                 "(random_generator()) in different states, or one generator object: "
                 "keep one per layer and, where no seed is given, seed it in "
                 "reset_parameters from the rng given there "
                 "(np.random.default_rng(rng.integers(2**63)))")


def check_costs(layer, input_shape):
    """flops() returns None or three counts (nnumba summary's columns), compile_unit()
    a key and seconds (fit's precompilation plan)."""
    from ..summary import layer_flops
    try:
        layer_flops(layer, tuple(input_shape))
        compile_unit_of(layer, tuple(input_shape))
    except ContractError as exc:
        raise ConformanceError(str(exc)) from None


def check_rejections(layer, x):
    """That ``layer`` refuses with a clear nnumba error an int64 input, one of its other
    float dtype, a list, an empty batch, NaN, a wider or missing axis; ``x`` is valid."""
    other = np.dtype(np.float32 if layer.dtype == np.float64 else np.float64)
    _expect_error(layer, lambda: layer.forward(x.astype(np.int64)), DTypeError, "an int64 input")
    _expect_error(layer, lambda: layer.forward(x.astype(other)), DTypeError,
                  f"a {other.name} input to a {layer.dtype.name} layer")
    _expect_error(layer, lambda: layer.forward(x.tolist()), DTypeError, "a list input")
    _expect_error(layer, lambda: layer.forward(x[:0]), ShapeError, "an empty batch")
    bad = x.copy()
    bad.reshape(-1)[0] = np.nan
    _expect_error(layer, lambda: layer.forward(bad), NonFiniteError, "a NaN input")
    want = layer.input_shape()
    if want is not None:
        fixed = [i for i, w in enumerate(want) if w is not None and w is not Ellipsis]
        if fixed:  # widen an axis whose size the layer fixes
            shape = list(x.shape)
            shape[fixed[-1] + 1] += 3
            wider = np.zeros(shape, layer.dtype)
            _expect_error(layer, lambda: layer.forward(wider), ShapeError,
                          f"an input of shape {wider.shape}")
        if Ellipsis not in want:  # else more axes are welcome
            _expect_error(layer, lambda: layer.forward(
                x.reshape(x.shape[0], -1, 1, 1)[..., 0, 0] if x.ndim > 2 else x[..., None]),
                ShapeError, "an input with the wrong number of axes")


def _chunks(a) -> list:
    """Bytes that a pickle of ``a``, of a copy or of a float64 or float32 cast of it
    holds: its first four values in a row that are non-zero and distinct (zeros or
    repeats could be anything's), or none where it has no such run."""
    flat = np.ravel(a)[:1000]
    for i in range(flat.size - 3):
        run = flat[i:i + 4]
        if np.all(run != 0) and np.unique(run).size == 4:
            return [run.astype(dt).tobytes() for dt in (np.float64, np.float32)]
    return []


def check_kept_names(layer, x):
    """What a training forward keeps of its input or output (that array, a view or
    copy of it, or either in a tuple, list or dict: an attribute whose pickle holds
    its values; parameters aside) is named in ``kept_for_backward``, which a copy or
    pickle leaves out: else a pickled model carries the samples it last saw.  A
    warning, not a failure: layers written before that attribute pass the kit."""
    x = x.copy()
    y = layer.train(True).forward(x)
    kept = {name for name, value in vars(layer).items()
            if isinstance(value, np.ndarray) and name not in layer.kept_for_backward
            and (np.may_share_memory(value, x) or np.may_share_memory(value, y))}
    # the first values, the last sample's and the first of the transposed layout
    chunks = [c for a in (x, y) for part in (a, a[-1:], a.T) for c in _chunks(part)]
    state = layer.__getstate__()  # what a copy or pickle keeps
    for name, value in (state.items() if isinstance(state, dict) else [("", state)]):
        if name == "_params" or isinstance(value, Parameter):  # an output may start with
            continue                                           # one (a class token)
        try:
            held = pickle.dumps(value)
        except Exception:  # noqa: BLE001, S112 - what cannot pickle is no pickle's
            continue
        if any(chunk in held for chunk in chunks):
            kept.add(name or "its __getstate__()")
    if kept:
        warnings.warn(f"{layer.label}: forward keeps its input or output (or a copy) in "
                      f"{', '.join(sorted(kept))}, which kept_for_backward "
                      f"{layer.kept_for_backward} does not name: a pickled model would carry "
                      f"the samples it last saw; add them to kept_for_backward "
                      f"(docs/plugins.md)", stacklevel=3)


def _name(cls):
    return getattr(cls, "type_name", None) or getattr(cls, "__name__", repr(cls))


def _examples(cls, parts: str, kit="check_all", base=None):
    """``cls.examples`` checked for its form: a list of tuples ``parts`` names."""
    _class(kit, cls, base or Layer)
    n = parts.count(",") + 1
    form = f"examples = [({parts}), ...]"
    examples = getattr(cls, "examples", None)
    if not examples:
        raise ConformanceError(f"{_name(cls)}: no examples; add {form} to the class")
    if not isinstance(examples, (list, tuple)):
        raise ConformanceError(f"{_name(cls)}: examples must be a list, {form}; got "
                               f"{type(examples).__name__}")
    for i, example in enumerate(examples):
        if not isinstance(example, (list, tuple)) or len(example) != n \
                or not isinstance(example[0], dict):
            raise ConformanceError(f"{_name(cls)}: examples[{i}] is {example!r:.80}; each "
                                   f"example is a tuple ({parts}) with kwargs a dict")
        _shape(f"{_name(cls)}: examples[{i}]", example[1])
    return [tuple(e) for e in examples]


def _shape(owner, shape) -> tuple:
    if not isinstance(shape, (list, tuple)) or not shape or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
            for d in shape):
        raise ConformanceError(f"{owner}: the shape must be a tuple of positive sizes, batch "
                               f"axis first, got {shape!r:.80}")
    return tuple(int(d) for d in shape)


def _class(kit, cls, base):
    """``cls`` where it is a class of ``base`` (Layer or Loss); the kits build their own
    instances, so an instance given is refused here rather than blamed on its class."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        hint = f" (an instance: pass its class, {kit}({type(cls).__name__}))" \
            if isinstance(cls, base) else ""
        raise ConformanceError(f"{kit} takes a {base.__name__} subclass, got "
                               f"{cls!r:.80}{hint}")
    return cls


def _build(cls, kwargs):
    try:
        return cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the author's constructor, reported
        raise ConformanceError(f"{_name(cls)}: {_name(cls)}(**{kwargs!r:.80}) raised "
                               f"{type(exc).__name__}: {exc}") from None


def check_layer(layer_cls, kwargs: dict, input_shape: tuple, seed: int = 0):
    """Run every check on ``layer_cls(**kwargs)`` with inputs of ``input_shape``; a
    broken contract (a forgotten return, a missing method) is a ConformanceError too."""
    _class("check_layer", layer_cls, Layer)
    if not isinstance(kwargs, dict):
        raise ConformanceError(f"check_layer: kwargs must be a dict of the constructor's "
                               f"arguments, got {kwargs!r:.80}")
    input_shape = _shape(f"check_layer({_name(layer_cls)})", input_shape)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        # else None seeds two copies differently, and numpy's refusal reads as the layer's
        raise ConformanceError(f"check_layer: seed must be an integer >= 0, got {seed!r:.80}")
    try:
        _check_layer(layer_cls, kwargs, input_shape, seed)
    except ConformanceError:
        raise
    except (ContractError, NotImplementedError) as exc:
        raise ConformanceError(f"{_name(layer_cls)}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the author's code raised: say where, keep its traceback
        raise _raised(_name(layer_cls), "check_layer", input_shape, exc) from exc


def _check_layer(layer_cls, kwargs, input_shape, seed):
    from ..model_checks import check_no_inner_layer
    rng = np.random.default_rng(seed)
    layer = _build(layer_cls, kwargs)
    try:
        with shapes_only():  # as nnumba summary builds it: parameters are read-only stand-ins
            layer_cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the author's constructor, reported
        _fail(layer, f"{_name(layer_cls)}(**{kwargs!r:.80}), built as nnumba summary builds "
                     f"it (nnumba.layers.shapes_only()), raised {type(exc).__name__}: {exc}; "
                     f"set no values in __init__: reset_parameters sets them")
    check_no_inner_layer(layer, _name(layer_cls), ConformanceError)
    layer = layer.astype(np.float64)
    layer.reset_parameters(rng)
    x = example_batch(layer, input_shape, rng)
    given = x.copy()  # x itself stays as drawn for check_read_only
    try:
        y = layer.forward(given)
    except NnumbaError as exc:  # the layer's own refusal of the example
        if isinstance(exc, ContractError):
            raise
        if isinstance(exc, DeviceError):  # its own kernels do not import: no refusal
            raise ConformanceError(f"{layer.type_name}: {exc}") from exc
        _fail(layer, f"refused the example input of shape {tuple(input_shape)} ({exc}); an "
                     f"example gives the input shape with the batch axis first, and one that "
                     f"input_shape() accepts; a layer that takes fewer values than any float "
                     f"(an embedding's ids) draws its own with example_input(shape, rng)"
                     f"{dtype_hint(exc)}")
    if y is not given and not layer.output_is_view and np.may_share_memory(y, given):
        _fail(layer, "its output is a view of its input: set output_is_view = True (as "
                     "Flatten does), or a model hands the caller a view of an earlier "
                     "layer's output, which the caller may write into")
    want = (input_shape[0],) + tuple(layer.output_shape(tuple(input_shape[1:])))
    if y.shape != want:
        _fail(layer, f"output shape {y.shape} differs from output_shape(): {want}")
    if y.dtype != np.float64:
        _fail(layer, f"a float64 input gave a {y.dtype} output")
    check_finite(layer, y, f"the example of shape {tuple(input_shape)}")
    for taken in check_outside(layer, x):  # inputs past a narrow example_input it takes
        if layer.has_gradient:
            check_gradients(layer, taken, rng)
    check_seeded(layer_cls, kwargs, seed)
    check_costs(layer, input_shape[1:])
    check_read_only(layer, x, rng, alone=True)
    check_state(layer, x)  # (.batch_checks)
    l32 = layer_cls(**kwargs)
    y32 = l32.forward(x.astype(np.float32))
    if y32.dtype != np.float32 or y32.shape != want:
        _fail(layer, f"a float32 input gave {y32.dtype} {y32.shape}, expected float32 {want}")
    if layer.has_gradient:
        dx32 = _backward(l32, np.ones(want, np.float32))
        if dx32 is not None and dx32.dtype != np.float32:
            _fail(layer, f"a float32 backward gave a {dx32.dtype} input gradient: keep the "
                         f"layer's dtype (a Python float or a float64 array promotes it)")
    check_float32(layer, x, rng, modes=False)  # the modes after check_round_trip below
    if not _draws_own(layer):  # any float: large ones too (exp past float32's range)
        check_float32(layer, x * LARGE, rng, modes=False, large=True)
    if layer.has_gradient:
        check_gradients(layer, x, rng)
    check_batch_sums(layer, x)  # (.batch_checks)
    check_eval_gradient(layer, x, rng)
    if not layer.has_gradient:
        layer.forward(x)
        _expect_error(layer, lambda: layer.backward(np.ones(want)), NoGradientError,
                      "backward of a layer without gradient")
    check_rejections(layer, x)
    check_kept_names(layer, x)
    check_round_trip(layer, x)
    # after it: its message names a state update through an array kept from
    # reset_parameters, which the float32 copy's new arrays would show first
    check_float32_modes(layer, x)


def check_all(layer_cls):
    """Run check_layer over every entry in ``layer_cls.examples``, and again with the
    axes ``input_shape()`` leaves free at size 1 (a kernel that read past a clip of one
    frame passed every example of more).  Each distinct warning comes once, however
    many examples give it."""
    caught, failure = [], None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _check_examples(layer_cls)
    except BaseException as exc:  # noqa: BLE001 - raised below, after the warnings
        failure = exc
    try:  # (with a failure too: the warnings before it say what else to fix)
        for category, text in dict.fromkeys((w.category, str(w.message)) for w in caught):
            warnings.warn(text, category, stacklevel=2)
    finally:  # a warning the caller turns into an error does not hide the failure
        if failure is not None:
            raise failure


def _check_examples(layer_cls):
    for kwargs, shape in _examples(layer_cls, "kwargs, input shape"):
        check_layer(layer_cls, kwargs, shape)
        for ones in _size_one(layer_cls, kwargs, tuple(shape)):
            try:
                check_layer(layer_cls, kwargs, ones)
            except ConformanceError as exc:
                raise ConformanceError(f"{exc} (at {ones}: the example {tuple(shape)} with "
                                       f"the axes input_shape() leaves free at size 1; a "
                                       f"layer that takes only some sizes there says so in "
                                       f"input_shape() or refuses the others with a "
                                       f"ShapeError)") from exc
    check_stamped(layer_cls)
    check_devices_named(layer_cls)


def _takes(layer_cls, kwargs, shape, declared) -> bool:
    """Whether the pass checks the layer at ``shape``: not where a training forward
    refuses it with nnumba's error (a batch norm needs two values a channel); where it
    ``declared`` the axis free, any other error is check_layer's to report, and a layer
    that declared nothing (input_shape() None: any shape, it says) must refuse a size it
    does not take so: a LayerNorm with no width check raised numpy's bare ValueError
    here, and at another width normalised across samples (plugin trial 34)."""
    layer = _build(layer_cls, kwargs).astype(np.float64)
    x = example_batch(layer, shape, np.random.default_rng(0))  # (its own errors: its own)
    try:
        layer.forward(x)
    except ContractError:
        return True
    except NnumbaError:
        return False
    except Exception as exc:  # noqa: BLE001 - reported where it declared the size free
        if declared:
            return True
        raise ConformanceError(
            f"{layer.label}: forward of a batch of shape {shape} (its example with axes at "
            f"size 1) raised {type(exc).__name__}: {exc}. input_shape() None says it takes "
            f"any shape: declare the sizes it takes in input_shape(), or refuse the others "
            f"with a ShapeError in output_shape") from exc
    return True


def _size_one(layer_cls, kwargs, shape) -> list[tuple]:
    """``shape`` with every free axis at 1 where the layer takes that, else each free axis
    at 1 on its own where it takes that; none that the example has already."""
    try:
        with shapes_only():
            layer = layer_cls(**kwargs)
        want = layer.input_shape()
    except Exception:  # noqa: BLE001 - check_layer reports the constructor's errors
        return []
    rank, declared = len(shape) - 1, want is not None
    if want is None:
        free = list(range(rank))
    else:
        fixed = [w for w in want if w is not Ellipsis]
        free = [i for i in range(rank) if i >= len(fixed) or fixed[i] is None]
    free = [i for i in free if shape[1 + i] > 1]

    def with_ones(axes):
        new = tuple(1 if i - 1 in axes else n for i, n in enumerate(shape))
        try:
            out = layer.output_shape(new[1:])
        except NnumbaError:  # (a kernel larger than one frame): not a size it takes
            return None
        except Exception as exc:  # noqa: BLE001 - the author's code, declared or not
            _fail(layer, f"output_shape{new[1:]} raised {type(exc).__name__}: {exc}; a size "
                         f"the layer does not take is a ShapeError naming it (self.label)")
        return new if all(n >= 1 for n in out) and _takes(layer_cls, kwargs, new, declared) \
            else None

    if not free:
        return []
    together = with_ones(set(free))  # (a forward in training mode decides, as for a
    # batch norm that needs two values a channel: a refusal there is no failure)
    if together is not None:
        return [together]
    return [s for s in (with_ones({i}) for i in free) if s is not None]
