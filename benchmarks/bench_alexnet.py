"""Issue-6 benchmark: AlexNet inference (eval mode, 3 x 224 x 224) at batch 1 and 16,
beside PyTorch on the same weights and thread count.
Run: pytest benchmarks/bench_alexnet.py (ratios print at the end).
Under --benchmark-disable (or NNUMBA_BENCH_QUICK=1) a 127 x 127 input and batches of
at most 2 keep it to seconds."""
import numpy as np
import pytest
from conftest import QUICK

import nnumba

BATCHES = (1, 16)


def torch_from_spec(torch, spec):
    """The same network in torch, layer for layer (so weights transfer by order)."""
    nn = torch.nn
    make = {"Conv2d": nn.Conv2d, "MaxPool2d": nn.MaxPool2d, "Linear": nn.Linear,
            "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d, "Dropout": nn.Dropout,
            "ReLU": nn.ReLU, "Flatten": nn.Flatten}
    layers = []
    for item in spec:
        kwargs = {k: v for k, v in item.items() if k not in ("type", "seed", "resample")}
        layers.append(make[item["type"]](**kwargs))
    return nn.Sequential(*layers)


@pytest.fixture(scope="module")
def quick(request):
    return QUICK or request.config.getoption("benchmark_disable")


@pytest.fixture(scope="module")
def model():
    model = nnumba.build("alexnet", seed=0).eval()
    model.reuse_buffers(True)  # an inference session keeps its activation arrays
    return model


@pytest.fixture(scope="module")
def net(model):
    """torch's AlexNet holding the nnumba model's weights (state_dict order = ours)."""
    torch = pytest.importorskip("torch")
    net = torch_from_spec(torch, model.spec()).eval()
    with torch.no_grad():
        for (_, p), t in zip(model.params(), net.state_dict().values(), strict=True):
            t.copy_(torch.from_numpy(p.value))
    return net


def _images(quick, batch):
    size, batch = (127, min(batch, 2)) if quick else (224, batch)
    return np.random.default_rng(batch).random((batch, 3, size, size), dtype=np.float32)


@pytest.mark.parametrize("batch", BATCHES)
def test_alexnet_nnumba(benchmark, record, model, quick, batch):
    x = _images(quick, batch)
    record(f"alexnet-infer-b{batch}", "nnumba", batch=len(x), size=x.shape[-1])
    model.forward(x)  # compile and fault in the buffers outside the timing
    benchmark.pedantic(model.forward, args=(x,), rounds=3 if batch > 1 else 10, iterations=1)


@pytest.mark.parametrize("batch", BATCHES)
def test_alexnet_torch(benchmark, record, net, model, torch_threads, quick, batch):
    torch = torch_threads
    x = _images(quick, batch)
    record(f"alexnet-infer-b{batch}", "torch", batch=len(x), size=x.shape[-1])
    xt = torch.from_numpy(x)

    def infer():
        with torch.inference_mode():
            return net(xt)

    expect = infer().numpy()
    ours = model.forward(x)
    # The same function on both sides, or the timing compares nothing.
    assert np.abs(ours - expect).max() <= 1e-4 * np.abs(expect).max()
    benchmark.pedantic(infer, rounds=3 if batch > 1 else 10, iterations=1)
