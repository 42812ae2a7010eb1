"""Per-layer profiles beside PyTorch: where the time of a step goes, layer by layer.

The lecture CNN at batch 100 (forward and backward, as in training) and AlexNet at
batch 1 and 16 (inference).  Each round runs every layer once on both sides
(torch in a fresh process of its own, taking turns); the table of per-layer
medians prints at the end and lands in extra_info.  The benchmark's own time is
nnumba's whole pass."""
import time

import numpy as np
import pytest
from conftest import has, profile_table, turns

import nnumba

CASES = [("lenet", 100, True), ("alexnet", 1, False), ("alexnet", 16, False)]


def _profile(model, x, backward, times):
    """One pass, layer by layer, each layer's forward (and backward) timed alone."""
    model._set_input_grads()
    h = x
    for i, layer in enumerate(model.layers):
        start = time.perf_counter()
        h = layer.forward(h, check_finite=(i == 0))
        times.setdefault(f"{i} forward", []).append(time.perf_counter() - start)
    if backward:
        model.zero_grad()
        g = np.ones_like(h)
        for i in reversed(range(len(model.layers))):
            layer = model.layers[i]
            start = time.perf_counter()
            g = layer.backward(g)
            times.setdefault(f"{i} backward", []).append(time.perf_counter() - start)
            if g is None:
                break


@pytest.mark.parametrize("name,batch,backward", CASES,
                         ids=[f"{n}-b{b}" for n, b, _ in CASES])
def test_layer_profile(benchmark, peers, files, quick, name, batch, backward):
    size = {"lenet": 28, "alexnet": 127 if quick else 224}[name]
    channels = 1 if name == "lenet" else 3
    batch = min(batch, 2) if quick else batch
    x = np.random.default_rng(0).random((batch, channels, size, size), dtype=np.float32)
    model = nnumba.build(name, seed=0).train(backward)
    model.reuse_buffers(True)
    _profile(model, x, backward, {})  # compile and fault in the buffers
    peer = None
    if has("torch"):
        peer = peers("torch", {"kind": "torch-layers", "spec": model.spec(),
                               "backward": backward, "train": backward, **files(x=x)})
    ours = {}
    turns(benchmark, f"layers-{name}-b{batch}", lambda: _profile(model, x, backward, ours),
          peer, rounds=2 if quick else 20, batch=batch)
    theirs = peer.close() if peer else {}
    labels = {f"{i}": model.layers[i].label for i in range(len(model.layers))}
    table = profile_table(f"{name}, batch {batch}", labels, ours, theirs)
    benchmark.extra_info["profile"] = table
