"""Mini-batches for one epoch.

Arguments are checked when `batches`/`iterate` is called, not at the first
`next()`, so a bad batch size fails where it is written; a bad one is an
nnumba error (SpecError, DTypeError, ShapeError) naming the argument.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import DTypeError, ShapeError, SpecError
from ..layers.validation import check_memory, flag, integer, show

__all__ = ["batches", "iterate"]


def _stops(owner: str, n: int, batch_size: int, drop_last: bool) -> range:
    """Batch start offsets, after checking the arguments."""
    n = integer(owner, "n", n, 0, None)
    if n == 0:
        raise ShapeError(f"{owner}: need at least one example to batch, got n=0")
    # the index array of the n examples (numpy's own error names nothing past 2**63)
    check_memory(f"{owner}: the indices of {n:,} examples", 8.0 * n)
    batch_size = integer(owner, "batch_size", batch_size, 1, None)
    stop = n - n % batch_size if flag(owner, "drop_last", drop_last) else n
    return range(0, stop, batch_size)


def _shuffle(owner: str, shuffle: bool, rng) -> bool:
    if flag(owner, "shuffle", shuffle) and not isinstance(rng, np.random.Generator):
        raise SpecError(f"{owner}: shuffle=True needs rng, a np.random.Generator, so runs "
                        f"are reproducible; got {show(rng)}")
    return bool(shuffle)


def batches(n: int, batch_size: int, *, shuffle: bool = False,
            rng: np.random.Generator | None = None, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) once: in order, or a permutation drawn
    from `rng` when `shuffle`. The last short batch is kept unless `drop_last`."""
    starts = _stops("batches", n, batch_size, drop_last)
    order = rng.permutation(int(n)) if _shuffle("batches", shuffle, rng) else np.arange(n)
    return (order[s:s + batch_size] for s in starts)


def _samples(name: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.ndim == 0:
        what = f"an array of shape {a.shape}" if isinstance(a, np.ndarray) else show(a)
        raise DTypeError(f"iterate: {name} must be a numpy array of samples (N, ...), "
                         f"got {what}")
    return a


def iterate(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
            rng: np.random.Generator | None = None, *, drop_last: bool = False):
    """(xb, yb) mini-batches. In order they are views (contiguous slices, no
    copy); shuffled they are gathered copies."""
    x, y = _samples("x", x), _samples("y", y)
    if len(x) != len(y):
        raise ShapeError(f"iterate: x has {len(x)} examples but y has {len(y)}")
    starts = _stops("iterate", len(x), batch_size, drop_last)
    if not _shuffle("iterate", shuffle, rng):
        return ((x[s:s + batch_size], y[s:s + batch_size]) for s in starts)
    order = rng.permutation(len(x))
    return ((x[idx], y[idx]) for idx in (order[s:s + batch_size] for s in starts))
