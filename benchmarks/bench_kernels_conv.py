"""Convolution and pooling kernels of the lecture CNN at batch 100 (float32), beside
PyTorch on the same thread count: conv1 (1->32, 5x5 on 28x28) forward / dW,
conv2 (32->64, 5x5 on 8x8) forward / dW / dX, max-pool 3 on 32x24x24 and max-pool 2
on 64x4x4, plain and fused with the preceding ReLU, forward and backward.
Run: pytest benchmarks/bench_kernels_conv.py (ratios print at the end).

Every torch call allocates its result, and on small VMs glibc hands large freed
blocks back to the OS, so torch pays page faults (conv1 forward 5 ms instead of
0.7 ms).  That is what torch does inside a training step, but for its best case run
with MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 set.
"""
import numpy as np
import pytest

from nnumba.kernels.cpu import conv as C
from nnumba.kernels.cpu import pool as P

N = 100
CONV1 = dict(x=(N, 1, 28, 28), w=(32, 1, 5, 5))      # -> (N, 32, 24, 24)
CONV2 = dict(x=(N, 32, 8, 8), w=(64, 32, 5, 5))      # -> (N, 64, 4, 4)
POOLS = {"pool3": ((N, 32, 24, 24), 3), "pool2": ((N, 64, 4, 4), 2)}


def _conv_data(shapes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shapes["x"], dtype=np.float32)
    w = rng.standard_normal(shapes["w"], dtype=np.float32) * np.float32(0.1)
    b = rng.standard_normal(shapes["w"][0], dtype=np.float32)
    ho = shapes["x"][2] - shapes["w"][2] + 1
    dy = rng.standard_normal((N, shapes["w"][0], ho, ho), dtype=np.float32)
    return x, w, b, dy


def _flops(shapes):
    D, Cin, kh, kw = shapes["w"]
    ho = shapes["x"][2] - kh + 1
    return 2.0 * N * D * ho * ho * Cin * kh * kw


CONV_JOBS = [("conv1", "fwd", CONV1), ("conv1", "dW", CONV1),
             ("conv2", "fwd", CONV2), ("conv2", "dW", CONV2), ("conv2", "dX", CONV2)]


def _ours_conv(job, x, w, b, dy):
    s, p = (1, 1), (0, 0)
    if job == "fwd":
        out = np.empty_like(dy)
        return (lambda: C.conv2d_forward(x, w, b, s, p, out)), (lambda: out)
    if job == "dW":
        dw, db = np.zeros_like(w), np.zeros_like(b)

        def run():
            dw[...] = 0
            db[...] = 0
            C.conv2d_backward_weight(x, dy, s, p, dw, db)
        return run, (lambda: dw)
    dx = np.empty_like(x)
    return (lambda: C.conv2d_backward_input(dy, w, s, p, dx)), (lambda: dx)


def _torch_conv(torch, job, x, w, b, dy):
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    back = torch.ops.aten.convolution_backward
    if job == "fwd":
        return lambda: torch.nn.functional.conv2d(tx, tw, tb)
    mask = [False, True, True] if job == "dW" else [True, False, False]
    pick = 1 if job == "dW" else 0
    return lambda: back(tdy, tx, tw, [w.shape[0]], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                        mask)[pick]


@pytest.mark.parametrize("layer,job,shapes", CONV_JOBS, ids=[f"{a}-{b}" for a, b, _ in CONV_JOBS])
def test_conv_nnumba(benchmark, record, layer, job, shapes):
    x, w, b, dy = _conv_data(shapes)
    record(f"{layer}-{job}-b{N}", "nnumba")
    run, result = _ours_conv(job, x, w, b, dy)
    run()  # compile and fault in the buffers outside the timing
    benchmark.pedantic(run, rounds=30, iterations=5, warmup_rounds=2)
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["gflops"] = _flops(shapes) / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("layer,job,shapes", CONV_JOBS, ids=[f"{a}-{b}" for a, b, _ in CONV_JOBS])
def test_conv_torch(benchmark, record, torch_threads, layer, job, shapes):
    torch = torch_threads
    x, w, b, dy = _conv_data(shapes)
    record(f"{layer}-{job}-b{N}", "torch")
    fn = _torch_conv(torch, job, x, w, b, dy)
    run, result = _ours_conv(job, x, w, b, dy)
    run()
    expect = fn().numpy()
    # the same function on both sides, or the timing compares nothing
    assert np.abs(result() - expect).max() <= 1e-4 * np.abs(expect).max()
    benchmark.pedantic(fn, rounds=30, iterations=5, warmup_rounds=2)
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["gflops"] = _flops(shapes) / benchmark.stats.stats.median / 1e9


POOL_JOBS = [(name, fused, job) for name in POOLS for fused in (False, True)
             for job in ("fwd", "bwd")]
POOL_IDS = [f"{'relu+' if f else ''}{n}-{j}" for n, f, j in POOL_JOBS]


def _pool_data(name, seed=1):
    shape, k = POOLS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    ho = shape[2] // k
    dy = rng.standard_normal(shape[:2] + (ho, ho), dtype=np.float32)
    return x, k, dy


def _ours_pool(x, k, dy, fused, job):
    out = np.empty_like(dy)
    am = np.empty(dy.shape, np.int32)
    dx = np.empty_like(x)
    fwd = P.relu_maxpool2d_forward if fused else P.maxpool2d_forward
    fwd(x, k, k, out, am)
    if job == "fwd":
        return (lambda: fwd(x, k, k, out, am)), (lambda: out)
    if fused:
        return (lambda: P.relu_maxpool2d_backward(dy, am, out, dx)), (lambda: dx)
    return (lambda: P.maxpool2d_backward(dy, am, dx)), (lambda: dx)


def _torch_pool(torch, x, k, dy, fused, job):
    F = torch.nn.functional
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
    if job == "fwd":
        if fused:
            return lambda: F.max_pool2d(F.relu(tx), k)
        return lambda: F.max_pool2d(tx, k)
    src = F.relu(tx) if fused else tx
    _, idx = F.max_pool2d_with_indices(src, k)
    pool_back = torch.ops.aten.max_pool2d_with_indices_backward

    def back():
        g = pool_back(tdy, src, [k, k], [k, k], [0, 0], [1, 1], False, idx)
        return torch.ops.aten.threshold_backward(g, src, 0) if fused else g
    return back


@pytest.mark.parametrize("name,fused,job", POOL_JOBS, ids=POOL_IDS)
def test_pool_nnumba(benchmark, record, name, fused, job):
    x, k, dy = _pool_data(name)
    record(f"{'relu+' if fused else ''}max{name}-{job}-b{N}", "nnumba")
    run, _ = _ours_pool(x, k, dy, fused, job)
    run()
    benchmark.pedantic(run, rounds=30, iterations=5, warmup_rounds=2)


@pytest.mark.parametrize("name,fused,job", POOL_JOBS, ids=POOL_IDS)
def test_pool_torch(benchmark, record, torch_threads, name, fused, job):
    torch = torch_threads
    x, k, dy = _pool_data(name)
    record(f"{'relu+' if fused else ''}max{name}-{job}-b{N}", "torch")
    fn = _torch_pool(torch, x, k, dy, fused, job)
    run, result = _ours_pool(x, k, dy, fused, job)
    run()
    assert np.array_equal(result(), fn().numpy())
    benchmark.pedantic(fn, rounds=30, iterations=5, warmup_rounds=2)
