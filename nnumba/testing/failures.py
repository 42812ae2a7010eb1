"""How the kits say a layer or loss breaks the contract."""
from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np

from ..errors import ContractError, DTypeError


class ConformanceError(AssertionError):
    """A layer, loss, model, data set or device breaks nnumba's contract: the message
    names the check and the example, chained to what the code under test raised."""


def _backward(layer, g):
    try:
        return layer.backward(g)
    except ContractError as exc:  # such as None returned where dl/dx is wanted
        raise ConformanceError(str(exc)) from None


def _finite_gradient(owner, what, grad):
    """Checked before a comparison, where NaN would equal nothing."""
    if not np.isfinite(grad).all():
        _fail(owner, f"{what} holds NaN or inf for a finite input and upstream gradient, at "
                     f"{tuple(int(i) for i in np.argwhere(~np.isfinite(grad))[0])}")


def _fail(owner, what):
    raise ConformanceError(f"{owner.type_name}: {what}")


def _worst(got, want) -> tuple:
    """The index where ``got`` and ``want`` differ most."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - want)), want.shape))


def dtype_hint(exc) -> str:
    """The usual cause of a kernel given two dtypes in the kit, which converts the layer
    (float64 for the gradients, float32 after): an array kept from a parameter."""
    return ("; a kernel got arrays of two dtypes: an array kept from a parameter or a "
            "buffer (self.a = param.value) keeps its dtype when the model converts: read "
            "param.value at every call, never a copy" if isinstance(exc, DTypeError) else "")


def _raised(name, kit, shape, exc) -> ConformanceError:
    """The kit's failure for an exception the author's code raised (a ZeroDivisionError
    in _forward): it names the check that was running, the innermost ``check_*`` of the
    kit's own frames, and the example's shape; raise it ``from exc``."""
    here = str(Path(__file__).parent)
    checks = [f.name for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(here) and f.name.startswith("check_")]
    return ConformanceError(f"{name}: {type(exc).__name__} ({exc}) was raised by its code in "
                            f"{checks[-1] if checks else kit} on the example of shape {shape}"
                            f"{dtype_hint(exc)}")


def same_draws(layer, other=None):
    """A function that puts the generator ``random_generator()`` of ``other`` (default:
    ``layer`` itself) at the state ``layer``'s is in now: called before every forward
    of a gradient check, a layer that draws as it runs computes one function, which
    finite differences can check; called before a copy's forward, the copy draws
    what ``layer`` drew (also where both hold one generator)."""
    gen = layer.random_generator()
    state = None if gen is None else gen.bit_generator.state

    def again():
        target = gen if other is None else other.random_generator()
        if state is not None and target is not None:
            target.bit_generator.state = state
    return again


def draw_alike(a, b) -> bool:
    """Whether layers a and b draw the same numbers as they run: both without a
    generator, or generators of one kind in one state, each its own (one object shared
    by every copy moves on with each: two builds of one seed draw differently)."""
    ga, gb = a.random_generator(), b.random_generator()
    for gen in (ga, gb):
        if gen is not None and not isinstance(gen, np.random.Generator):
            _fail(a, f"random_generator() returns {type(gen).__name__}, not a numpy "
                     f"Generator (np.random.default_rng(...)) or None")
    if ga is None or gb is None or ga is gb:
        return ga is None and gb is None
    return _same_state(ga.bit_generator.state, gb.bit_generator.state)


def _same_state(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def numeric_gradient(f, array, eps):
    """Central differences of the scalar f() with respect to every element of ``array``,
    which is perturbed in place (one element at a time) and left as it was."""
    numeric = np.empty(array.shape, array.dtype)
    for i in np.ndindex(array.shape):  # (through the array itself, in any memory order:
        keep = array[i]                # reshape(-1) of a Fortran-ordered one is a copy)
        array[i] = keep + eps
        up = f()
        array[i] = keep - eps
        down = f()
        array[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    return numeric


def _compare(owner, name, analytic, numeric, rtol, atol):
    _finite_gradient(owner, f"the gradient for {name}", analytic)
    if not np.allclose(analytic, numeric, rtol=rtol, atol=atol * max(1.0, np.abs(numeric).max())):
        worst = _worst(analytic, numeric)
        hint = ""
        if not numeric.any():
            hint = ("; the output does not change with the input here: its gradient is 0"
                    if name.split(" ")[0] == "input" else
                    "; the output does not depend on it: read it as param.value at every "
                    "call, never a copy kept from __init__")
        _fail(owner, f"gradient for {name} disagrees with finite differences: at {worst} "
                     f"backward gives {analytic[worst]:.8g}, differences {numeric[worst]:.8g}"
                     f"{hint}")
