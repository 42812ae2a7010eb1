"""What a layer's ``output_shape`` declares, checked before anything is sized by it."""
import numpy as np

from ..errors import ContractError
from .validation import show


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
