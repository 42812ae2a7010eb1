"""Each CUDA kernel against its CPU twin on the same random inputs.

Used by tests/test_cuda_sim.py (tiny sizes, CUDA simulator), tests/test_cuda_gpu.py
and benchmarks/gpu_check.py (realistic sizes, a real GPU). ``run_case(name,
size)`` returns ``{output: (cuda_result, cpu_result)}`` as host arrays; ``CASES``
lists the names. Inputs are random, never zeros (zeros hide unwritten outputs),
and every device output is poisoned with NaN before the kernel runs, so an
element the kernel forgot to write fails the comparison.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ..cpu import activations as cpu_act
from ..cpu import adaptive_pool as cpu_apool
from ..cpu import conv as cpu_conv
from ..cpu import dense as cpu_dense
from ..cpu import losses as cpu_losses
from ..cpu import optim as cpu_optim
from ..cpu import pool as cpu_pool
from . import activations, adaptive_pool, arrays, conv, dense, losses, optim, pool

# size "tiny": simulator-friendly (<= 32 x 32); "real": the lecture CNN's shapes.
CONV_SHAPES = {
    "tiny": [((2, 2, 7, 8), (3, 2, 3, 3), (1, 1), (0, 0)),
             ((2, 3, 8, 7), (2, 3, 3, 2), (2, 1), (1, 2)),
             ((1, 1, 9, 9), (2, 1, 5, 5), (2, 2), (2, 2))],
    "real": [((100, 1, 28, 28), (32, 1, 5, 5), (1, 1), (0, 0)),
             ((100, 32, 8, 8), (64, 32, 5, 5), (1, 1), (0, 0)),
             ((64, 3, 32, 32), (16, 3, 3, 3), (2, 2), (1, 1))],
}
POOL_SHAPES = {
    "tiny": [((2, 2, 6, 7), (2, 2), (2, 2)), ((1, 2, 7, 7), (3, 3), (2, 2)),
             ((2, 1, 5, 8), (2, 3), (1, 2))],
    "real": [((100, 32, 24, 24), (3, 3), (3, 3)), ((100, 64, 4, 4), (2, 2), (2, 2)),
             ((32, 64, 27, 27), (3, 3), (2, 2))],
}
MATMUL_SHAPES = {"tiny": [(33, 17, 40), (5, 3, 7), (1, 9, 130)],
                 "real": [(100, 784, 256), (256, 100, 256), (1000, 1000, 1000), (129, 7, 300)]}
ROWS = {"tiny": (6, 10), "real": (100, 1000)}
FLAT = {"tiny": 300, "real": 1_000_000}


def _rng(seed):
    return np.random.default_rng(seed)


def _rand(rng, shape, dtype):
    return rng.uniform(-1, 1, shape).astype(dtype) + dtype(0.01)


def _dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def _poisoned(shape, dtype):
    a = np.full(shape, np.nan if np.dtype(dtype).kind == "f" else -7, dtype)
    return cuda.to_device(a)


def _host(d):
    return d.copy_to_host()


# ---- the cases: each returns {name: (cuda_result, cpu_result)} ------------

def case_matmul(size, dtype, seed=0):
    rng = _rng(seed)
    out = {}
    for m, k, n in MATMUL_SHAPES[size]:
        for ta, tb in ((False, False), (False, True), (True, False), (True, True)):
            a = _rand(rng, (k, m) if ta else (m, k), dtype)
            b = _rand(rng, (n, k) if tb else (k, n), dtype)
            ref = (a.T if ta else a) @ (b.T if tb else b)
            d_out = _poisoned((m, n), dtype)
            dense.matmul(_dev(a), _dev(b), d_out, ta, tb)
            out[f"{m}x{k}x{n} ta={ta:d} tb={tb:d}"] = (_host(d_out), ref)
        base = _rand(rng, (m, n), dtype)
        a, b = _rand(rng, (k, m), dtype), _rand(rng, (k, n), dtype)
        d_out = _dev(base)
        dense.matmul(_dev(a), _dev(b), d_out, True, False, accumulate=True)
        out[f"{m}x{k}x{n} accumulate"] = (_host(d_out), base + a.T @ b)
    return out


def case_dense(size, dtype, seed=1):
    rng = _rng(seed)
    n, d = ROWS[size]
    y, b = _rand(rng, (n, d), dtype), _rand(rng, d, dtype)
    d_y = _dev(y)
    dense.add_bias(d_y, _dev(b))
    ref = y.copy()
    cpu_dense.add_bias(ref, b)
    db0 = _rand(rng, d, dtype)
    d_db = _dev(db0)
    dense.accumulate_bias_grad(_dev(y), d_db)
    db_ref = db0.copy()
    cpu_dense.accumulate_bias_grad(y, db_ref)
    dst, src = _rand(rng, n * d, dtype), _rand(rng, n * d, dtype)
    d_dst = _dev(dst)
    dense.accumulate(d_dst, _dev(src))
    acc_ref = dst.copy()
    cpu_dense.accumulate(acc_ref, src)
    return {"add_bias": (_host(d_y), ref), "accumulate_bias_grad": (_host(d_db), db_ref),
            "accumulate": (_host(d_dst), acc_ref)}


def case_activations(size, dtype, seed=2):
    rng = _rng(seed)
    x = (rng.standard_normal(FLAT[size]) * 4).astype(dtype)
    x[:4] = [0, 30, -30, 0.5]  # the kink and the saturated ends
    g = _rand(rng, x.shape, dtype)
    out = {}
    for name in ("relu", "tanh", "sigmoid", "threshold"):
        d_y = _poisoned(x.shape, dtype)
        getattr(activations, f"{name}_forward")(_dev(x), d_y)
        y = np.empty_like(x)
        getattr(cpu_act, f"{name}_forward")(x, y)
        out[f"{name}_forward"] = (_host(d_y), y)
        if name == "threshold":
            continue
        d_dx = _poisoned(x.shape, dtype)
        getattr(activations, f"{name}_backward")(_dev(y), _dev(g), d_dx)
        dx = np.empty_like(x)
        getattr(cpu_act, f"{name}_backward")(y, g, dx)
        out[f"{name}_backward"] = (_host(d_dx), dx)
    return out


def case_conv(size, dtype, seed=3):
    rng = _rng(seed)
    out = {}
    for xs, ws, stride, pad in CONV_SHAPES[size]:
        x, w, b = _rand(rng, xs, dtype), _rand(rng, ws, dtype), _rand(rng, ws[0], dtype)
        ho, wo = cpu_conv.conv2d_output_shape(xs[2], xs[3], ws[2:], stride, pad)
        y = np.empty((xs[0], ws[0], ho, wo), dtype)
        cpu_conv.conv2d_forward(x, w, b, stride, pad, y)
        d_y = _poisoned(y.shape, dtype)
        conv.conv2d_forward(_dev(x), _dev(w), _dev(b), stride, pad, d_y)
        tag = f"x{xs} w{ws} s{stride} p{pad}"
        out[f"forward {tag}"] = (_host(d_y), y)
        y_nb = np.empty_like(y)
        cpu_conv.conv2d_forward(x, w, None, stride, pad, y_nb)
        d_y = _poisoned(y.shape, dtype)
        conv.conv2d_forward(_dev(x), _dev(w), None, stride, pad, d_y)
        out[f"forward no bias {tag}"] = (_host(d_y), y_nb)
        dy = _rand(rng, y.shape, dtype)
        dx = np.empty_like(x)
        cpu_conv.conv2d_backward_input(dy, w, stride, pad, dx)
        d_dx = _poisoned(x.shape, dtype)
        conv.conv2d_backward_input(_dev(dy), _dev(w), stride, pad, d_dx)
        out[f"backward_input {tag}"] = (_host(d_dx), dx)
        dw0, db0 = _rand(rng, ws, dtype), _rand(rng, ws[0], dtype)  # it accumulates
        dw, db = dw0.copy(), db0.copy()
        cpu_conv.conv2d_backward_weight(x, dy, stride, pad, dw, db)
        d_dw, d_db = _dev(dw0), _dev(db0)
        conv.conv2d_backward_weight(_dev(x), _dev(dy), stride, pad, d_dw, d_db)
        out[f"backward_weight {tag}"] = (_host(d_dw), dw)
        out[f"backward_bias {tag}"] = (_host(d_db), db)
    # Conv1d: the height-1 view
    x, w, b = _rand(rng, (2, 3, 11), dtype), _rand(rng, (4, 3, 3), dtype), _rand(rng, 4, dtype)
    y = np.empty((2, 4, 6), dtype)
    cpu_conv.conv1d_forward(x, w, b, 2, 1, y)
    d_y = _poisoned(y.shape, dtype)
    conv.conv1d_forward(_dev(x), _dev(w), _dev(b), 2, 1, d_y)
    out["conv1d forward"] = (_host(d_y), y)
    dy = _rand(rng, y.shape, dtype)
    dx = np.empty_like(x)
    cpu_conv.conv1d_backward_input(dy, w, 2, 1, dx)
    d_dx = _poisoned(x.shape, dtype)
    conv.conv1d_backward_input(_dev(dy), _dev(w), 2, 1, d_dx)
    out["conv1d backward_input"] = (_host(d_dx), dx)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    cpu_conv.conv1d_backward_weight(x, dy, 2, 1, dw, db)
    d_dw, d_db = _dev(np.zeros_like(w)), _dev(np.zeros_like(b))
    conv.conv1d_backward_weight(_dev(x), _dev(dy), 2, 1, d_dw, d_db)
    out["conv1d backward_weight"] = (_host(d_dw), dw)
    out["conv1d backward_bias"] = (_host(d_db), db)
    return out


def case_pool(size, dtype, seed=4):
    rng = _rng(seed)
    out = {}
    for xs, kernel, stride in POOL_SHAPES[size]:
        x = _rand(rng, xs, dtype)
        x.reshape(-1)[::7] = 0  # ties and ReLU's zero
        ho, wo = cpu_pool.pool2d_output_shape(xs[2], xs[3], kernel, stride)
        tag = f"x{xs} k{kernel} s{stride}"
        shape = (xs[0], xs[1], ho, wo)
        dy = _rand(rng, shape, dtype)
        for fused in (False, True):
            fwd = cpu_pool.relu_maxpool2d_forward if fused else cpu_pool.maxpool2d_forward
            y, am = np.empty(shape, dtype), np.empty(shape, np.int32)
            fwd(x, kernel, stride, y, am)
            d_y, d_am = _poisoned(shape, dtype), _poisoned(shape, np.int32)
            (pool.relu_maxpool2d_forward if fused else pool.maxpool2d_forward)(
                _dev(x), kernel, stride, d_y, d_am)
            name = "relu_maxpool" if fused else "maxpool"
            out[f"{name} forward {tag}"] = (_host(d_y), y)
            out[f"{name} argmax {tag}"] = (_host(d_am), am)
            dx = np.empty_like(x)
            d_dx = _poisoned(xs, dtype)
            if fused:
                cpu_pool.relu_maxpool2d_backward(dy, am, y, dx)
                pool.relu_maxpool2d_backward(_dev(dy), _dev(am), _dev(y), d_dx)
            else:
                cpu_pool.maxpool2d_backward(dy, am, dx)
                pool.maxpool2d_backward(_dev(dy), _dev(am), d_dx)
            out[f"{name} backward {tag}"] = (_host(d_dx), dx)
        y = np.empty(shape, dtype)
        cpu_pool.avgpool2d_forward(x, kernel, stride, y)
        d_y = _poisoned(shape, dtype)
        pool.avgpool2d_forward(_dev(x), kernel, stride, d_y)
        out[f"avgpool forward {tag}"] = (_host(d_y), y)
        dx = np.empty_like(x)
        cpu_pool.avgpool2d_backward(dy, kernel, stride, dx)
        d_dx = _poisoned(xs, dtype)
        pool.avgpool2d_backward(_dev(dy), kernel, stride, d_dx)
        out[f"avgpool backward {tag}"] = (_host(d_dx), dx)
    x = _rand(rng, (2, 3, 9), dtype)
    y, am = np.empty((2, 3, 4), dtype), np.empty((2, 3, 4), np.int64)
    cpu_pool.maxpool1d_forward(x, 3, 2, y, am)
    d_y, d_am = _poisoned(y.shape, dtype), _poisoned(y.shape, np.int64)
    pool.maxpool1d_forward(_dev(x), 3, 2, d_y, d_am)
    out["maxpool1d forward"] = (_host(d_y), y)
    out["maxpool1d argmax"] = (_host(d_am), am)
    dy = _rand(rng, y.shape, dtype)
    dx = np.empty_like(x)
    cpu_pool.maxpool1d_backward(dy, am, dx)
    d_dx = _poisoned(x.shape, dtype)
    pool.maxpool1d_backward(_dev(dy), _dev(am), d_dx)
    out["maxpool1d backward"] = (_host(d_dx), dx)
    return out


def case_adaptive_pool(size, dtype, seed=5):
    rng = _rng(seed)
    out = {}
    shapes = [((2, 2, 7, 5), (3, 2)), ((1, 2, 3, 2), (4, 4))] if size == "tiny" else \
        [((100, 256, 13, 13), (6, 6)), ((10, 64, 9, 7), (4, 3))]
    for xs, (ho, wo) in shapes:
        x = _rand(rng, xs, dtype)
        y = np.empty(xs[:2] + (ho, wo), dtype)
        cpu_apool.adaptive_avgpool2d_forward(x, y)
        d_y = _poisoned(y.shape, dtype)
        adaptive_pool.adaptive_avgpool2d_forward(_dev(x), d_y)
        out[f"forward {xs}->{(ho, wo)}"] = (_host(d_y), y)
        dy = _rand(rng, y.shape, dtype)
        dx = np.empty_like(x)
        cpu_apool.adaptive_avgpool2d_backward(dy, dx)
        d_dx = _poisoned(x.shape, dtype)
        adaptive_pool.adaptive_avgpool2d_backward(_dev(dy), d_dx)
        out[f"backward {xs}->{(ho, wo)}"] = (_host(d_dx), dx)
    return out


def case_losses(size, dtype, seed=6):
    rng = _rng(seed)
    n, c = ROWS[size][0], 10
    scale = dtype(1.0 / n)
    out = {}
    z = (rng.standard_normal((n, c)) * 5).astype(dtype)
    z[0, 0] = 80  # an extreme logit: the stable form must hold
    labels = rng.integers(0, c, n).astype(np.int64)
    losses_ref, grad_ref = np.empty(n, dtype), np.empty_like(z)
    cpu_losses.softmax_cross_entropy(z, labels, scale, losses_ref, grad_ref)
    d_l, d_g = _poisoned(n, dtype), _poisoned(z.shape, dtype)
    losses.softmax_cross_entropy(_dev(z), _dev(labels), scale, d_l, d_g)
    out["cross_entropy losses"] = (_host(d_l), losses_ref)
    out["cross_entropy grad"] = (_host(d_g), grad_ref)
    y = _rand(rng, z.shape, dtype)
    losses_ref, grad_ref = np.empty(n, dtype), np.empty_like(z)
    cpu_losses.squared_error(z, y, scale, losses_ref, grad_ref)
    d_l, d_g = _poisoned(n, dtype), _poisoned(z.shape, dtype)
    losses.squared_error(_dev(z), _dev(y), scale, d_l, d_g)
    out["squared_error losses"] = (_host(d_l), losses_ref)
    out["squared_error grad"] = (_host(d_g), grad_ref)
    yhat = (rng.standard_normal(n) * 3).astype(dtype)
    pm = np.where(rng.random(n) < 0.5, -1, 1).astype(dtype)
    for name, extra in (("logistic", ()), ("hinge", (dtype(1),)), ("perceptron", (dtype(0),))):
        kernel = "hinge" if name == "perceptron" else name
        losses_ref, grad_ref = np.empty(n, dtype), np.empty(n, dtype)
        getattr(cpu_losses, kernel)(yhat, pm, *extra, scale, losses_ref, grad_ref)
        d_l, d_g = _poisoned(n, dtype), _poisoned(n, dtype)
        getattr(losses, kernel)(_dev(yhat), _dev(pm), *extra, scale, d_l, d_g)
        out[f"{name} losses"] = (_host(d_l), losses_ref)
        out[f"{name} grad"] = (_host(d_g), grad_ref)
    return out


def case_optim(size, dtype, seed=7):
    rng = _rng(seed)
    n = FLAT[size]
    p, g, v = (_rand(rng, n, dtype) for _ in range(3))
    t = np.dtype(dtype).type
    args = (t(0.05), t(0.9), t(1e-3))
    d_p, d_v = _dev(p), _dev(v)
    optim.sgd_step(d_p, _dev(g), d_v, *args)
    cpu_optim.sgd_step(p, g, v, *args)
    return {"sgd params": (_host(d_p), p), "sgd velocity": (_host(d_v), v)}


def case_arrays(size, dtype, seed=8):
    rng = _rng(seed)
    n, f = ROWS[size]
    src = _rand(rng, (n * 3, f), dtype)
    idx = rng.permutation(n * 3)[:n].astype(np.int64)
    d_dst = _poisoned((n, f), dtype)
    arrays.gather_rows(_dev(src), _dev(idx), d_dst)
    x = _rand(rng, FLAT[size], dtype)
    x[[3, 17, 101]] = [np.nan, np.inf, -np.inf]
    count = cuda.device_array(1, np.int32)
    nonfinite = arrays.count_nonfinite(_dev(x), count)
    d_f = _poisoned(x.shape, dtype)
    arrays.fill(d_f, 2.5)
    a, b = _rand(rng, x.shape, dtype), _rand(rng, x.shape, dtype)
    d_s, d_m = _poisoned(x.shape, dtype), _poisoned(x.shape, dtype)
    arrays.scale(_dev(a), 3.0, d_s)
    arrays.multiply(_dev(a), _dev(b), d_m)
    return {"gather_rows": (_host(d_dst), src[idx]),
            "count_nonfinite": (np.array([nonfinite]), np.array([3])),
            "fill": (_host(d_f), np.full(x.shape, 2.5, dtype)),
            "scale": (_host(d_s), a * dtype(3.0)), "multiply": (_host(d_m), a * b)}


CASES = {"matmul": case_matmul, "dense": case_dense, "activations": case_activations,
         "conv": case_conv, "pool": case_pool, "adaptive_pool": case_adaptive_pool,
         "losses": case_losses, "optim": case_optim, "arrays": case_arrays}


def run_case(name: str, size: str = "tiny", dtype=np.float32) -> dict:
    return CASES[name](size, np.dtype(dtype).type)


def mismatch(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| over max |want|: 0 when equal; inf for a shape mismatch or
    a NaN where the reference has none (an unwritten element)."""
    if got.shape != want.shape:
        return float("inf")
    if want.dtype.kind != "f":
        return 0.0 if np.array_equal(got, want) else float("inf")
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return float("inf")
    ok = ~np.isnan(want)
    scale = max(float(np.max(np.abs(want[ok]), initial=0.0)), np.finfo(want.dtype).tiny)
    return float(np.max(np.abs(got[ok].astype(np.float64) - want[ok]), initial=0.0) / scale)
