"""How the kits say a layer or loss breaks the contract."""
from __future__ import annotations

import numpy as np


class ConformanceError(AssertionError):
    pass


def _fail(owner, what):
    raise ConformanceError(f"{owner.type_name}: {what}")


def _worst(got, want) -> tuple:
    """The index where ``got`` and ``want`` differ most."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - want)), want.shape))
