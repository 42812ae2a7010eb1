"""A model's size and cost per layer, from its spec alone: output shape, parameters,
memory of parameters and activations, FLOPs of forward and backward.

Nothing is allocated for the built-in layers that hold parameters (Linear, Conv1d,
Conv2d): their shapes follow from the spec, so the lecture's 3.87e10-parameter
linear layer is sized, never built. Layers without such a rule are instantiated to
ask them (fine for parameter-free layers; a plugin layer with large parameters would
allocate them).

Conventions, stated once:
- memory in SI units, 1 GB = 10^9 bytes (the GiB figure is printed beside the total);
- a FLOP is one addition or one multiplication: a multiply-add counts 2;
- activations: the bytes of the array each layer outputs for the whole batch
  (0 for Flatten and Identity, which return views, and for a ReLU before a max-pool,
  which Sequential fuses into the pool);
- backward: parameter gradients, plus the input gradient except for the first layer,
  whose input gradient a Sequential does not compute; Dropout is counted as in training.
"""
from __future__ import annotations

import inspect
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ShapeError


@dataclass
class LayerRow:
    index: int
    layer: str
    output_shape: tuple
    params: int
    param_bytes: int
    activation_bytes: int
    forward_flops: int | None    # None: no rule for this layer type
    backward_flops: int | None


@dataclass
class Summary:
    name: str
    input_shape: tuple
    batch: int
    dtype: str
    rows: list

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def param_bytes(self) -> int:
        return sum(r.param_bytes for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows)

    def _flops(self, key):
        values = [getattr(r, key) for r in self.rows]
        return None if None in values else sum(values)

    @property
    def forward_flops(self):
        return self._flops("forward_flops")

    @property
    def backward_flops(self):
        return self._flops("backward_flops")

    def to_dict(self) -> dict:
        totals = {k: getattr(self, k) for k in ("params", "param_bytes", "activation_bytes",
                                               "forward_flops", "backward_flops")}
        return {"name": self.name, "input_shape": list(self.input_shape), "batch": self.batch,
                "dtype": self.dtype, "layers": [asdict(r) for r in self.rows], "total": totals}

    def format(self) -> str:
        head = ("#", "layer", "output shape", "parameters", "param memory", "activations",
                "forward FLOPs", "backward FLOPs")
        table = [head] + [(str(r.index), r.layer, str(r.output_shape), f"{r.params:,}",
                           si_bytes(r.param_bytes), si_bytes(r.activation_bytes),
                           _flops_text(r.forward_flops), _flops_text(r.backward_flops))
                          for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        left = {1, 2}  # text columns; numbers align right
        lines = [f"{self.name}: input {self.input_shape}, batch {self.batch}, {self.dtype}"]
        for row in table:
            lines.append("  ".join(c.ljust(w) if i in left else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        lines.append(
            f"total: {self.params:,} parameters ({self.params:.2e}) = "
            f"{si_bytes(self.param_bytes)} (≈ {approx_bytes(self.param_bytes)}; "
            f"{iec_bytes(self.param_bytes)}) of {self.dtype}")
        lines.append(f"       activations {si_bytes(self.activation_bytes)}, forward "
                     f"{_flops_text(self.forward_flops)} FLOPs, backward "
                     f"{_flops_text(self.backward_flops)} FLOPs")
        lines.append("units: 1 GB = 10^9 bytes, 1 GiB = 2^30 bytes; a FLOP is one addition or "
                     "multiplication")
        return "\n".join(lines)


_SI = ("B", "kB", "MB", "GB", "TB", "PB")


def _si_scale(n: float):
    k = 0
    while abs(n) >= 1000 and k < len(_SI) - 1:
        n /= 1000
        k += 1
    return n, _SI[k]


def si_bytes(n: int) -> str:
    """154618822656 -> '154.6 GB' (SI: 1 GB = 10^9 B)."""
    value, unit = _si_scale(float(n))
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def iec_bytes(n: int) -> str:
    """154618822656 -> '144.0 GiB' (binary: 1 GiB = 2^30 B)."""
    value, k = float(n), 0
    while value >= 1024 and k < 5:
        value /= 1024
        k += 1
    return f"{int(value)} B" if k == 0 else f"{value:.1f} {'KMGTP'[k - 1]}iB"


def approx_bytes(n: int) -> str:
    """Two significant digits, as the lecture rounds: 154.6 GB -> '150 GB'."""
    rounded = float(f"{float(n):.2g}")
    value, unit = _si_scale(rounded)
    return f"{value:g} {unit}"


def _flops_text(n):
    if n is None:
        return "?"
    return f"{n:,}" if n < 100_000 else f"{n:.3g}"


# ---- per-layer rules -----------------------------------------------------------------

def _bound_config(cls, kwargs: dict) -> dict:
    """The constructor's arguments with their defaults, without running the constructor."""
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(None, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{cls.type_name}: {exc}") from None
    bound.apply_defaults()
    return dict(list(bound.arguments.items())[1:])


def _expect(label, want, shape):
    if len(want) != len(shape) or any(w is not None and w != s for w, s in zip(want, shape)):
        pretty = ", ".join("*" if w is None else str(w) for w in want)
        raise ShapeError(f"{label} expects per-sample input ({pretty}) but receives {shape}")


def _linear_shapes(label, cfg, in_shape):
    n_in, n_out = int(cfg["in_features"]), int(cfg["out_features"])
    if n_in < 1 or n_out < 1:
        raise ValueError(f"{label}: in_features and out_features must be >= 1")
    _expect(label, (n_in,), in_shape)
    shapes = {"weight": (n_out, n_in)}
    if cfg["bias"]:
        shapes["bias"] = (n_out,)
    return (n_out,), shapes


def _conv_shapes(label, cfg, in_shape, spatial):
    from .layers.conv import _pair, out_size
    if spatial == 2:
        kernel, stride, padding = (_pair(cfg[k], k) for k in ("kernel_size", "stride", "padding"))
    else:
        kernel, stride, padding = ((1, int(cfg[k])) for k in ("kernel_size", "stride", "padding"))
    c_in, c_out = int(cfg["in_channels"]), int(cfg["out_channels"])
    _expect(label, (c_in,) + (None,) * spatial, in_shape)
    sizes = (1,) * (2 - spatial) + tuple(in_shape[1:])
    out = tuple(out_size(s, k, st, p) for s, k, st, p in zip(sizes, kernel, stride, padding))
    if min(out) < 1:
        raise ShapeError(f"{label}: input {in_shape} is smaller than the kernel")
    shapes = {"weight": (c_out, c_in) + kernel[2 - spatial:]}
    if cfg["bias"]:
        shapes["bias"] = (c_out,)
    return (c_out,) + out[2 - spatial:], shapes


# Layers with parameters, sized from their spec. Keyed by type name, applied to
# nnumba's own classes only (a plugin's class of another name is instantiated).
_SHAPE_RULES = {
    "Linear": _linear_shapes,
    "Conv2d": lambda label, cfg, s: _conv_shapes(label, cfg, s, 2),
    "Conv1d": lambda label, cfg, s: _conv_shapes(label, cfg, s, 1),
}

_ELEMENTWISE = {"ReLU": (1, 1), "Tanh": (1, 1), "Sigmoid": (1, 1), "Threshold": (1, None),
                "Identity": (0, 0), "Flatten": (0, 0), "Dropout": (1, 1)}
_VIEWS = {"Flatten", "Identity"}


def _bins_total(size: int, out: int) -> int:
    """Sum of PyTorch's adaptive bin lengths along one axis."""
    return sum(((i + 1) * size + out - 1) // out - (i * size) // out for i in range(out))


def _flops(type_name, cfg, in_shape, out_shape, batch, first):
    """(forward, backward) FLOPs for ``batch`` samples; (None, None) if unknown."""
    n_out, n_in = batch * math.prod(out_shape), batch * math.prod(in_shape)
    if type_name in ("Linear", "Conv2d", "Conv1d"):
        fan_in = math.prod(in_shape) if type_name == "Linear" else \
            int(cfg["in_channels"]) * math.prod(_kernel(cfg, type_name))
        macs = n_out * fan_in
        bias = n_out if cfg["bias"] else 0
        return 2 * macs + bias, 2 * macs + bias + (0 if first else 2 * macs)
    if type_name in _ELEMENTWISE:
        fwd, bwd = _ELEMENTWISE[type_name]
        if type_name == "Dropout" and float(cfg["p"]) == 0.0:
            fwd, bwd = 0, 0
        return fwd * n_in, None if bwd is None else (0 if first else bwd * n_in)
    if type_name in ("MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d"):
        window = math.prod(_kernel(cfg, type_name))
        if type_name.startswith("Max"):
            return n_out * (window - 1), 0 if first else n_out
        return n_out * window, 0 if first else n_out * window
    if type_name == "AdaptiveAvgPool2d":
        c, h, w = in_shape
        per_plane = _bins_total(h, out_shape[1]) * _bins_total(w, out_shape[2])
        total = batch * c * per_plane
        return total, 0 if first else total
    return None, None


def _kernel(cfg, type_name):
    k = cfg["kernel_size"]
    if type_name.endswith("1d"):
        return (int(k),)
    return (int(k), int(k)) if np.isscalar(k) else tuple(int(v) for v in k)


def _is_builtin(cls) -> bool:
    return cls.__module__.startswith("nnumba.layers.")


def _layer_shapes(index, item, in_shape):
    """(type name, class, config, output shape, {param: shape}) for one spec item."""
    from .registry import get_layer
    if not isinstance(item, dict) or "type" not in item:
        raise ValueError(f"model spec item #{index} must be a dict with a 'type' key, "
                         f"got {item!r:.80}")
    type_name = item["type"]
    cls = get_layer(type_name)
    kwargs = {k: v for k, v in item.items() if k != "type"}
    label = f"{type_name} #{index}"
    cfg = _bound_config(cls, kwargs)
    rule = _SHAPE_RULES.get(type_name) if _is_builtin(cls) else None
    if rule is not None:
        out, shapes = rule(label, cfg, in_shape)
        return type_name, cls, cfg, tuple(out), shapes
    layer = cls(**kwargs)   # parameter-free (or small) layers: ask the layer itself
    layer.label = label
    want = layer.input_shape()
    if want is not None:
        _expect(label, want, in_shape)
    out = tuple(layer.output_shape(in_shape))
    return type_name, cls, cfg, out, {n: p.value.shape for n, p in layer.params().items()}


def summarize(model, input_shape=None, batch: int = 1, dtype="float32",
              name: str | None = None, **options) -> Summary:
    """Size ``model``: a registered model name (``options`` go to its factory), a spec
    (list of layer dicts), a path to a JSON spec file, or a Sequential."""
    spec, default_shape, name = _resolve(model, name, options)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    shape = default_shape if input_shape is None else tuple(int(v) for v in input_shape)
    if shape is None:
        raise ValueError(f"{name}: cannot tell the input shape from the model; "
                         f"give it, e.g. --input-shape 1,28,28")
    if not shape or min(shape) < 1:
        raise ValueError(f"input shape must be positive sizes, got {shape}")
    rows, in_shape = [], tuple(shape)
    for i, item in enumerate(spec):
        type_name, cls, cfg, out, shapes = _layer_shapes(i, item, in_shape)
        count = sum(math.prod(s) for s in shapes.values())
        fwd, bwd = _flops(type_name, cfg, in_shape, out, int(batch), first=(i == 0)) \
            if _is_builtin(cls) else (None, None)
        act = 0 if type_name in _VIEWS or _fused_relu(spec, i) else \
            int(batch) * math.prod(out) * dtype.itemsize
        rows.append(LayerRow(i, type_name, out, count, count * dtype.itemsize, act, fwd, bwd))
        in_shape = out
    return Summary(name, tuple(shape), int(batch), dtype.name, rows)


def _fused_relu(spec, i) -> bool:
    following = spec[i + 1] if i + 1 < len(spec) and isinstance(spec[i + 1], dict) else {}
    return spec[i].get("type") == "ReLU" and following.get("type") in ("MaxPool2d", "MaxPool1d")


def _resolve(model, name, options):
    """(spec, default input shape or None, display name)."""
    from .model import Sequential
    from .registry import get_model
    default = None
    if isinstance(model, Sequential):
        spec = model.spec()
        name = name or "model"
    elif isinstance(model, (str, Path)) and str(model).endswith(".json"):
        spec = json.loads(Path(model).read_text())
        name = name or Path(model).name
    elif isinstance(model, str):
        factory = get_model(model)
        spec = factory(**options)
        default = factory.input_shape_for(**options)
        name = name or model
    else:
        spec, name = model, name or "model"
    if options and not (isinstance(model, str) and not str(model).endswith(".json")):
        raise TypeError("options apply to named models only")
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError(f"a model spec is a non-empty list of layer dicts, got {spec!r:.80}")
    if default is None:
        default = _guess_input_shape(spec)
    return list(spec), default, name


def _guess_input_shape(spec):
    # Flatten ... Linear(in): a flat input of in_features fits (an MLP's summary).
    for item in spec:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "Linear" and "in_features" in item:
            return (int(item["in_features"]),)
        if kind != "Flatten":
            return None
    return None
