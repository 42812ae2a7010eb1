"""The model rewrite that fuses neighbouring layers: what a Sequential runs."""
from __future__ import annotations

from ..errors import ContractError


def fuse(layers) -> list[tuple[object, tuple[int, ...]]]:
    """[(layer to run, indices of the layers it stands for)], in order: wherever
    ``step.fuse_after(previous)`` offers a fused layer, it replaces the pair, and
    may fuse again with the step before (Conv2d, then ReLU + MaxPool2d)."""
    steps = []
    for i, layer in enumerate(layers):
        steps.append((layer, (i,)))
        while len(steps) > 1:
            (previous, before), (this, after) = steps[-2:]
            fused = this.fuse_after(previous)
            if fused is None:
                break
            hold_parameters(fused, previous, this)
            fused.set_flags(label=f"{previous.label} + {this.label}")  # what errors name
            steps[-2:] = [(fused, before + after)]
    return steps


def hold_parameters(fused, previous, this):
    """Make ``fused`` hold, as its own, the Parameter objects of the pair it stands
    for, which it computes with: a model runs a step's backward only where the step
    or one before it has parameters (else the Linear before a fused step never
    trained), and converts and moves a step's parameters with it.  A fused layer
    that made parameters of its own is refused: the optimizer, the spec and a saved
    file know the pair's alone."""
    from .contract import Layer
    if not isinstance(fused, Layer):
        raise ContractError(f"{this.label}: fuse_after returned {type(fused).__name__}, not a "
                            f"Layer (or None where it does not fuse)")
    pair = [(j, name, p) for j, layer in enumerate((previous, this))
            for name, p in layer._params.items()]
    held = list(fused._params.values())
    if not held:
        names = [name for _, name, _ in pair]  # "0.weight" where both have a "weight"
        fused._params = {name if names.count(name) == 1 else f"{j}.{name}": p
                         for j, name, p in pair}
    elif sorted(map(id, held)) != sorted(id(p) for *_, p in pair):
        raise ContractError(
            f"{this.label}: fuse_after returned {type(fused).__name__}, whose parameters "
            f"({', '.join(fused._params)}) are not those of {previous.label} and "
            f"{this.label}; compute with theirs (previous.params()) and make none: the "
            f"model gives the fused layer the pair's parameters (docs/plugins.md, "
            f"'Fused layers')")
