"""AlexNet inference (eval mode, 3 x 224 x 224) at batch 1 and 16 beside PyTorch on the
same weights and thread count, PyTorch in a fresh process of its own, taking turns.
Under --benchmark-disable (or NNUMBA_BENCH_QUICK=1) a 127 x 127 input and batches of
at most 2 keep it to seconds."""
import numpy as np
import pytest
from conftest import has, turns

import nnumba

BATCHES = (1, 16)


@pytest.fixture(scope="module")
def model():
    model = nnumba.build("alexnet", seed=0).eval()
    model.reuse_buffers(True)  # an inference session keeps its activation arrays
    return model


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    """The model's parameters under torch's state_dict names (same order), as .npz."""
    path = tmp_path_factory.mktemp("alexnet") / "weights.npz"
    names = {}
    for i, item in enumerate(model.spec()):
        if item["type"] in ("Conv2d", "Linear"):
            names[f"{i}.weight"] = f"{i}.weight"
            names[f"{i}.bias"] = f"{i}.bias"
    np.savez(path, **{names[n]: p.value for n, p in model.params()})
    return str(path)


def _images(quick, batch):
    size, batch = (127, min(batch, 2)) if quick else (224, batch)
    return np.random.default_rng(batch).random((batch, 3, size, size), dtype=np.float32)


@pytest.mark.parametrize("batch", BATCHES)
def test_alexnet_inference(benchmark, peers, files, model, weights, quick, batch, tmp_path):
    x = _images(quick, batch)
    ours = model.forward(x).copy()  # compile and fault in the buffers outside the timing
    peer = None
    if has("torch"):
        out = tmp_path / "torch-out.npy"
        peer = peers("torch", {"kind": "torch-infer", "spec": model.spec(),
                               "weights": weights, "out": str(out), **files(x=x)})
        # The same function on both sides, or the timing compares nothing.
        expect = np.load(out, allow_pickle=False)
        assert np.abs(ours - expect).max() <= 1e-4 * np.abs(expect).max()
    turns(benchmark, f"alexnet-infer-b{batch}", lambda: model.forward(x), peer,
          rounds=3 if quick else (10 if batch > 1 else 30), batch=len(x), size=x.shape[-1])
