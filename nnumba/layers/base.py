"""The layer contract every layer, built-in or plugin, follows.

A layer author implements:

- ``_forward(x)``: compute the output, keeping what ``_backward`` needs;
- ``_backward(dl_dy)``: *accumulate* (+=) each parameter's gradient and return
  ``dl_dx`` (or ``None`` when ``self.needs_input_grad`` is False);
- ``input_shape(self)``: the per-sample input shape it accepts, ``None`` for a
  free axis, or ``None`` for any shape (elementwise layers);
- ``output_shape(self, input_shape)``: shape arithmetic without computing;
- ``examples``: constructor kwargs and an input shape, for the conformance kit.

For the GPU, a layer also implements ``_forward_cuda(x)`` and
``_backward_cuda(dl_dy)`` on numba.cuda device arrays with the kernels of
:mod:`nnumba.kernels.cuda` (allocating outputs with ``_device_buffer``);
``to("cuda")`` refuses, naming the layer, when it has none.

The public ``forward``/``backward`` validate arrays before they reach a kernel
(Numba does no bounds checking), so a kernel only ever sees valid shapes.
"""
from __future__ import annotations

import functools
import inspect
from typing import ClassVar

import numpy as np

from ..errors import DTypeError, NoGradientError, NonFiniteError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_default_rng = np.random.default_rng()


def seed(value: int):
    """Seed the generator that initialises layers built without a model seed."""
    global _default_rng
    _default_rng = np.random.default_rng(value)


def default_rng() -> np.random.Generator:
    return _default_rng


class Parameter:
    """A trainable array and its gradient, updated in place (never rebound by layers)."""
    __slots__ = ("value", "grad")

    def __init__(self, value: np.ndarray):
        self.value = value
        self.grad = np.zeros_like(value)

    def __repr__(self):
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


def _jsonable(value):
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class Layer:
    """Base class of all layers. See the module docstring for what to implement."""

    #: name used in model specs ({"type": type_name}); the registry key.
    type_name: ClassVar[str] = ""
    #: False for layers such as the threshold unit whose backward is meaningless.
    has_gradient: ClassVar[bool] = True
    #: [(constructor kwargs, input shape with batch axis)] for the conformance kit.
    examples: ClassVar[list] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("type_name"):
            cls.type_name = cls.__name__
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            # The outermost constructor records the spec; super().__init__ calls don't.
            if "_config" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self._config = {k: _jsonable(v) for k, v in list(bound.arguments.items())[1:]
                                if signature.parameters[k].kind not in (
                                    inspect.Parameter.VAR_POSITIONAL,
                                    inspect.Parameter.VAR_KEYWORD)}
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def __init__(self):
        self.__dict__.setdefault("_config", {})
        self._params: dict[str, Parameter] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self.dtype = np.dtype(np.float32)
        self.training = True
        self.needs_input_grad = True   # Sequential turns this off for its first layer
        self.reuse_buffers = False     # Sequential turns this on for inner layers
        self.label = self.type_name    # "Linear #2" once inside a Sequential
        self._out_shape = None

    # ---- what authors implement -------------------------------------------------
    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, dl_dy: np.ndarray):
        raise NotImplementedError

    def _forward_cuda(self, x):
        """_forward on a CUDA device array; layers that run on the GPU override it."""
        raise NotImplementedError

    def _backward_cuda(self, dl_dy):
        raise NotImplementedError

    def input_shape(self):
        """Per-sample input shape (tuple, None for a free axis), or None for any."""
        return None

    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape."""
        return tuple(input_shape)

    def reset_parameters(self, rng: np.random.Generator):
        """(Re)initialise the parameters from ``rng``; layers without any do nothing."""

    def compile_unit(self, input_shape: tuple) -> tuple[tuple, float]:
        """(key, seconds): layers with equal keys run the same CPU kernels, which
        take about ``seconds`` to compile from a cold cache.  nnumba.precompile
        compiles each key once, spreading the keys over processes by cost."""
        return (type(self).__name__,), 0.5

    # ---- parameters, mode, dtype -------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> Parameter:
        param = Parameter(np.ascontiguousarray(value, dtype=self.dtype))
        self._params[name] = param
        return param

    def params(self) -> dict[str, Parameter]:
        """Named parameters, in a fixed order."""
        return dict(self._params)

    def config(self) -> dict:
        """The constructor arguments: ``{"type": type_name, **config()}`` rebuilds it."""
        return dict(self._config)

    def spec(self) -> dict:
        return {"type": self.type_name, **self.config()}

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Switch to float32 or float64: parameters are converted, inputs must follow."""
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise DTypeError(f"{self.label}: dtype must be float32 or float64, got {dtype}")
        if self.on_cuda:  # convert on the host, then move back
            return self.to("cpu").astype(dtype).to("cuda")
        self.dtype = dtype
        for param in self._params.values():
            param.value = np.ascontiguousarray(param.value, dtype=dtype)
            param.grad = np.ascontiguousarray(param.grad, dtype=dtype)
        self._buffers.clear()
        return self

    def zero_grad(self):
        if self.on_cuda:
            from ..kernels.cuda.arrays import fill
            for param in self._params.values():
                fill(param.grad, 0)
        else:
            for param in self._params.values():
                param.grad.fill(0)
        self.grads_are_zero = True

    # ---- device ------------------------------------------------------------------------
    #: True once to("cuda") moved the layer: forward/backward then run
    #: _forward_cuda/_backward_cuda on device arrays (the CPU path checks only this).
    on_cuda = False

    @classmethod
    def supports_cuda(cls) -> bool:
        """Whether this layer has CUDA kernels (_forward_cuda and _backward_cuda)."""
        return (cls._forward_cuda is not Layer._forward_cuda
                and (cls._backward_cuda is not Layer._backward_cuda or not cls.has_gradient))

    @property
    def device(self):
        from ..device import CPU, CUDA
        return CUDA if self.on_cuda else CPU

    def check_device(self, device):
        """Raise a clear error unless this layer can run on ``device`` (a Device)."""
        from ..device import DeviceError
        if device.is_cuda and not self.supports_cuda():
            raise DeviceError(
                f"{self.label} ({type(self).__module__}.{type(self).__qualname__}) has no "
                f"CUDA kernels, so the model cannot move to 'cuda': keep it on the CPU, or "
                f"give the layer _forward_cuda/_backward_cuda (see nnumba.layers.base)")
        if not device.is_cuda and device.name != "cpu":
            raise DeviceError(f"{self.label}: no kernels for device {device.name!r}")

    def to(self, device):
        """Move the parameters to ``device`` ("cpu" or "cuda") and run there from now on.

        Raises DeviceUnavailableError where the device is missing (never falls
        back) and DeviceError where this layer has no kernels for it. Inside a
        Sequential use the model's ``to``, which keeps the flat parameter buffer."""
        from ..device import get_device
        device = get_device(device)
        self.check_device(device)
        for param in self._params.values():
            param.value = device.to_device(param.value)
            param.grad = device.to_device(param.grad)
        self._set_device(device)
        return self

    def _set_device(self, device):
        """Switch kernels (the parameters are already there); forget device buffers."""
        self.on_cuda = device.is_cuda
        self._buffers.clear()
        self._out_shape = None

    #: True right after zero_grad(): backward may then write a gradient into
    #: place instead of adding it through a temporary (the same result, one
    #: pass less). Every backward clears it.
    grads_are_zero = False

    # ---- the public, validated entry points --------------------------------------
    def forward(self, x: np.ndarray, *, check_finite: bool = True) -> np.ndarray:
        self.check_input(x, check_finite=check_finite)
        y = self._forward_cuda(x) if self.on_cuda else self._forward(x)
        self._out_shape = y.shape
        return y

    def backward(self, dl_dy: np.ndarray):
        if not self.needs_input_grad and not self._params:
            return None  # nothing upstream wants a gradient from this layer
        if not self.has_gradient:
            raise NoGradientError(
                f"{self.label} has no gradient (its output is piecewise constant): "
                f"train it with the perceptron trainer, or use a differentiable layer")
        if self._out_shape is None:
            raise RuntimeError(f"{self.label}: backward() called before forward()")
        self._check_array(dl_dy, "dl_dy")
        if dl_dy.shape != self._out_shape:
            raise ShapeError(f"{self.label}: expected dl_dy of shape {self._out_shape} "
                             f"(the shape of the last output), got {dl_dy.shape}")
        try:
            if self.on_cuda:  # device arrays are checked C-contiguous above
                return self._backward_cuda(dl_dy)
            return self._backward(np.ascontiguousarray(dl_dy))
        finally:
            self.grads_are_zero = False

    __call__ = forward

    def _check_array(self, x, what: str):
        if self.on_cuda:
            return self._check_device_array(x, what)
        if not isinstance(x, np.ndarray):
            raise DTypeError(f"{self.label}: expected {what} as a numpy array of "
                             f"{self.dtype.name}, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise DTypeError(f"{self.label}: expected {what} of dtype {self.dtype.name}, "
                             f"got {x.dtype.name} (convert with .astype(np.{self.dtype.name}))")

    def check_input(self, x, *, check_finite: bool = True):
        """Raise a clear error unless ``x`` is a non-empty batch this layer accepts."""
        self._check_array(x, "input")
        want = self.input_shape()
        if x.ndim < 1 or x.shape[0] == 0:
            raise ShapeError(f"{self.label}: got an empty batch (shape {x.shape})")
        if want is not None:
            got = x.shape[1:]
            if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
                pretty = ", ".join("*" if w is None else str(w) for w in want)
                raise ShapeError(f"{self.label}: expected input of shape (N, {pretty}), "
                                 f"got {x.shape}")
        if check_finite and not (self._device_all_finite(x) if self.on_cuda
                                 else np.isfinite(x).all()):
            raise NonFiniteError(f"{self.label}: input holds NaN or infinity")

    def _check_device_array(self, x, what: str):
        from ..device import is_device_array
        if not is_device_array(x):
            raise DTypeError(f"{self.label} is on cuda: expected {what} as a CUDA device array "
                             f"of {self.dtype.name}, got {type(x).__name__} (move it with "
                             f"nnumba.device.to_device(x, 'cuda'))")
        if x.dtype != self.dtype:
            raise DTypeError(f"{self.label}: expected {what} of dtype {self.dtype.name}, "
                             f"got {np.dtype(x.dtype).name}")
        if not x.is_c_contiguous():
            raise ShapeError(f"{self.label}: expected a C-contiguous device array as {what}")

    def _device_all_finite(self, x) -> bool:
        from ..kernels.cuda.arrays import count_nonfinite
        count = self._device_buffer("_nonfinite", (1,), np.int32, keep=True)
        return count_nonfinite(x.reshape(x.size), count) == 0

    def _buffer(self, key: str, shape: tuple, dtype=None, zero: bool = False) -> np.ndarray:
        """An output array; reused across steps when allowed (fresh pages fault on this VM)."""
        dtype = self.dtype if dtype is None else dtype
        if not self.reuse_buffers:
            return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[key] = np.empty(shape, dtype)
        if zero:
            buf.fill(0)
        return buf

    def _device_buffer(self, key: str, shape: tuple, dtype=None, zero: bool = False,
                       keep: bool = False):
        """_buffer on the GPU: a device array, reused across steps when allowed
        (``keep``: always, for scratch that no caller sees)."""
        from ..device import CUDA
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        buf = self._buffers.get(key) if (self.reuse_buffers or keep) else None
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = CUDA.empty(tuple(shape), dtype)
            if self.reuse_buffers or keep:
                self._buffers[key] = buf
        if zero:
            from ..kernels.cuda.arrays import fill
            fill(buf, 0)
        return buf

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.type_name}({args})"
