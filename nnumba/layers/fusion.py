"""The model rewrite that fuses neighbouring layers: what a Sequential runs."""
from __future__ import annotations


def fuse(layers) -> list[tuple[object, tuple[int, ...]]]:
    """[(layer to run, indices of the layers it stands for)], in order: wherever
    ``step.fuse_after(previous)`` offers a fused layer, it replaces the pair, and
    may fuse again with the step before (Conv2d, then ReLU + MaxPool2d)."""
    steps = []
    for i, layer in enumerate(layers):
        steps.append((layer, (i,)))
        while len(steps) > 1:
            fused = steps[-1][0].fuse_after(steps[-2][0])
            if fused is None:
                break
            steps[-2:] = [(fused, steps[-2][1] + steps[-1][1])]
    return steps
