"""One training epoch of the lecture's CNN beside PyTorch (in a fresh process of its
own, taking turns), its share of the machine's FP32 peak, and what JIT compilation
costs (cold cache, and the first step with a warm cache)."""
import json
import os
import subprocess
import sys

import pytest
from conftest import fashion_sized, has, record, turns

import nnumba
from nnumba.losses import CrossEntropy
from nnumba.summary import summarize
from nnumba.train import SGDTrainer

BATCH = 100
LR, MOMENTUM = 0.05, 0.9


@pytest.fixture(scope="module")
def fashion(quick):
    return fashion_sized(2_000 if quick else 60_000)


def test_cnn_epoch(benchmark, peers, files, fashion, quick, sgemm_peak):
    x, y = fashion
    model = nnumba.build("lenet", seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), lr=LR, momentum=MOMENTUM, batch_size=BATCH,
                         seed=0)
    trainer.fit(x[:BATCH], y[:BATCH], epochs=1)  # compile outside the timing
    peer = None
    if has("torch"):
        peer = peers("torch", {"kind": "torch-train", "spec": model.spec(), "batch": BATCH,
                               "lr": LR, "momentum": MOMENTUM, **files(x=x, y=y)})
    cost = summarize(model, x.shape[1:], batch=len(x))
    gflop = (cost.forward_flops + cost.backward_flops) / 1e9
    turns(benchmark, "cnn-epoch", lambda: trainer.fit(x, y, epochs=1), peer,
          rounds=1 if quick else 5, samples=len(x), gflop=gflop)
    if benchmark.stats and sgemm_peak:
        rate = gflop / benchmark.stats.stats.median
        share = rate / sgemm_peak
        benchmark.extra_info.update(gflops=rate, sgemm_peak_gflops=sgemm_peak, peak_share=share)
        from conftest import _rows
        _rows[-1]["note"] = (f"{rate:.0f} GFLOP/s = {100 * share:.0f} % of numpy's sgemm "
                             f"({sgemm_peak:.0f} GFLOP/s)")


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
    cold = _first_step(tmp_path)
    warm = benchmark.pedantic(_first_step, args=(tmp_path,), rounds=1, iterations=1)
    record(benchmark, "cnn-jit", None, cold_compile_seconds=cold, warm_first_step_seconds=warm)
    print(f"\ncnn JIT: cold first step {cold:.2f} s, warm first step {warm:.2f} s")
