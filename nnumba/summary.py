"""A model's size and cost per layer, from its spec alone: output shape, parameters,
memory of parameters and activations, FLOPs of forward and backward.

Each layer is built in :func:`nnumba.layers.shapes_only` mode, whose parameters are
zero-size stand-ins, and asked: ``params()`` (the trainable ones count; the state's
bytes, ``trainable=False``, are given apart), ``output_shape()``,
``flops()``.
So the lecture's 3.87e10-parameter linear layer is sized, never allocated, and a
plugin layer reports its FLOPs by implementing ``flops`` ("?" where it does not, and
the totals are then a lower bound that names it).

Conventions, stated once:
- memory in SI units, 1 GB = 10^9 bytes (the GiB figure is printed beside the total);
- a FLOP is one addition or one multiplication: a multiply-add counts 2;
- activations: the bytes of the array each layer outputs for the whole batch
  (0 for layers whose output is a view of their input, such as Flatten and Identity,
  and for a layer a model fuses into the next one, such as a ReLU before a max-pool);
- backward: parameter gradients, plus the input gradient where something before the
  layer needs it (not for the first layer); Dropout is counted as in training.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ContractError, ShapeError, SpecError, TooLargeError
from .io import stored_info, stored_spec
from .jsonfile import read_json
from .layers.contract import shapes_only
from .layers.declared_shape import fixed_input_shape, keeps_any_shape, output_shape_of
from .layers.fusion import fuse
from .layers.validation import check_fits, declared_input_shape, float_dtype, integer, show
from .model import Sequential
from .model_spec import build_layer
from .models.fitting import is_model_name
from .paths import model_file
from .registry import get_model


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
    state_bytes: int = 0         # what the layer updates itself (trainable=False)


@dataclass
class Summary:
    name: str
    input_shape: tuple
    batch: int
    dtype: str
    rows: list

    def _total(self, key):
        """The column ``key`` summed over the layers; None where a layer's is None (FLOPs)."""
        values = [getattr(r, key) for r in self.rows]
        return None if None in values else sum(values)

    params = property(lambda self: self._total("params"))
    param_bytes = property(lambda self: self._total("param_bytes"))
    state_bytes = property(lambda self: self._total("state_bytes"))
    activation_bytes = property(lambda self: self._total("activation_bytes"))
    forward_flops = property(lambda self: self._total("forward_flops"))
    backward_flops = property(lambda self: self._total("backward_flops"))

    def to_dict(self) -> dict:
        totals = {k: self._total(k) for k in ("params", "param_bytes", "state_bytes",
                                              "activation_bytes", "forward_flops",
                                              "backward_flops")}
        return {"name": self.name, "input_shape": list(self.input_shape), "batch": self.batch,
                "dtype": self.dtype, "layers": [asdict(r) for r in self.rows], "total": totals}

    def _flops_total(self, key) -> str:
        """The FLOPs column's total as text: where some layers give no count, the sum of
        the others as a lower bound, naming the layers left out."""
        unknown = [f"#{r.index}" for r in self.rows if getattr(r, key) is None]
        if not unknown:
            return _flops_text(self._total(key))
        known = sum(getattr(r, key) or 0 for r in self.rows)
        return f"at least {_flops_text(known)} (no count from {', '.join(unknown)})"

    def format(self) -> str:
        head = ("#", "layer", "output shape", "parameters", "param memory", "activations",
                "forward FLOPs", "backward FLOPs")
        table = [head] + [(str(r.index), r.layer, str(r.output_shape), f"{r.params:,}",
                           si_bytes(r.param_bytes), si_bytes(r.activation_bytes),
                           _flops_text(r.forward_flops), _flops_text(r.backward_flops))
                          for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        left = {1, 2}  # text columns; numbers align right
        rows = ["  ".join(c.ljust(w) if i in left else c.rjust(w)
                          for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in table]
        return "\n".join([
            f"{self.name}: input {self.input_shape}, batch {self.batch}, {self.dtype}", *rows,
            f"total: {self.params:,} parameters ({self.params:.2e}) = "
            f"{si_bytes(self.param_bytes)} (≈ {approx_bytes(self.param_bytes)}; "
            f"{iec_bytes(self.param_bytes)}) of {self.dtype}" + (
                f", and {si_bytes(self.state_bytes)} of state (trainable=False)"
                if self.state_bytes else ""),
            f"       activations {si_bytes(self.activation_bytes)}, forward "
            f"{self._flops_total('forward_flops')} FLOPs, backward "
            f"{self._flops_total('backward_flops')} FLOPs",
            "units: 1 GB = 10^9 bytes, 1 GiB = 2^30 bytes; a FLOP is one addition or "
            "multiplication"])


_SI = ("B", "kB", "MB", "GB", "TB", "PB")
_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _scale(n: float, base: int = 1000, units=_SI):
    """(value, unit): n bytes in the largest unit it reaches."""
    k = 0
    while abs(n) >= base and k < len(units) - 1:
        n /= base
        k += 1
    return n, units[k]


def _bytes_text(value: float, unit: str) -> str:
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def si_bytes(n: int) -> str:
    """154618822656 -> '154.6 GB' (SI: 1 GB = 10^9 B)."""
    return _bytes_text(*_scale(float(n)))


def iec_bytes(n: int) -> str:
    """154618822656 -> '144.0 GiB' (binary: 1 GiB = 2^30 B)."""
    return _bytes_text(*_scale(float(n), 1024, _IEC))


def approx_bytes(n: int) -> str:
    """Two significant digits, as the lecture rounds: 154.6 GB -> '150 GB'."""
    value, unit = _scale(float(f"{float(n):.2g}"))
    return f"{value:g} {unit}"


def _flops_text(n):
    if n is None:
        return "?"
    if n < 100_000:
        return f"{n:,}"
    if n < 1e300:
        return f"{n:.2e}"  # 1.00e+05: 3 digits, kept
    digits = str(n)  # past a float's range (a plugin's count): its leading digits
    return f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


# ---- asking the layers -----------------------------------------------------------------

def build_shapes_only(spec, dtype=None):
    """The layers of ``spec`` (checked by Sequential.check_spec) in shapes-only mode
    (nothing allocated), labelled as in a model; an error names the item, as
    Sequential.from_spec's do."""
    layers = []
    with shapes_only():
        for i, item in enumerate(spec):
            layer = build_layer(item, i)
            layer.dtype = layer.dtype if dtype is None else dtype
            layer.set_flags(label=f"{item['type']} #{i}")
            layers.append(layer)
    return layers


def _example_shape(layers) -> str:
    """An input shape the layers take, in the first layer's rank (free axes of 8, 28,
    64 or 224), for the error that asks for one; 1,28,28 where none is found."""
    # the first layer's, or the first past layers that keep any shape (a Dropout)
    want = next((declared_input_shape(layer) for layer in layers
                 if not keeps_any_shape(layer)), None)
    if not want:
        return "1,28,28"
    for size in (8, 28, 64, 224):
        shape = tuple(w if isinstance(w, int) else size for w in want if w is not Ellipsis)
        try:
            for layer in layers:
                check_fits(layer, shape)  # a Linear's width too, not only a kernel's size
                shape = output_shape_of(layer, shape)
        except Exception:  # noqa: BLE001 - too small for a kernel, say: try the next
            continue
        return ",".join(str(w if isinstance(w, int) else size) for w in want
                        if w is not Ellipsis)
    return "1,28,28"


def summarize(model, input_shape=None, batch: int = 1, dtype=None,
              name: str | None = None, **options) -> Summary:
    """Size ``model``: a registered model name (``options`` go to its factory), a spec
    (list of layer dicts), a path to a JSON spec file or to a saved model (.npz, its
    weights unread), or a Sequential.  ``dtype``: the parameters' (float32 or
    float64); by default a Sequential's or a saved model's own, else float32."""
    spec, default_shape, name, own = _resolve(model, name, options)
    # (np.dtype(None) would be float64: None is resolved here, not by float_dtype)
    dtype = float_dtype("summary", own if dtype is None else dtype)
    # What the spec asks is checked first: its errors say more than a shape guessed from it.
    layers = build_shapes_only(spec, dtype)
    batch = _size("batch", batch)
    shape = input_shape if input_shape is not None else default_shape \
        if default_shape is not None else fixed_input_shape(layers)
    if shape is None:
        raise ShapeError(f"{name}: cannot tell the input shape from the model; "
                         f"give it, e.g. --input-shape {_example_shape(layers)}")
    if not isinstance(shape, (list, tuple)):  # (): one number a sample (an id)
        raise ShapeError(f"input shape must be a list of sizes, got {show(shape)}")
    shape = tuple(_size("input shape", v) for v in shape)
    if math.prod(shape) * batch >= 2**63:  # no array holds it (sizes past a float's range)
        raise TooLargeError(f"{name}: an input of batch {batch} x {shape} holds "
                            f"{_flops_text(math.prod(shape) * batch)} values, more than any "
                            f"array can hold (2**63)")
    absorbed = {i for step, members in fuse(layers) for i in members[:-1]}
    rows, in_shape, wanted = [], tuple(shape), False
    for i, layer in enumerate(layers):
        check_fits(layer, in_shape)
        out = output_shape_of(layer, in_shape)
        count = sum(math.prod(p.value.shape) for p in layer.params().values() if p.trainable)
        state = sum(math.prod(p.value.shape) for p in layer.params().values()
                    if not p.trainable)
        forward, weight, inputs = layer_flops(layer, in_shape) or (None, None, None)
        fwd = None if forward is None else forward * batch
        bwd = None if weight is None or inputs is None else \
            (weight + (inputs if wanted else 0)) * batch
        act = 0 if layer.output_is_view or i in absorbed else \
            batch * math.prod(out) * dtype.itemsize
        rows.append(LayerRow(i, layer.type_name, out, count, count * dtype.itemsize, act,
                             fwd, bwd, state * dtype.itemsize))
        wanted = wanted or count > 0
        in_shape = out
    return Summary(name, tuple(shape), batch, dtype.name, rows)


def _size(what: str, value) -> int:
    """An int >= 1, never a rounded float (a batch of 2.7 is no batch of 2)."""
    try:
        return integer("summary", what, value)
    except SpecError as exc:
        raise ShapeError(str(exc)) from None


def _resolve(model, name, options):
    """(spec, default input shape or None, display name, the model's own dtype)."""
    default, shown, dtype = None, "model", "float32"
    file = model_file(model)
    if isinstance(model, Sequential):
        spec, dtype = model.spec(), model.dtype
    elif file == ".json":
        spec, shown = read_json(model, "model spec"), Path(model).name  # errors name the file
    elif file:
        spec, dtype = stored_spec(model)  # a saved model: its spec, not its weights
        default = stored_info(model)["input_shape"]  # what it was trained on, if saved
        shown = Path(model).name
    elif isinstance(model, str) and not is_model_name(model):
        spec = model  # JSON text, as build and nnumba train take (check_spec parses it)
    elif isinstance(model, str):
        factory, shown = get_model(model), model
        spec = factory.spec(model, **options)
        # Its layers first (shapes only): they name a bad option as `nnumba train` does
        # ("in_features must be an integer >= 1"); the shape function would say int()'s words.
        build_shapes_only(Sequential.check_spec(spec))
        default = factory.input_shape_for(model, **options)  # on options its builder took
    else:
        spec = model
    if options and (file or not isinstance(model, str) or spec is model):
        raise SpecError(f"options ({', '.join(map(str, options))}) apply to named models "
                        f"only, not to a spec")
    return Sequential.check_spec(spec), default, name or shown, dtype


def layer_flops(layer, in_shape):
    """``layer.flops(in_shape)``: None, or (forward, weight gradient or None, input
    gradient or None) counts >= 0; a ContractError naming the layer for anything else."""
    flops = layer.flops(in_shape)

    def count(v):  # (an int past a float's range: isfinite would overflow)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return v >= 0
        return isinstance(v, (float, np.floating)) and math.isfinite(v) and v >= 0
    if flops is not None and not (isinstance(flops, tuple) and len(flops) == 3 and count(
            flops[0]) and all(v is None or count(v) for v in flops[1:])):
        raise ContractError(f"{layer.label}: flops({in_shape}) returned {show(flops)}; it "
                            f"returns None or a tuple (forward, weight gradient, input "
                            f"gradient) of counts >= 0")
    # counts as ints: a float of 8.5 prints "8.5", and float sums of huge ones overflow
    return None if flops is None else tuple(None if v is None else int(v) for v in flops)

