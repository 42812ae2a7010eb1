"""What layers declare of their shapes, checked before anything is sized by it."""
import math

import numpy as np

from ..errors import ContractError
from .validation import declared_input_shape, show


def output_shape_of(layer, input_shape) -> tuple:
    """``layer.output_shape(input_shape)`` as a tuple of sizes, or a ContractError naming
    the layer: None or a string there made a bare TypeError, or a shape ('a', 'b', 'c')
    that the next layer was blamed for."""
    out = layer.output_shape(input_shape)
    if not isinstance(out, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
            for d in out):
        raise ContractError(f"{layer.label}: output_shape({tuple(input_shape)}) returned "
                            f"{show(out)}, not the per-sample output shape (a tuple of sizes)")
    return tuple(int(d) for d in out)


def fixed_input_shape(layers):
    """The per-sample input shape the layers fix, or None: the first layer's that fixes
    every size (a Linear's, a plugin layer's), past layers that keep any shape as it is
    (an activation, a Dropout); past a Flatten, a flat input of that size (an MLP's).
    What ``nnumba summary`` shows, and what a spec or a model saved without its input
    shape trains on."""
    flat = False
    for layer in layers:
        want = declared_input_shape(layer)
        if want and all(isinstance(w, int) and w >= 1 for w in want):
            return (math.prod(want),) if flat else want
        if layer.type_name == "Flatten":
            flat = True
        elif not keeps_any_shape(layer):
            return None  # it may change the shape: nothing before it is fixed
    return None


def keeps_any_shape(layer) -> bool:
    """Whether ``layer`` takes any shape and gives it back as it is (an activation, a
    Dropout): it declares no input shape and keeps the base class's output_shape."""
    from .contract import Layer
    return declared_input_shape(layer) is None and \
        type(layer).output_shape is Layer.output_shape
