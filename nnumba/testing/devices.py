"""The device kit: a layer's run on another device against its CPU run
(:mod:`nnumba.testing`)."""
from __future__ import annotations

import numpy as np

from ..layers.contract import Layer
from .failures import ConformanceError
from .inputs import check_outside, example_batch
from .layers import _build, _class, _examples, _fail, _name
from .simulator import real_device_arrays


def _tolerances(kit: str, **tolerances):
    """ConformanceError unless each is a finite number >= 0: else numpy's TypeError
    from the comparison reads as the device's failure, and a NaN, negative or infinite
    tolerance passes or fails everything alike."""
    for name, tol in tolerances.items():
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)) \
                or not 0 <= tol < np.inf:
            raise ConformanceError(f"{kit}: {name} must be a finite number >= 0, got "
                                   f"{tol!r:.80} ({type(tol).__name__})")


def check_kernels(device, rtol32=1e-5, rtol64=1e-12) -> int:
    """Every kernel of ``device``'s set against the CPU set's on the same random inputs,
    in float32 and float64: the example calls of :mod:`nnumba.kernels.cases`, the
    fused steps', the losses' and the SGD update's included, which no single layer's
    :func:`check_device` reaches.  Outputs the kernel writes fully start as NaN on its
    side, so an element it leaves unwritten fails.  A mismatch beyond ``rtol32`` /
    ``rtol64`` (of the largest value), or an exception, is a ConformanceError naming
    the kernel and the call.  Returns the number of outputs compared."""
    from ..device import get_device
    from ..kernels import KERNELS, cases
    _tolerances("check_kernels", rtol32=rtol32, rtol64=rtol64)
    device = get_device(device)
    kernels = device.kernels  # a DeviceError where the set is incomplete or misfits
    compared = 0
    with real_device_arrays():  # in the simulator, as a GPU's arrays
        for name in KERNELS:
            for dtype, tol in ((np.float32, rtol32), (np.float64, rtol64)):
                where = f"{device.name}: kernel {name}, {np.dtype(dtype).name}"
                try:
                    results = cases.twin(name, kernels, device.to_device, device.to_host,
                                         "tiny", dtype)
                except Exception as exc:  # noqa: BLE001 - the device's code: named, chained
                    raise ConformanceError(f"{where}: {type(exc).__name__}: {exc}") from exc
                for label, (got, want) in results.items():
                    off = cases.mismatch(got, want)
                    if not off <= tol:
                        raise ConformanceError(
                            f"{where}: {label} differs from the CPU set's by {off:.3g} of its "
                            f"largest value (allowed {tol:g}; inf: another shape, an "
                            f"element left unwritten or NaN, or an input written)")
                    compared += 1
    return compared


def check_device(layer_cls, device="cuda", rtol=1e-12, atol=1e-12):
    """Every example of ``layer_cls`` on ``device`` against the CPU: forward in training
    and evaluation mode, the state (``trainable=False``) each leaves, the input
    gradient and every parameter gradient, after one backward and a second, in float64,
    at the examples' sizes (test larger batches and float32 yourself).  Layers whose
    ``devices`` leave the device out are skipped (returns False); True when compared.
    An exception the layer's device code raises is a ConformanceError naming the
    example, with it chained."""
    from ..device import get_device
    _class("check_device", layer_cls, Layer)
    _tolerances("check_device", rtol=rtol, atol=atol)
    device = get_device(device)
    if not layer_cls.runs_on(device):
        return False
    with real_device_arrays():  # in the simulator, as a GPU's arrays
        for kwargs, shape in _examples(layer_cls, "kwargs, input shape"):
            try:
                _compare(layer_cls, kwargs, shape, device, rtol, atol)
            except Exception as exc:  # noqa: BLE001 - the layer's own code: named, chained
                kit = isinstance(exc, ConformanceError)
                head = str(exc) if kit else \
                    f"{_name(layer_cls)}: on {device.name}, {type(exc).__name__}: {exc}"
                raise ConformanceError(f"{head} (example {kwargs!r:.80}, input shape "
                                       f"{tuple(shape)})") from (exc.__cause__ if kit else exc)
    return True


def _compare(layer_cls, kwargs, shape, device, rtol, atol):
    """One example: forwards, state and gradients on ``device`` against the CPU."""
    from ..device import to_host
    rng = np.random.default_rng(0)
    cpu, other = (_build(layer_cls, kwargs).astype(np.float64) for _ in "12")
    x = example_batch(cpu, shape, rng)
    for layer in (cpu, other):
        layer.reset_parameters(np.random.default_rng(1))
    other.to(device)
    y = cpu.forward(x)
    y_dev = _run(other, "forward", device, x)
    if not device.owns(y_dev):
        _fail(other, f"forward on {device.name} returned a {type(y_dev).__name__}")
    _close(other, f"forward on {device.name}", to_host(y_dev), y, rtol, atol)
    _close_state(cpu, other, f"after a training forward on {device.name}", rtol, atol)
    check_outside(other, x, lambda layer, bad: _run(layer, "forward", device, bad))
    for layer in (cpu, other):
        layer.eval()
    _close(other, f"forward in evaluation mode on {device.name}",
           to_host(_run(other, "forward", device, x)), cpu.forward(x), rtol, atol)
    _close_state(cpu, other, f"after a forward in evaluation mode on {device.name}", rtol, atol)
    for layer in (cpu, other):
        layer.train()
    if not layer_cls.has_gradient:
        return
    y = cpu.forward(x)  # the forward backward follows, in training mode again
    _run(other, "forward", device, x)
    g = rng.standard_normal(y.shape)
    for layer in (cpu, other):
        layer.zero_grad()
    # each side its own copy of g: a layer that writes into dl_dy (check_all names that)
    # changed the CPU's g before the device's was made, and the device was blamed
    dx = cpu.backward(g.copy())
    dx_dev = _run(other, "backward", device, g)
    _close(other, f"the input gradient on {device.name}", to_host(dx_dev), dx, rtol, atol)
    # then a second backward, which adds to the first: overwriting agrees on the first alone
    for when in ("", " after a second backward (it must add into grad, +=, not overwrite it)"):
        if when:
            cpu.forward(x)
            _run(other, "forward", device, x)
            cpu.backward(g.copy())
            _run(other, "backward", device, g)
        for name, p in cpu.params().items():
            _close(other, f"the gradient of {name} on {device.name}{when}",
                   to_host(other.params()[name].grad), p.grad, rtol, atol)


def _run(layer, step, device, a):
    """layer.forward or layer.backward on ``a`` moved to ``device``.  A TypeError or
    AttributeError there (not on the CPU) is, for a body without kernels of its own,
    numpy's work asked of device arrays."""
    try:
        return getattr(layer, step)(device.to_device(a))
    except (TypeError, AttributeError) as exc:  # HostOnlyError is a TypeError
        hint = "" if isinstance(layer.devices, dict) else (
            ". A body that calls numpy on device arrays fails so on a GPU (in the CUDA "
            "simulator too, within nnumba.testing): write it with self.kernels, or declare "
            "devices = (\"cpu\",)")
        raise ConformanceError(f"{layer.type_name}: its {step} on {device.name} raised "
                               f"{type(exc).__name__}: {exc}{hint}") from exc


def _close_state(cpu, other, when, rtol, atol):
    """The state (``trainable=False``) of the device's copy against the CPU's."""
    from ..device import to_host
    for name, p in cpu.params().items():
        if not p.trainable:
            _close(other, f"its state {name} {when}", to_host(other.params()[name].value),
                   p.value, rtol, atol)


def _close(owner, what, got, want, rtol, atol):
    if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
        _fail(owner, f"{what} differs from the CPU's (shape {got.shape} vs {want.shape}, "
                     f"max difference {np.max(np.abs(got - want)) if got.shape == want.shape else '-'})")
