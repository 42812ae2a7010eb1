"""Mini-batches for one epoch.

Arguments are checked when `batches`/`iterate` is called, not at the first
`next()`, so a bad batch size fails where it is written.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

__all__ = ["batches", "iterate"]


def _stops(n: int, batch_size: int, drop_last: bool) -> range:
    """Batch start offsets, after checking the arguments."""
    if int(n) < 1:
        raise ValueError(f"need at least one example to batch, got n={n}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stop = n - n % batch_size if drop_last else n
    return range(0, stop, batch_size)


def _order(n: int, shuffle: bool, rng) -> np.ndarray:
    if not shuffle:
        return np.arange(n)
    if rng is None:
        raise ValueError("shuffle=True needs rng (a np.random.Generator) so runs are reproducible")
    return rng.permutation(n)


def batches(n: int, batch_size: int, *, shuffle: bool = False,
            rng: np.random.Generator | None = None, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) once: in order, or a permutation drawn
    from `rng` when `shuffle`. The last short batch is kept unless `drop_last`."""
    starts = _stops(n, batch_size, drop_last)
    order = _order(n, shuffle, rng)
    return (order[s:s + batch_size] for s in starts)


def iterate(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
            rng: np.random.Generator | None = None, *, drop_last: bool = False):
    """(xb, yb) mini-batches. In order they are views (contiguous slices, no
    copy); shuffled they are gathered copies."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    starts = _stops(len(x), batch_size, drop_last)
    if not shuffle:
        return ((x[s:s + batch_size], y[s:s + batch_size]) for s in starts)
    order = _order(len(x), True, rng)
    return ((x[idx], y[idx]) for idx in (order[s:s + batch_size] for s in starts))
