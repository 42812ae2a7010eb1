"""The class attributes a layer declares (``devices``, ``has_gradient``,
``output_is_view``, ``kept_for_backward``), checked as its class is defined: a
wrong one was read silently (``devices = "cuda"`` as the letters of a string,
``has_gradient = "no"`` as true) until a model used it.  (One set on the class
after its definition is not checked.)"""
from __future__ import annotations

import numpy as np

from ..errors import ContractError

_FLAGS = ("has_gradient", "output_is_view")


def check_class_attributes(cls) -> None:
    """ContractError naming the attribute of ``cls`` (its own or inherited: a mixin's)
    that has the wrong form."""
    def wrong(name, want):
        raise ContractError(f"{cls.__module__}.{cls.__qualname__}: {name} must be {want}, "
                            f"got {getattr(cls, name)!r:.80}")
    for name in _FLAGS:
        value = getattr(cls, name)
        if not isinstance(value, (bool, np.bool_, property)):
            wrong(name, "True or False")
    devices = cls.devices
    if isinstance(devices, dict):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in devices.items()):
            wrong("devices", "None, a tuple of device names, or {device name: module of the "
                             "layer's own kernels there}")
    elif devices is not None and (not isinstance(devices, (tuple, list, set, frozenset))
                                  or not all(isinstance(d, str) for d in devices)):
        wrong("devices", 'None or a tuple of device names, e.g. ("cpu", "cuda")')
    kept = cls.kept_for_backward
    if not isinstance(kept, (tuple, list)) or not all(isinstance(k, str) for k in kept):
        wrong("kept_for_backward", 'a tuple of attribute names, e.g. ("_x", "_y")')
