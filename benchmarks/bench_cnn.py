"""Issue-3 benchmarks: one training epoch of the lecture's CNN beside PyTorch, and
what JIT compilation costs (cold cache, and the first step with a warm cache).
Per-layer kernels beside PyTorch: bench_kernels_conv.py."""
import json
import os
import subprocess
import sys

import pytest
from conftest import fashion_sized

import nnumba
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer

BATCH = 100


@pytest.fixture(scope="module")
def fashion(request):
    n = 2_000 if request.config.getoption("benchmark_disable") else 60_000
    return fashion_sized(n)


def test_cnn_epoch_nnumba(benchmark, record, fashion):
    x, y = fashion
    record("cnn-epoch", "nnumba", samples=len(x))
    model = nnumba.build("lenet", seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, batch_size=BATCH, seed=0)
    trainer.fit(x[:BATCH], y[:BATCH], epochs=1)  # compile outside the timing
    benchmark.pedantic(trainer.fit, args=(x, y), kwargs={"epochs": 1}, rounds=3, iterations=1)


def test_cnn_epoch_torch(benchmark, record, fashion, torch_threads):
    torch = torch_threads
    nn = torch.nn
    x, y = fashion
    record("cnn-epoch", "torch", samples=len(x))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(3), nn.Conv2d(32, 64, 5),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        for idx in torch.randperm(len(xt), generator=gen).split(BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()

    benchmark.pedantic(epoch, rounds=3, iterations=1)


def _first_step(cache_dir) -> float:
    """Seconds from the data loaded to the end of the first step, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-m", "nnumba", "train", "--model", "lenet", "--epochs", "1",
         "--train-size", str(BATCH), "--json"],
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}, capture_output=True, text=True,
        check=True, timeout=600)
    return json.loads(out.stdout)["first_step_seconds"]


def test_cnn_jit_cold_and_warm(benchmark, tmp_path):
    """Cold: every kernel the CNN needs compiled from nothing. Warm: loaded from the cache."""
    benchmark.group = "cnn-jit"
    cold = _first_step(tmp_path)
    warm = benchmark.pedantic(_first_step, args=(tmp_path,), rounds=1, iterations=1)
    benchmark.extra_info.update(cold_compile_seconds=cold, warm_first_step_seconds=warm)
    print(f"\ncnn JIT: cold first step {cold:.2f} s, warm first step {warm:.2f} s")
