"""Sequential models, built from layer objects or from a JSON-serialisable spec."""
from __future__ import annotations

import copy
import json

import numpy as np

from .errors import DTypeError, ShapeError
from .layers.base import FLOAT_DTYPES, Layer


class Sequential:
    """Layers applied in order. Parameters live in one flat buffer (and their
    gradients in another), so an update or an all-reduce is one call.

    ``to("cuda")`` moves both buffers to the GPU (the parameters stay views into
    them) and runs every layer's CUDA kernels from then on: forward and backward
    take and return device arrays, and nothing crosses to the host between layers.
    ``predict`` takes and returns host arrays on either device."""

    #: the Device the parameters live on (nnumba.device); the CPU until to()
    device = None

    def __init__(self, *layers: Layer, seed: int | None = None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item #{i} is a {type(layer).__name__}, not a Layer")
        self.layers = list(layers)
        from .device import CPU
        self.device = CPU
        self.dtype = layers[0].dtype
        self.input_grad = False
        for i, layer in enumerate(self.layers):
            layer.label = f"{layer.type_name} #{i}"
        self._fuse()
        if seed is not None:
            self.reset_parameters(np.random.default_rng(seed))
        self.astype(self.dtype)

    # ---- building ----------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec, seed: int | None = None) -> "Sequential":
        """Build from ``[{"type": name, **kwargs}, ...]`` through the plugin registry."""
        from .registry import get_layer
        if isinstance(spec, str):
            spec = json.loads(spec)
        if not isinstance(spec, (list, tuple)) or not spec:
            raise ValueError(f"a model spec is a non-empty list of layer dicts, got {spec!r:.80}")
        layers = []
        for i, item in enumerate(spec):
            if not isinstance(item, dict) or "type" not in item:
                raise ValueError(f"model spec item #{i} must be a dict with a 'type' key, "
                                 f"got {item!r:.80}")
            kwargs = {k: v for k, v in item.items() if k != "type"}
            layer_cls = get_layer(item["type"])
            try:
                layers.append(layer_cls(**kwargs))
            except TypeError as exc:
                raise TypeError(f"model spec item #{i} ({item['type']}): {exc}") from None
        return cls(*layers, seed=seed)

    def _fuse(self):
        """Run ReLU followed by max-pooling as one kernel: relu(max) = max(relu), and
        one pass over the largest activation saves about 1 ms a step in the CNN.
        The ReLU then passes its input through, and the pool applies it."""
        from .layers.activation import ReLU
        from .layers.pool import _PoolNd
        for first, second in zip(self.layers, self.layers[1:]):
            if type(first) is ReLU and isinstance(second, _PoolNd) and second.mode == "max":
                first.deferred = second.fuse_relu = True

    def spec(self) -> list[dict]:
        return [layer.spec() for layer in self.layers]

    def reset_parameters(self, rng: np.random.Generator):
        for layer in self.layers:
            layer.reset_parameters(rng)

    # ---- parameters ----------------------------------------------------------------
    def params(self) -> list[tuple[str, "Parameter"]]:
        """``[("0.weight", Parameter), ...]`` in a fixed order."""
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers)
                for name, p in layer.params().items()]

    def num_params(self) -> int:
        return int(self.flat_params.size)

    def _bind_flat(self):
        # Copy every parameter into one buffer and make it a view of that buffer.
        params = [p for _, p in self.params()]
        if self.device.is_cuda:
            return self._bind_flat_device(params)
        total = sum(p.value.size for p in params)
        self.flat_params = np.empty(total, self.dtype)
        self.flat_grads = np.zeros(total, self.dtype)
        at = 0
        for p in params:
            n = p.value.size
            self.flat_params[at:at + n] = p.value.reshape(-1)
            p.value = self.flat_params[at:at + n].reshape(p.value.shape)
            p.grad = self.flat_grads[at:at + n].reshape(p.value.shape)
            at += n

    def _bind_flat_device(self, params):
        # Gather the values on the host, copy them over in one go, then make each
        # parameter (and its gradient) a view of the device buffers.
        from .device import to_host
        total = sum(p.value.size for p in params)
        host = np.empty(total, self.dtype)
        at = 0
        for p in params:
            host[at:at + p.value.size] = to_host(p.value).reshape(-1)
            at += p.value.size
        self.flat_params = self.device.to_device(host)
        self.flat_grads = self.device.zeros(total, self.dtype)
        at = 0
        for p in params:
            n, shape = p.value.size, p.value.shape
            p.value = self.flat_params[at:at + n].reshape(shape)
            p.grad = self.flat_grads[at:at + n].reshape(shape)
            at += n

    def to(self, device) -> "Sequential":
        """Move the model to ``device`` ("cpu" or "cuda"); returns the model.

        Raises DeviceUnavailableError where the device is missing (never falls
        back to the CPU), and DeviceError naming the first layer that has no
        kernels for it, before anything moves. Gradients restart at zero."""
        from .device import get_device
        device = get_device(device)
        if device is self.device:
            return self
        for layer in self.layers:
            layer.check_device(device)
        from .device import to_host
        for _, p in self.params():  # to the host first: _bind_flat gathers from there
            p.value = to_host(p.value)
        self.device = device
        for layer in self.layers:
            layer._set_device(device)
        self._bind_flat()
        return self

    def zero_grad(self):
        if self.device.is_cuda:
            from .kernels.cuda.arrays import fill
            fill(self.flat_grads, 0)
            for layer in self.layers:
                layer.grads_are_zero = True
            return
        self.flat_grads.fill(0)  # one pass for every layer's gradients
        for layer in self.layers:
            layer.grads_are_zero = True

    def astype(self, dtype) -> "Sequential":
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise DTypeError(f"model dtype must be float32 or float64, got {dtype}")
        if self.device.is_cuda:  # convert on the host, then move back
            device = self.device
            return self.to("cpu").astype(dtype).to(device)
        for layer in self.layers:
            layer.astype(dtype)
        self.dtype = dtype
        self._bind_flat()
        return self

    # ---- modes -------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Sequential":
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> "Sequential":
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.layers[0].training

    def reuse_buffers(self, on: bool = True):
        """Let layers reuse their output arrays between calls (trainers do this).

        Faster, but an output stays valid only until the next forward()."""
        for layer in self.layers:
            layer.reuse_buffers = on
            layer._buffers.clear()

    # ---- shapes --------------------------------------------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape; raises a clear error where two layers don't fit."""
        shape = tuple(input_shape)
        for layer in self.layers:
            want = layer.input_shape()
            if want is not None and (len(want) != len(shape) or any(
                    w is not None and w != s for w, s in zip(want, shape))):
                pretty = ", ".join("*" if w is None else str(w) for w in want)
                raise ShapeError(f"{layer.label} expects per-sample input ({pretty}) but "
                                 f"receives {shape}")
            shape = tuple(layer.output_shape(shape))
        return shape

    # ---- compute -------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._set_input_grads()
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, check_finite=(i == 0))
        return x

    def _set_input_grads(self):
        """A layer computes dl/dx only for something before it that has a
        gradient: a parameter, or the input when ``input_grad`` is set.  (A
        Linear after a Flatten would otherwise pay a GEMM to feed nothing.)"""
        wanted = self.input_grad
        for layer in self.layers:
            layer.needs_input_grad = wanted
            wanted = wanted or bool(layer.params())

    __call__ = forward

    def backward(self, dl_dy: np.ndarray):
        """Back-propagate; returns dl/dx of the input when ``input_grad`` is set."""
        for layer in reversed(self.layers):
            dl_dy = layer.backward(dl_dy)
        return dl_dy

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Outputs for ``x`` in eval mode, batch by batch (a fresh array)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        mode = self.training
        self.eval()
        try:
            if self.device.is_cuda:  # host batches go over, host outputs come back
                from .device import to_host
                outs = [to_host(self.forward(self.device.to_device(x[i:i + batch_size])))
                        for i in range(0, max(len(x), 1), batch_size)]
            else:
                outs = [self.forward(x[i:i + batch_size]).copy()
                        for i in range(0, max(len(x), 1), batch_size)]
        finally:
            self.train(mode)
        return np.concatenate(outs)

    def copy(self) -> "Sequential":
        if self.device.is_cuda:  # device arrays are not deep-copied: go through the host
            device = self.device
            twin = self.to("cpu").copy()
            self.to(device)
            return twin.to(device)
        twin = copy.deepcopy(self)
        twin._bind_flat()  # deepcopy turns views into separate arrays: rebind them
        return twin

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
