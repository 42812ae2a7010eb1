"""A layer's fresh arrays, refused with a TooLargeError naming the layer before
numpy's MemoryError (or Linux's OOM killer) meets them."""
from __future__ import annotations

from contextlib import suppress

import numpy as np

from ..errors import TooLargeError


def allocate(device, label: str, key: str, shape: tuple, dtype: np.dtype):
    """An empty array of ``device``; the error says whether smaller batches would fit."""
    nbytes = float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    free = None
    with suppress(MemoryError):  # asking for the free memory costs more than a small allocation
        if nbytes <= 2**30 or nbytes <= (free := device.free_memory()):
            return device.empty(shape, dtype)
    batch = shape[0] if len(shape) > 1 else 1  # (a layer's arrays: a sample per row)
    one = nbytes / max(batch, 1)
    fix = "use smaller batches" if batch > 1 and (free is None or one <= free) else \
        f"one sample's share alone needs {one / 1e9:,.1f} GB" if batch > 1 else \
        "that is for one sample: make the layer smaller"
    raise TooLargeError(f"{label}: its {key!r} array of shape {shape} needs "
                        f"{nbytes / 1e9:,.1f} GB, more than the {device.name} has free; "
                        f"{fix}") from None
