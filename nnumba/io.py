"""Save and load weights as .npz, never with pickle.

A file holds one array per parameter ("0.weight", "0.bias", ...) plus the
model spec as JSON text, so :func:`load_model` can rebuild the model alone.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import WeightsError

_SPEC_KEY = "__nnumba_spec__"


def save(model, path) -> Path:
    """Write ``model``'s weights and spec to ``path`` (.npz), atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    arrays = {name: p.value for name, p in model.params()}
    meta = {"spec": model.spec(), "dtype": model.dtype.name, "format": 1}
    arrays[_SPEC_KEY] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: a crash never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _read(path) -> tuple[dict, dict]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise WeightsError(f"{path}: not a readable nnumba weights file ({exc})") from None
    if _SPEC_KEY not in arrays:
        raise WeightsError(f"{path}: no model spec inside; was it written by nnumba.io.save?")
    meta = json.loads(str(arrays.pop(_SPEC_KEY)))
    return meta, arrays


def load_weights(model, path):
    """Copy the weights in ``path`` into ``model``; the names and shapes must match."""
    _, arrays = _read(path)
    params = dict(model.params())
    missing = sorted(set(params) - set(arrays))
    extra = sorted(set(arrays) - set(params))
    if missing or extra:
        raise WeightsError(f"{path} does not fit this model: missing {missing or 'nothing'}, "
                           f"unexpected {extra or 'nothing'}")
    for name, p in params.items():
        if arrays[name].shape != p.value.shape:
            raise WeightsError(f"{path} does not fit this model: {name} has shape "
                               f"{arrays[name].shape} in the file, {p.value.shape} in the model")
    for name, p in params.items():
        p.value[...] = arrays[name]
    return model


def load_model(path):
    """Rebuild the model saved in ``path`` (its layers must be registered) with its weights."""
    from .model import Sequential
    meta, _ = _read(path)
    model = Sequential.from_spec(meta["spec"]).astype(meta["dtype"])
    return load_weights(model, path)
