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
            hold_parameters(fused, [layers[j] for j in before + after])
            fused.set_flags(label=f"{previous.label} + {this.label}")  # what errors name
            steps[-2:] = [(fused, before + after)]
    return steps


def hold_parameters(fused, chain):
    """Make ``fused`` hold, as its own, the Parameter objects of the layers it stands
    for (``chain``, in order), which it computes with: a model runs a step's backward
    only where the step or one before it has parameters (else the Linear before a
    fused step never trained), and converts and moves a step's parameters with it.
    They keep their names, or all take their layer's place in the chain
    (``0.weight``, ``1.weight``) where two share one.  A fused layer holding others,
    or only some of them, is refused: the optimizer, the spec and a saved file know
    the layers' alone."""
    from .contract import Layer
    last = chain[-1]
    if not isinstance(fused, Layer):
        raise ContractError(f"{last.label}: fuse_after returned {type(fused).__name__}, not a "
                            f"Layer (or None where it does not fuse)")
    wanted = [(at, name, p) for at, layer in enumerate(chain) for name, p in layer._params.items()]
    names = [name for _, name, _ in wanted]
    held = fused._params
    if not held:
        unique = len(set(names)) == len(names)
        fused._params = {name if unique else f"{at}.{name}": p for at, name, p in wanted}
        return
    ids, held_ids = {id(p) for *_, p in wanted}, {id(p) for p in held.values()}
    missing = [f"{chain[at].label} {name}" for at, name, p in wanted if id(p) not in held_ids]
    extra = [name for name, p in held.items() if id(p) not in ids]
    if missing or extra:
        raise ContractError(
            f"{last.label}: fuse_after returned {type(fused).__name__}, which "
            + (f"misses the parameters {', '.join(missing)}" if missing else "")
            + (" and " if missing and extra else "")
            + (f"holds parameters of its own ({', '.join(extra)})" if extra else "")
            + "; compute with its layers' (previous.params() and this layer's) and make "
              "none: the model gives the fused layer their parameters (docs/plugins.md, "
              "'Fused layers')")
