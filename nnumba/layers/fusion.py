"""The model rewrite that fuses neighbouring layers: what a Sequential runs."""
from __future__ import annotations


def fuse(layers) -> list[tuple[object, tuple[int, ...]]]:
    """[(layer to run, indices of the layers it stands for)], in order: wherever
    ``layer.fuse_after(previous)`` offers a fused layer, it replaces the pair."""
    steps = []
    for i, layer in enumerate(layers):
        if steps and len(steps[-1][1]) == 1:
            fused = layer.fuse_after(steps[-1][0])
            if fused is not None:
                steps[-1] = (fused, steps[-1][1] + (i,))
                continue
        steps.append((layer, (i,)))
    return steps
