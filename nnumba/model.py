"""Sequential models, built from layer objects or from a JSON-serialisable spec."""
from __future__ import annotations

import copy
import itertools
import weakref

import numpy as np

from .device import CPU, device_of, get_device, may_share_memory, to_host
from .errors import ContractError, DTypeError, NoGradientError, ShapeError, SpecError
from .layers.contract import Layer, Parameter
from .layers.declared_shape import output_shape_of
from .layers.fitting import check_not_in_fit
from .layers.fusion import fuse, hold_parameters
from .model_checks import check_no_inner_layer, check_unshared
from .model_spec import build_layer, check_spec
from .registry_names import layer_spec
from .layers.validation import (check_batch, check_cast, check_fits, check_memory, dtype_text, flag,
                                float_dtype, integer, one_at_a_time, per_sample_shape, show)


class Sequential:
    """Layers applied in order. Parameters live in one flat buffer (and their
    gradients in another), so an update or an all-reduce is one call.

    ``layers``: the layers as built (``spec()`` and ``params()`` list them), a tuple;
    ``steps`` what runs, where neighbours fuse (:meth:`Layer.fuse_after`: a ReLU
    then a max-pool run as one layer).  ``to(device)`` moves both buffers to the
    device (the parameters stay views into them) and every layer computes there:
    forward and backward take and return that device's arrays; ``predict`` takes
    and returns host arrays on any device.  Built from layers, a model is on its first
    layer's device and in its dtype: the other layers are moved and converted."""

    _shapes = None  # the step output shapes of the last forward

    def __init__(self, *layers: Layer, seed: int | None = None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise SpecError("Sequential needs at least one layer")
        first = {}  # id(layer) -> its first index
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                hint = " (a class: add ())" if isinstance(layer, type) and \
                    issubclass(layer, Layer) else ""
                raise DTypeError(f"Sequential: item #{i} is a {type(layer).__name__}, not a "
                                 f"Layer{hint}")
            check_unshared(layer, i, first.setdefault(id(layer), i), self)
            check_no_inner_layer(layer, f"Sequential: item #{i} ({layer.type_name})")
        if seed is not None:
            seed = integer("Sequential", "seed", seed, minimum=0, maximum=None)
        device = layers[0].device  # the model is where its first layer is, as its dtype
        for layer in layers:  # (before anything moves)
            layer.check_device(device)
        self.layers = tuple(layers)
        self.device = CPU
        self.dtype = layers[0].dtype
        self.input_grad = False
        for i, layer in enumerate(self.layers):
            layer.set_flags(label=f"{layer.type_name} #{i}")
        fused = fuse(self.layers)
        self.steps = [step for step, _ in fused]
        self._members = [members for _, members in fused]  # each step's layers' indices
        self._adopt()
        if seed is not None:
            self.reset_parameters(np.random.default_rng(seed))
        self.astype(self.dtype)
        if any(layer.device is not CPU for layer in self._every_layer()):  # (fuzz 58)
            for layer in self._every_layer():  # their parameters are in the host buffers now
                layer.set_device(CPU)
            self.to(device)

    # ---- building ----------------------------------------------------------------
    check_spec = staticmethod(check_spec)

    @classmethod
    def from_spec(cls, spec, seed: int | None = None) -> "Sequential":
        """Build from ``[{"type": name, **kwargs}, ...]`` through the plugin registry;
        a spec that cannot be built raises SpecError naming the item (TooLargeError
        where its parameters would not fit in memory)."""
        layers = [build_layer(item, i) for i, item in enumerate(cls.check_spec(spec))]
        return cls(*layers, seed=seed)

    def spec(self) -> list[dict]:
        """The layers' specs, each "type" a name that finds its class again."""
        return [layer_spec(layer) for layer in self.layers]

    @one_at_a_time
    def reset_parameters(self, rng: np.random.Generator):
        """Draw every layer's starting weights again from ``rng``, layer by layer."""
        if not isinstance(rng, np.random.Generator):  # else a layer's AttributeError
            raise DTypeError(f"reset_parameters: rng must be a numpy Generator "
                             f"(np.random.default_rng(seed)), got {show(rng)}")
        for layer in self.layers:
            layer.reset_parameters(rng)

    def _every_layer(self):
        """The layers as built, and the fused ones that run in their place."""
        built = {id(layer) for layer in self.layers}  # (a scan per step: quadratic in depth)
        return list(self.layers) + [s for s in self.steps if id(s) not in built]

    def _adopt(self):
        """Every layer and fused step belongs to this model: called on its own, each
        takes the model's lock (layers/validation.one_at_a_time)."""
        for layer in self._every_layer():
            layer.set_flags(container=weakref.ref(self))

    # ---- parameters ----------------------------------------------------------------
    def params(self) -> list[tuple[str, Parameter]]:
        """``[("0.weight", Parameter), ...]`` in a fixed order."""
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.params().items()]

    def num_params(self) -> int:
        """How many numbers the parameters hold (trainable or not)."""
        return int(self.flat_params.size)

    def _bind_flat(self):
        """Gather every parameter into one buffer on the host, move it to the model's
        device in one go, and make each parameter (and its gradient, kept) a view of
        the flat buffers there.  The trainable ones come first: ``flat_params`` and
        ``flat_grads``, what optimizers update, are theirs alone."""
        named = self.params()
        params = [p for _, p in named if p.trainable] + [p for _, p in named if not p.trainable]
        ends = [0, *itertools.accumulate(p.value.size for p in params)]  # each one's slice
        total = ends[-1]
        check_memory(f"the model's {total:,} parameters with their gradients",
                     2 * total * self.dtype.itemsize)
        host, grads = np.empty(total, self.dtype), np.empty(total, self.dtype)
        for p, at, end in zip(params, ends, ends[1:]):  # gradients kept too, as torch's
            host[at:end] = to_host(p.value).reshape(-1)  # .double() and .to() keep .grad
            grads[at:end] = to_host(p.grad).reshape(-1)
        values, self._all_grads = self.device.to_device(host), self.device.to_device(grads)
        trained = sum(p.value.size for p in params if p.trainable)
        self.flat_params, self.flat_grads = (values, self._all_grads) if trained == total \
            else (values[:trained], self._all_grads[:trained])
        for p, at, end in zip(params, ends, ends[1:]):
            shape = p.value.shape
            p.value = values[at:end].reshape(shape)
            p.grad = self._all_grads[at:end].reshape(shape)
        self._bound = [(name, p, p.value, p.grad) for name, p in named]

    def _check_bound(self):
        """A parameter rebound to another array (``p.value = new``) is out of the flat
        buffers the optimizer updates: refused, rather than silently frozen."""
        for name, p, value, grad in self._bound:
            if p.value is not value or p.grad is not grad:
                field = "value" if p.value is not value else "grad"
                raise ContractError(f"parameter {name}: its {field} was replaced by another "
                                    f"array; write into it in place (p.{field}[...] = new): "
                                    f"the model keeps its parameters in one buffer")

    @one_at_a_time
    def to(self, device) -> "Sequential":
        """Move the model to ``device`` (a name or a Device); returns the model.

        Raises DeviceUnavailableError where the device is missing (never falls
        back to the CPU), and DeviceError naming the first layer that cannot run
        there, before anything moves. Gradients are kept."""
        device = get_device(device)
        if device is self.device:
            return self
        device.kernels  # noqa: B018 - a plugin's kernel set is checked before anything moves
        for layer in self._every_layer():
            layer.check_device(device)
        self.device = device
        for layer in self._every_layer():
            layer.set_device(device)
        self._bind_flat()
        self._shapes = None  # the inputs the layers kept are on the old device
        return self

    @one_at_a_time
    def zero_grad(self):
        """Set every gradient to 0, in one pass: backward() adds into them, so that the
        gradients of several backward() calls add up until this is called."""
        self.device.kernels.fill(self._all_grads, 0)

    @one_at_a_time
    def astype(self, dtype) -> "Sequential":
        """Convert the model, in place, to float32 or float64 (returns it): parameters
        and gradients are converted, and inputs must then be of that dtype; refused
        where a value would not fit (1e39 in float32)."""
        dtype = float_dtype("model", dtype)
        check_not_in_fit(self, "dtype", dtype != self.dtype)
        for name, p in self.params():  # before any layer converts: no half-converted model
            check_cast("model", f"parameter {name}", to_host(p.value), dtype)
            check_cast("model", f"the gradient of {name}", to_host(p.grad), dtype,
                       "zero_grad() first")  # kept: inf would reach the next step
        self._converting = True  # a layer refuses astype from anyone but its model
        try:
            for layer in self._every_layer():
                layer.astype(dtype)
        finally:
            del self._converting
        self.dtype = dtype
        self._bind_flat()
        self._shapes = None  # the inputs the layers kept have the old dtype: no backward
        return self

    # ---- modes -------------------------------------------------------------------------
    @one_at_a_time
    def train(self, mode: bool = True) -> "Sequential":
        """Training mode (or evaluation with False) for every layer; returns the model.
        Dropout drops only in training; predict() always runs in evaluation mode."""
        for layer in self._every_layer():
            layer.train(mode)
        return self

    def eval(self) -> "Sequential":
        """Evaluation mode for every layer (``train(False)``); returns the model."""
        return self.train(False)

    @property
    def training(self) -> bool:
        """Whether any layer is in training mode (``train()``/``eval()`` set them all)."""
        return any(layer.training for layer in self.layers)

    @one_at_a_time
    def reuse_buffers(self, on: bool = True):
        """Let layers reuse their output arrays between calls (trainers do this).

        Faster, but an output stays valid only until the next forward()."""
        on = flag("reuse_buffers", "on", on)  # "no" is truthy: outputs would be overwritten
        for layer in self._every_layer():
            layer.set_flags(reuse_buffers=on)
            layer._buffers.clear()

    # ---- shapes --------------------------------------------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape; raises a clear error where two layers don't fit."""
        shape = per_sample_shape("output_shape", input_shape)
        for layer in self.layers:
            check_fits(layer, shape)
            shape = output_shape_of(layer, shape)
        return shape

    # ---- compute -------------------------------------------------------------------
    @one_at_a_time
    def forward(self, x):
        """The steps in order.  The input is checked by the first step; every output
        is compared with the shape its layer's output_shape promised before the next
        step's kernels see it, which costs a tuple comparison, not a full check."""
        self._shapes = None  # until every step has run: a failed forward has no backward
        self._no_backward = None  # why backward() is refused, where not the default
        self._check_bound()
        self._set_input_grads()
        checked = self.steps[0].check_input(x)
        x = x if checked is None else checked
        shapes = self._step_shapes(x.shape)  # before a fused first step's kernels see x
        y = self.steps[0].run_forward(x)
        made = 0 if y is not x else None  # the step whose array the output is
        x = self._check_step(0, y, shapes[0])
        for i in range(1, len(self.steps)):
            y = self._check_step(i, self.steps[i].run_forward(x), shapes[i])
            # (a view of its input that the step did not declare output_is_view)
            if y is not x and not self.steps[i].output_is_view and \
                    not may_share_memory(y, x):
                made = i
            x = y
        self._shapes, self._stamps = shapes, [step._forwards for step in self.steps]
        self._modes = [step.training for step in self.steps]
        # a copy where a step keeps the output for its backward (see Layer.for_caller)
        for step in self.steps[made:] if made is not None else ():
            y = step.for_caller(x)
            if y is not x:
                return y
        return x

    def _step_shapes(self, input_shape) -> list:
        """The output shape of every step for a batch of ``input_shape``, kept per shape:
        its layers', one after another (a fused step's own shape methods may be the
        base class's, which would pass any width)."""
        cache = self.__dict__.setdefault("_shape_cache", {})
        shapes = cache.get(input_shape)
        if shapes is None:
            # a model pickled before it kept its steps' members: the steps' own shapes
            # (today's fusion may group its layers otherwise than its pickled steps)
            groups = [[self.layers[i] for i in members] for members in self._members] \
                if self.__dict__.get("_members") is not None else [[s] for s in self.steps]
            shape, shapes = input_shape[1:], []
            for group in groups:
                for layer in group:
                    check_fits(layer, shape, input_shape[0])
                    shape = output_shape_of(layer, shape)
                    if 0 in shape:  # the next layer's kernel would index past it
                        raise ShapeError(f"{layer.label}: its output of a batch of "
                                         f"{input_shape} would hold no values (shape "
                                         f"{(input_shape[0],) + shape})")
                shapes.append((input_shape[0],) + shape)
            cache[input_shape] = shapes
        return shapes

    def _check_step(self, i, y, shape):
        """Step i's output ``y``, C-contiguous (a plugin's may be a Fortran-ordered or
        np.matrix array, which the next step's kernels would misread)."""
        if y.shape != shape or y.dtype != self.dtype:
            raise ShapeError(f"{self.steps[i].label} returned {np.dtype(y.dtype).name} "
                             f"{y.shape}, but output_shape promised {self.dtype.name} "
                             f"{shape}: a bug in that layer")
        return self._contiguous(i, y, "an output")

    def _contiguous(self, i, a, what):
        try:
            return self.device.contiguous(a)  # no copy where it is already
        except Exception as exc:  # noqa: BLE001 - the device says why it cannot
            raise ShapeError(f"{self.steps[i].label} returned {what} that is not "
                             f"C-contiguous ({exc}): a bug in that layer") from None

    def _set_input_grads(self):
        """A step computes dl/dx only for something before it that has a
        gradient: a parameter, or the input when ``input_grad`` is set.  (A
        Linear after a Flatten would otherwise pay a GEMM to feed nothing.)"""
        wanted = self.input_grad
        for layer in self.steps:
            layer.set_flags(needs_input_grad=wanted)
            wanted = wanted or bool(layer.params())

    __call__ = forward

    @one_at_a_time
    def backward(self, dl_dy):
        """Back-propagate; returns dl/dx of the input when ``input_grad`` is set.  The
        parameters' gradients are added into their ``grad`` (several backward() calls
        add up until ``zero_grad()``).  The incoming gradient is checked by the last
        step; each gradient a step passes back is compared with the shape of the
        output it belongs to."""
        steps, shapes = self.steps, self._shapes
        # else some steps would pair this gradient with another batch's input
        why = self.__dict__.get("_no_backward") or (
            "backward() needs the last forward() to have completed since the model was built,"
            " converted, moved or copied; none ran, or the last one failed" if shapes is None else
            "the last forward() ran in another mode (train/eval) than this backward(): run "
            "forward() again" if [s.training for s in steps] != self._modes else None)
        if why:
            raise NoGradientError(why)
        if self.input_grad and not steps[0].needs_input_grad:  # it would return None
            raise NoGradientError("input_grad was set after the last forward(), which then "
                                  "kept nothing to compute dl/dx from: run forward() again")
        moved = next((s for s, n in zip(steps, self._stamps) if s._forwards != n), None)
        if moved is not None:  # its kernels would pair dl_dy with another batch's input
            raise NoGradientError(f"{moved.label} ran forward again since the model's forward() "
                                  f"(called on its own, or from another thread): run "
                                  f"model.forward again before backward")
        given = getattr(dl_dy, "dtype", None)
        if given is not None and np.dtype(given).kind == "f" and given != self.dtype:
            # else the last layer's own check blames it for what its caller (a loss) did
            raise DTypeError(f"backward() got a gradient of dtype "
                             f"{dtype_text(given, self.dtype)}; the model computes in "
                             f"{self.dtype.name} (native byte order), and a loss gives its "
                             f"gradient in its predictions' dtype")
        dl_dy = steps[-1].backward(dl_dy)
        for i in range(len(steps) - 2, -1, -1):
            if dl_dy is None:
                return None
            if getattr(dl_dy, "shape", None) != shapes[i] or dl_dy.dtype != self.dtype:
                got = f"{np.dtype(dl_dy.dtype).name} {dl_dy.shape}" \
                    if hasattr(dl_dy, "shape") else show(dl_dy)  # (a list, say)
                raise ShapeError(f"{steps[i + 1].label} returned a gradient {got} for a "
                                 f"{self.dtype.name} input of shape {shapes[i]}: a bug in "
                                 f"that layer")
            dl_dy = steps[i].run_backward(self._contiguous(i + 1, dl_dy, "a gradient"))
        return dl_dy

    @one_at_a_time
    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Outputs for host array ``x`` in eval mode, batch by batch (a fresh host array)."""
        batch_size = integer("predict", "batch_size", batch_size, 1, None)
        if not isinstance(x, np.ndarray) or x.ndim == 0:
            # a device array's repr reads as a numpy array's: name its type too
            got = show(x) if isinstance(x, (np.ndarray, np.generic, list, tuple)) or \
                x is None else f"a {type(x).__name__} {show(x)}"
            hint = " (predict takes host arrays; forward takes the device's)" \
                if device_of(x) is not None else ""
            raise DTypeError(f"predict: expected a numpy array of samples (N, ...), got "
                             f"{got}{hint}")
        if not self.device.owns(x):  # checked on the host: a device copy drops a mask
            x = check_batch(self.steps[0], x, "input")
        modes = [(layer, layer.training) for layer in self._every_layer()]  # may differ
        self.eval()
        try:
            outs = [np.array(to_host(self.forward(self.device.to_device(x[i:i + batch_size]))))
                    for i in range(0, max(len(x), 1), batch_size)]
        finally:
            for layer, mode in modes:
                layer.train(mode)
            self._no_backward = ("predict() ran since the last forward(), and its batches "
                                 "replaced what backward() uses: run forward() again")
        return np.concatenate(outs)

    def copy(self) -> "Sequential":
        """A deep copy on the same device: its own layers, parameters, gradients and
        buffers (__setstate__ binds them; a model on a device goes through its host
        twin, __reduce_ex__), free to train apart from this one."""
        return copy.deepcopy(self)

    def __reduce_ex__(self, protocol):
        # Device arrays do not pickle (the simulator's recursed without end): a model on
        # a device pickles, and deep-copies, as its host twin that moves back on loading.
        if self.device is CPU:
            return super().__reduce_ex__(protocol)
        device = self.device
        host = self.to(CPU).copy()
        self.to(device)
        return _moved_to, (host, device.name)

    #: what __setstate__ makes again from the parameters: not pickled (no lock pickles;
    #: the flat buffers are copies of the parameters' values and gradients)
    _REBUILT = ("_lock", "flat_params", "flat_grads", "_all_grads", "_bound")

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k not in self._REBUILT}
        state["_flat"] = "flat_params" in self.__dict__
        state["_shapes"] = state["_no_backward"] = None  # its layers' copies keep nothing
        return state

    def __setstate__(self, state):
        # A copy (deepcopy, pickle) owns its copied layers, which came without an owner,
        # and its parameters came as arrays of their own: make them views of the flat
        # buffers again, or the optimizer would update buffers no layer reads.
        flat = state.pop("_flat", "flat_params" in state)
        self.__dict__.update(state)
        self._adopt()
        # a fused step pickled before steps held their layers' parameters: give them
        built = {id(layer) for layer in self.layers}  # (not a scan per step: fuzz 56)
        if any(not s._params and id(s) not in built for s in self.steps):
            members = [idx for _, idx in fuse(self.layers)]
            if len(members) == len(self.steps):
                for step, idx in zip(self.steps, members):
                    if len(idx) > 1 and not step._params:
                        hold_parameters(step, [self.layers[i] for i in idx])
        if flat:
            self._bind_flat()

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


def _moved_to(model: "Sequential", device: str) -> "Sequential":
    """Unpickling a model that was on ``device``: its host twin, moved there."""
    return model.to(device)
