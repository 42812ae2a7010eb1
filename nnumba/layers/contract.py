"""The layer contract every layer, built-in or plugin, follows.

A layer author implements (docs/plugins.md has a worked example):

- ``__init__(...)``: check and store the configuration (the helpers of
  :mod:`nnumba.layers.validation` give clear errors), and declare each parameter
  with ``self.add_param(name, shape)``.  Values are not set here: the base class
  calls ``reset_parameters`` right after ``__init__`` returns.
- ``reset_parameters(rng)``: (re)initialise the parameters *in place*
  (``self.weight.value[...] = rng.uniform(...)``), from ``rng`` only.
- ``_forward(x)``: compute the output with ``self.kernels`` (the kernel set of the
  layer's device, :mod:`nnumba.kernels`) into arrays from ``self._buffer(key,
  shape)``, and keep what ``_backward`` needs.  ``x`` and ``dl_dy`` are read-only:
  an earlier layer's backward may read them.
- ``_backward(dl_dy)``: *add* each parameter's gradient into ``param.grad``, also
  when ``self.needs_input_grad`` is False; then return ``dl_dx`` (None will do when
  ``needs_input_grad`` is False, which only a layer with parameters meets here).
- ``input_shape()``: the per-sample input shape it accepts (``None`` for a free
  axis, a last ``...`` for any number of further axes), or None for any shape;
  ``output_shape(input_shape)``: shape arithmetic.
- ``examples``: ``[(constructor kwargs, input shape with batch axis), ...]`` for the
  conformance kit (:mod:`nnumba.testing`); ``example_input(shape, rng)`` where the
  layer takes fewer inputs than any float (an embedding's ids).

Optionally: ``flops(input_shape)`` (``nnumba summary``), ``compile_unit`` (the
parallel cold compile), ``fuse_after(previous)`` (a model rewrite), ``devices``
(``("cpu",)`` for a body that calls numpy instead of ``self.kernels``; ``{device:
module}`` for its own kernels on each device, reached as ``self.own``; None, the
default: any device), ``has_gradient = False``; all checked as the class is defined.

Read ``param.value`` and ``param.grad`` at every call: a model rebinds them into its flat
buffers.  ``forward``/``backward`` validate their arrays (:mod:`.validation`) first.

Containers set :data:`CONTAINER_FLAGS` on their layers (:meth:`Layer.set_flags`); layers read them.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from typing import ClassVar

import numpy as np

from .. import registry
from ..device import CPU, DeviceError, device_of, get_device, may_share_memory, to_host
from ..errors import ContractError, DTypeError, NoGradientError, TooLargeError
from ..hookspecs import hookimpl
from ..jsonfile import jsonable
from . import validation
from .allocate import allocate
from .class_attributes import check_class_attributes
from .parameters import (Parameter, checked_reset, default_rng, in_shapes_only,  # noqa: F401
                         seed, shapes_only)


#: What a container (Sequential) sets on each of its layers, and what it means.
CONTAINER_FLAGS = {
    "needs_input_grad": "backward must return dl/dx; when False it returns None (after "
                        "adding its parameter gradients all the same)",
    "reuse_buffers": "_buffer may hand back the array of the previous step: an output "
                     "stays valid only until the next forward",
    "label": "the name errors give the layer, e.g. 'Linear #2'",
    "training": "training (True) or evaluation mode (Dropout acts only in training)",
    "container": "a weak reference to the model the layer belongs to: a layer keeps one "
                 "input and one gradient, so a second model refuses it",
}

class Layer:
    """Base class of all layers. See the module docstring for what to implement."""

    #: name used in model specs ({"type": type_name}); the registry key.
    type_name: ClassVar[str] = ""
    #: False for layers such as the threshold unit whose backward is meaningless.
    has_gradient: ClassVar[bool] = True
    #: [(constructor kwargs, input shape with batch axis)] for the conformance kit.
    examples: ClassVar[list] = []
    #: the devices whose kernel sets the body runs on; None: any (it only uses
    #: self.kernels and self._buffer); a dict names the module of the layer's own
    #: kernels on each (self.own).  "cpu" takes in every device of numpy arrays.
    devices: ClassVar[tuple | None] = None
    #: True when the output is a view of the input (no array of its own).
    output_is_view: ClassVar[bool] = False
    #: the attributes _forward keeps for _backward (an input, an output, an argmax):
    #: a copy or pickle leaves them out, so a pickled model holds none of the samples
    #: it last saw, and the copy needs a forward before a backward.
    kept_for_backward: ClassVar[tuple] = ("_x", "_y")

    # The flags of CONTAINER_FLAGS, as a layer on its own has them.
    needs_input_grad = True
    reuse_buffers = False
    _forwards = 0  # forward passes run (run_forward counts them)
    training = True
    container = None
    #: Always False (once set after zero_grad, it lost what a penalty added in between).
    grads_are_zero = False
    #: the Device the layer computes on; set by to()
    device = CPU

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_class_attributes(cls)
        if not cls.__dict__.get("type_name"):
            cls.type_name = cls.__name__
        reset = cls.__dict__.get("reset_parameters")
        if reset is not None and not getattr(reset, "_checked", False):
            cls.reset_parameters = checked_reset(reset)
        init = cls.__dict__.get("__init__")
        if init is None:  # Python's message then names it: ReLU.__init__() got an unexpected
            if getattr(cls.__init__, "_no_arguments", cls.__init__ is Layer.__init__) and \
                    not cls.__dict__.get("__annotations__"):  # (a @dataclass makes its own)
                cls.__init__ = _no_arguments(cls)  # keyword argument 'inplace'
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            # The outermost constructor records the spec and initialises the
            # parameters once it is done; super().__init__ calls do neither.
            outermost = "_config" not in self.__dict__
            if outermost:
                try:
                    bound = signature.bind(self, *args, **kw)
                except TypeError as exc:  # Python's own message would not name the layer
                    raise TypeError(f"{type(self).__name__}: {exc}") from None
                bound.apply_defaults()
                self._config = {k: jsonable(v) for k, v in list(bound.arguments.items())[1:]
                                if signature.parameters[k].kind not in (
                                    inspect.Parameter.VAR_POSITIONAL,
                                    inspect.Parameter.VAR_KEYWORD)}
            init(self, *args, **kw)
            if outermost and "_params" not in self.__dict__:
                raise ContractError(f"{type(self).__name__}.__init__ never called "
                                    f"super().__init__(): call it first")
            if outermost and not in_shapes_only():
                self.reset_parameters(default_rng())

        cls.__init__ = recording_init

    def __init__(self):
        if dataclasses.is_dataclass(self):  # (its __post_init__ calling this)
            raise ContractError(f"{type(self).__name__} is a @dataclass: its fields are not "
                                f"recorded in its spec, so a saved model would come back with "
                                f"the defaults; take the arguments in an __init__ that calls "
                                f"super().__init__() first")
        self.__dict__.setdefault("_config", {})
        self._params: dict[str, Parameter] = {}
        self._buffers: dict = {}
        self.dtype = np.dtype(np.float32)
        self.label = self.type_name
        self._out_shape = None

    # ---- what authors implement -------------------------------------------------
    def _forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward(x)")

    def _backward(self, dl_dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward(dl_dy)")

    def input_shape(self):
        """Per-sample input shape (tuple, None for a free axis), or None for any."""

    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape."""
        return tuple(input_shape)

    def reset_parameters(self, rng: np.random.Generator):
        """(Re)initialise the parameters in place from ``rng``; none by default."""

    def example_input(self, shape: tuple, rng: np.random.Generator) -> np.ndarray:
        """A batch of ``shape`` the layer takes, drawn from ``rng``, for the kits: by default
        in +-[0.1, 1], no ReLU kink or max-pool tie within a finite difference."""
        x = rng.uniform(0.1, 1.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        return x + rng.normal(0, 1e-3, size=shape)

    def random_generator(self) -> np.random.Generator | None:
        """The generator the layer draws from as it runs (Dropout's masks), or None: a
        saved training keeps its state, so that training on draws as one run would."""

    def flops(self, input_shape: tuple):
        """(forward, weight gradient, input gradient) FLOPs per sample, a FLOP being
        one addition or one multiplication; None where unknown ("?" in nnumba summary)."""

    def compile_unit(self, input_shape: tuple) -> tuple[tuple, float]:
        """(key, seconds): layers with equal keys run the same CPU kernels, which
        take about ``seconds`` to compile from a cold cache.  nnumba.precompile
        compiles each key once, spreading the keys over processes by cost."""
        return (type(self).__name__,), 0.5

    def fuse_after(self, previous: "Layer"):
        """A layer that computes ``previous`` then this one in one pass, or None.
        Sequential runs the fused layer in their place (their spec is unchanged) and
        gives it the pair's parameters, which it computes with (docs/plugins.md,
        "Fused layers")."""

    # ---- parameters, mode, dtype -------------------------------------------------
    def add_param(self, name: str, shape_or_value, trainable: bool = True) -> Parameter:
        """Declare a parameter: a shape (zeros until reset_parameters), or an array;
        ``trainable=False`` for state the layer updates itself (see Parameter)."""
        if "_params" not in self.__dict__:
            raise ContractError(f"{type(self).__name__}: add_param({name!r}) before "
                                f"super().__init__(): call super().__init__() first")
        validation.param_name(type(self).__name__, name, self._params)
        shape = validation.param_start(self.label, name, shape_or_value, self.dtype)
        if isinstance(shape, tuple):  # else the start value, an array
            if in_shapes_only():  # a stand-in of the right shape that holds no memory
                if math.prod(shape) * self.dtype.itemsize >= 2**63:  # numpy's bound
                    raise TooLargeError(f"{self.label}: parameter {name!r} of shape {shape} "
                                        f"needs more bytes than any array can hold (2**63)")
                stand_in = np.broadcast_to(np.zeros((), self.dtype), shape)
                param = Parameter(stand_in, stand_in)
            else:  # its value and gradient, and the float64 draw reset_parameters makes
                validation.check_memory(f"{self.label}: parameter {name!r} of shape {shape}",
                                        np.prod(shape, dtype=np.float64) *
                                        (2 * self.dtype.itemsize + 8))
                param = Parameter(np.zeros(shape, self.dtype))
        else:
            param = Parameter(shape)
        param.trainable = validation.flag(self.label, "trainable", trainable)
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

    def set_flags(self, **flags):
        """Set container flags (:data:`CONTAINER_FLAGS`) on this layer."""
        for name, value in flags.items():
            if name not in CONTAINER_FLAGS:
                raise AttributeError(f"{name!r} is not a container flag; they are: "
                                     f"{', '.join(CONTAINER_FLAGS)}")
            setattr(self, name, value)

    def __getstate__(self):
        # A copy (deepcopy, pickle) belongs to no model yet (a weakref cannot be pickled),
        # and takes no reused arrays: its next forward makes its own.
        state = dict(self.__dict__, _buffers={}, _out_shape=None)
        for name in ("container", "_lock"):  # (the lock: validation.one_at_a_time's)
            state.pop(name, None)
        return {k: None if k in self.kept_for_backward else v for k, v in state.items()}

    @validation.one_at_a_time  # (a model's predict in another thread reads the mode)
    def train(self, mode: bool = True):
        """Training mode (or evaluation with False); returns the layer."""
        self.training = validation.flag(self.label, "train's mode", mode)  # "no" is truthy
        return self

    def eval(self):
        """Evaluation mode (``train(False)``); returns the layer."""
        return self.train(False)

    def _owner(self):
        """The model this layer belongs to, unless that model is converting or moving it."""
        owner = self.container() if self.container is not None else None
        return None if owner is None or getattr(owner, "_converting", False) else owner

    def astype(self, dtype):
        """Switch to float32 or float64: parameters are converted, inputs must follow.
        Inside a Sequential use the model's ``astype``, which keeps the flat buffer."""
        dtype = validation.float_dtype(self.label, dtype)
        if self._owner() is not None:  # new arrays: the optimizer would update the old ones
            if dtype == self.dtype:
                return self
            raise DTypeError(f"{self.label} belongs to a model: convert the whole model with "
                             f"model.astype(np.{dtype.name}) (its layers share one buffer)")
        for name, param in self._params.items():  # all checked before any is converted
            validation.check_cast(self.label, f"parameter {name!r}", to_host(param.value), dtype)
            validation.check_cast(self.label, f"the gradient of {name!r}",
                                  to_host(param.grad), dtype, "zero_grad() first")
        self.dtype = dtype
        for param in self._params.values():
            param.value = self.device.to_device(to_host(param.value).astype(dtype))
            param.grad = self.device.to_device(to_host(param.grad).astype(dtype))
        self._buffers.clear()
        self._out_shape = None  # what forward kept is of the old dtype: no backward from it
        return self

    def zero_grad(self):
        """Set the parameters' gradients to 0 (backward() adds into them)."""
        for param in self._params.values():
            self.kernels.fill(param.grad, 0)

    # ---- device ------------------------------------------------------------------------
    @property
    def kernels(self):
        """The kernel set of this layer's device (:mod:`nnumba.kernels`)."""
        return self.device.kernels

    @property
    def own(self):
        """The layer's own kernels on its device: the module ``devices`` names there."""
        return self.device.own_kernels(self.devices, self.label)

    @classmethod
    def runs_on(cls, device) -> bool:
        """Whether the layer can run on ``device`` (a Device): ``devices`` is None (its
        body uses ``self.kernels`` only) or names that device."""
        return cls.devices is None or device.entry_in(cls.devices) is not None

    def check_device(self, device):
        """Raise a clear error unless this layer can run on ``device`` (a Device)."""
        if not self.runs_on(device):
            fix = (f"give devices a {device.name!r} entry, the module of its own kernels there"
                   if isinstance(self.devices, dict) else "write its body against self.kernels")
            raise DeviceError(
                f"{self.label} ({type(self).__module__}.{type(self).__qualname__}) runs on "
                f"{', '.join(self.devices)} only, so it (and a model holding it) cannot move "
                f"to {device.name!r}: keep it there, or {fix} (see nnumba.layers.contract)")
        if isinstance(self.devices, dict):  # a wrong module name fails here, not at forward
            device.own_kernels(self.devices, self.label)

    def to(self, device):
        """Move the parameters to ``device`` (a name or a Device) and compute there.

        Raises DeviceUnavailableError where the device is missing (never falls
        back) and DeviceError where this layer cannot run there. Inside a
        Sequential use the model's ``to``, which keeps the flat parameter buffer."""
        device = get_device(device)
        self.check_device(device)
        if device is not self.device and self._owner() is not None:
            raise DeviceError(f"{self.label} belongs to a model: move the whole model with "
                              f"model.to({device.name!r}) (its layers share one buffer)")
        for param in self._params.values():
            param.value = device.to_device(to_host(param.value))
            param.grad = device.to_device(to_host(param.grad))
        self.set_device(device)
        return self

    def set_device(self, device):
        """Compute on ``device`` from now on (its parameters are already there)."""
        self.device = device
        self._buffers.clear()
        self._out_shape = None
        # What forward kept for backward (an input, an argmax) on the device left: no
        # backward uses it now, and a GPU array kept on a CPU model stops pickle and copy.
        for name, value in list(vars(self).items()):
            if not isinstance(value, np.ndarray) and device_of(value) not in (None, device):
                setattr(self, name, None)

    # ---- the public, validated entry points --------------------------------------
    @validation.one_at_a_time
    def forward(self, x, *, check_finite: bool = True):
        """The output for ``x``; the caller may write into it, but ``x`` must stay as it
        is until backward (which may read it)."""
        return self.for_caller(self.checked_forward(x, check_finite=check_finite))

    def checked_forward(self, x, *, check_finite: bool = True):
        """``forward`` for a container, which hands the output on (no copy)."""
        checked = self.check_input(x, check_finite=check_finite)
        return self.run_forward(x if checked is None else checked)

    def for_caller(self, y):
        """``y``, or a copy of it where this layer kept y itself for its backward (an
        activation keeps its output): a caller that writes into what forward returned
        (``out -= target``) would change the gradient silently."""
        for name in self.kept_for_backward:
            if may_share_memory(self.__dict__.get(name), y):
                out = self.device.empty(y.shape, y.dtype)
                self.kernels.scale(y.reshape(y.size), 1, out.reshape(y.size))
                return out
        return y

    @validation.one_at_a_time
    def backward(self, dl_dy):
        """dl/dx for ``dl_dy`` (checked), the gradient of the last forward's output; None
        where nothing before needs it.  Adds the parameters' gradients into their
        ``grad``: several backward() calls add up until ``zero_grad()``."""
        dl_dy = validation.check_gradient(self, dl_dy, self._out_shape)
        return self.run_backward(dl_dy)

    def run_forward(self, x):
        """``forward`` without the input checks, for a container that checked ``x``
        itself (a Sequential checks each step's output against its expected shape)."""
        y = self._forward(x)
        if not hasattr(y, "shape"):  # a forgotten return: name the layer, not NoneType
            raise ContractError(f"{self.label}: _forward returned {validation.show(y)}, "
                                f"not its output array")
        self._out_shape = y.shape
        self._forwards += 1  # what a model's backward checks its steps against
        return y

    def run_backward(self, dl_dy):
        """``backward`` without the checks of ``dl_dy`` (see run_forward)."""
        if not self.needs_input_grad and not self._params:
            return None  # nothing upstream wants a gradient from this layer
        if not self.has_gradient:
            raise NoGradientError(  # (a threshold's, a fixed feature extractor's)
                f"{self.label} has no gradient (has_gradient is False), so the layers before "
                f"it cannot learn by back-propagation: put it first in the model, train a "
                f"threshold with the perceptron trainer, or use a differentiable layer")
        dl_dx = self._backward(dl_dy)
        if dl_dx is None and self.needs_input_grad:  # every layer before would not train
            raise ContractError(f"{self.label}: _backward returned None, but needs_input_grad "
                                f"is set: it must return dl/dx for the layers before it")
        return dl_dx

    __call__ = forward

    def check_input(self, x, *, check_finite: bool = True):
        """``x`` as the kernels need it, or a clear error (validation.check_input)."""
        return validation.check_input(self, x, check_finite=check_finite)

    def _buffer(self, key: str, shape: tuple, dtype=None, zero: bool = False, keep: bool = False):
        """An array of this layer's device for an output or scratch; reused across
        steps when ``reuse_buffers`` is on (fresh pages fault) or ``keep`` asks for
        it (scratch no caller sees)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        shape = tuple(shape)
        reuse = self.reuse_buffers or keep
        buf = self._buffers.get(key) if reuse else None
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._allocate(key, shape, dtype)
            if reuse:
                self._buffers[key] = buf
        if zero:
            self.kernels.fill(buf, 0)
        return buf

    def _allocate(self, key, shape, dtype):
        return allocate(self.device, self.label, key, shape, dtype)

    def __repr__(self):
        return f"{self.type_name}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


def _no_arguments(cls):
    """The constructor of a layer that takes no arguments, named after it."""
    def __init__(self):
        Layer.__init__(self)
    __init__.__qualname__, __init__._no_arguments = f"{cls.__qualname__}.__init__", True
    return __init__


registry.BASES["layer"] = Layer  # what every registered layer subclasses


def layer_hook(*classes):
    """A built-in module's ``nnumba_register_layers`` hook: ``{type_name: class}`` of
    ``classes`` (``nnumba_register_layers = layer_hook(Linear)``)."""
    return hookimpl(lambda: {cls.type_name: cls for cls in classes})
