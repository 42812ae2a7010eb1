"""One table of argument factories for the kernel sets: for every kernel of
:data:`nnumba.kernels.KERNELS`, example arguments at a size and dtype.

From this table alone:
- :func:`twin` runs a kernel of any device's set beside the CPU set's
  (:func:`nnumba.testing.check_kernels`, the device kit);
- :func:`run_twin` runs a kernel of the CPU set and of the CUDA set on the same
  random inputs and returns their outputs side by side (tests/test_cuda_sim.py
  in the simulator at "tiny" sizes; tests/test_cuda_gpu.py and
  benchmarks/gpu_check.py on a GPU at "real" sizes, the lecture CNN's);
- :func:`cuda_signatures` lists the specialisations of every raw CUDA kernel that
  these calls launch, which tests/test_cuda_ptx.py compiles for a real GPU.

Inputs are random, never zeros (zeros hide unwritten outputs); every output the
CUDA kernel writes fully is poisoned with NaN before it runs, so an element it
forgot fails the comparison.  Outputs a kernel adds into start from the same
random values on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import conv2d_output_array_shape, conv2d_output_shape, pool2d_output_shape

FLOATS = (np.float32, np.float64)


@dataclass
class Call:
    label: str
    args: list                                 # host arrays and scalars, in the kernel's order
    outputs: tuple = ()                        # indices of the args the kernel writes fully
    accumulates: tuple = ()                    # indices of the args it adds into
    keywords: dict = field(default_factory=dict)
    result: bool = False                       # compare the return values too


def _rand(rng, shape, dtype):
    return (rng.uniform(-1, 1, shape) + 0.01).astype(dtype)


_empty = np.zeros  # an output (poisoned with NaN on the CUDA side)


# ---- the table: kernel -> (rng, size, dtype) -> [Call] ----------------------------------

MATMUL = {"tiny": [(33, 17, 40), (5, 3, 7), (1, 9, 130)],
          "real": [(100, 784, 256), (256, 100, 256), (1000, 1000, 1000), (129, 7, 300)]}
ROWS = {"tiny": (6, 10), "real": (100, 1000)}
FLAT = {"tiny": 300, "real": 1_000_000}
CONV = {"tiny": [((2, 2, 7, 8), (3, 2, 3, 3), (1, 1), (0, 0)),
                 ((2, 3, 8, 7), (2, 3, 3, 2), (2, 1), (1, 2)),
                 ((1, 1, 9, 9), (2, 1, 5, 5), (2, 2), (2, 2)),
                 ((2, 3, 1, 11), (4, 3, 1, 3), (1, 2), (0, 1))],     # a Conv1d's view
        "real": [((100, 1, 28, 28), (32, 1, 5, 5), (1, 1), (0, 0)),
                 ((100, 32, 8, 8), (64, 32, 5, 5), (1, 1), (0, 0)),
                 ((64, 3, 32, 32), (16, 3, 3, 3), (2, 2), (1, 1))]}
POOL = {"tiny": [((2, 2, 6, 7), (2, 2), (2, 2)), ((1, 2, 7, 7), (3, 3), (2, 2)),
                 ((2, 1, 5, 8), (2, 3), (1, 2)), ((2, 3, 1, 9), (1, 3), (1, 2))],
        "real": [((100, 32, 24, 24), (3, 3), (3, 3)), ((100, 64, 4, 4), (2, 2), (2, 2)),
                 ((32, 64, 27, 27), (3, 3), (2, 2))]}
# x, w, stride, pad, pool kernel, pool stride; the first of each size takes the CPU's
# one-pass path
CONV_POOL = {"tiny": [((2, 1, 10, 10), (4, 1, 3, 3), (1, 1), (0, 0), (2, 2), (2, 2)),
                      ((2, 3, 8, 7), (3, 3, 3, 2), (2, 1), (1, 2), (2, 2), (2, 2)),
                      ((1, 2, 9, 9), (4, 2, 2, 2), (1, 1), (1, 1), (3, 3), (2, 2))],
             "real": [((100, 1, 28, 28), (32, 1, 5, 5), (1, 1), (0, 0), (3, 3), (3, 3)),
                      ((100, 32, 8, 8), (64, 32, 5, 5), (1, 1), (0, 0), (2, 2), (2, 2))]}
ADAPTIVE = {"tiny": [((2, 2, 7, 5), (3, 2)), ((1, 2, 3, 2), (4, 4))],
            "real": [((100, 256, 13, 13), (6, 6)), ((10, 64, 9, 7), (4, 3))]}


def _matmul(rng, size, dtype):
    calls = []
    for m, k, n in MATMUL[size]:
        for ta in (False, True):
            for tb in (False, True):
                a = _rand(rng, (k, m) if ta else (m, k), dtype)
                b = _rand(rng, (n, k) if tb else (k, n), dtype)
                calls.append(Call(f"{m}x{k}x{n} ta={ta:d} tb={tb:d}",  # by name, as layers do
                                  [a, b, _empty((m, n), dtype)], outputs=(2,),
                                  keywords={"trans_a": ta, "trans_b": tb}))
        calls.append(Call(f"{m}x{k}x{n} accumulate",
                          [_rand(rng, (k, m), dtype), _rand(rng, (k, n), dtype),
                           _rand(rng, (m, n), dtype)], accumulates=(2,),
                          keywords={"trans_a": True, "accumulate": True}))
    return calls


def _bias(into):
    def make(rng, size, dtype):
        n, d = ROWS[size]
        return [Call("", [_rand(rng, (n, d), dtype), _rand(rng, d, dtype)], accumulates=(into,))]
    return make


def _activation_input(rng, size, dtype):
    x = (rng.standard_normal(FLAT[size]) * 4).astype(dtype)
    x[:5] = [0, 30, -30, 0.5, 1e-8]  # the kink, the saturated ends, near zero
    return x


def _forward(rng, size, dtype):
    x = _activation_input(rng, size, dtype)
    return [Call("", [x, _empty(x.shape, dtype)], outputs=(1,))]


def _backward(forward):
    def make(rng, size, dtype):
        from . import cpu
        x = _activation_input(rng, size, dtype)
        y = np.empty_like(x)
        getattr(cpu, forward)(x, y)
        return [Call("", [y, _rand(rng, x.shape, dtype), _empty(x.shape, dtype)], outputs=(2,))]
    return make


def _conv(job):
    def make(rng, size, dtype):
        calls = []
        for xs, ws, stride, pad in CONV[size]:
            x, w, b = _rand(rng, xs, dtype), _rand(rng, ws, dtype), _rand(rng, ws[0], dtype)
            out = conv2d_output_array_shape(xs, ws, stride, pad)
            tag = f"x{xs} w{ws} s{stride} p{pad}"
            keep = {"keep": None}  # by name, as Conv2d passes it (None: nothing kept)
            if job == "forward":
                calls.append(Call(tag, [x, w, b, stride, pad, _empty(out, dtype)], outputs=(5,),
                                  keywords=keep))
                calls.append(Call(f"{tag} no bias", [x, w, None, stride, pad, _empty(out, dtype)],
                                  outputs=(5,), keywords=keep))
            elif job == "input":
                calls.append(Call(tag, [_rand(rng, out, dtype), w, stride, pad,
                                        _empty(xs, dtype)], outputs=(4,), keywords=keep))
            else:
                calls.append(Call(tag, [x, _rand(rng, out, dtype), stride, pad,
                                        _rand(rng, ws, dtype), _rand(rng, ws[0], dtype)],
                                  accumulates=(4, 5), keywords=keep))
        return calls
    return make


def _pool(job, relu=False):
    def make(rng, size, dtype):
        from . import cpu
        calls = []
        for xs, kernel, stride in POOL[size]:
            x = _rand(rng, xs, dtype)
            x.reshape(-1)[::7] = 0  # ties, and ReLU's zero
            out = xs[:2] + pool2d_output_shape(xs[2], xs[3], kernel, stride)
            tag = f"x{xs} k{kernel} s{stride}"
            dy = _rand(rng, out, dtype)
            if job == "avg-forward":
                calls.append(Call(tag, [x, kernel, stride, _empty(out, dtype)], outputs=(3,)))
            elif job == "avg-backward":
                calls.append(Call(tag, [dy, kernel, stride, _empty(xs, dtype)], outputs=(3,)))
            else:
                for index in (np.int32, np.int64):
                    label = f"{tag} argmax {np.dtype(index).name}"
                    if job == "max-forward":
                        calls.append(Call(label, [x, kernel, stride, _empty(out, dtype),
                                                  _empty(out, index)], outputs=(3, 4)))
                        continue
                    y, am = np.empty(out, dtype), np.empty(out, index)
                    (cpu.relu_maxpool2d_forward if relu else cpu.maxpool2d_forward)(
                        x, kernel, stride, y, am)
                    args = [dy, am, y, _empty(xs, dtype)] if relu else [dy, am, _empty(xs, dtype)]
                    calls.append(Call(label, args, outputs=(len(args) - 1,)))
        return calls
    return make


def _conv_pool(job):
    def make(rng, size, dtype):
        from . import cpu
        calls = []
        for xs, ws, stride, pad, pk, ps in CONV_POOL[size]:
            x, w, b = _rand(rng, xs, dtype), _rand(rng, ws, dtype), _rand(rng, ws[0], dtype)
            conv = conv2d_output_shape(xs[2], xs[3], ws[2:], stride, pad)
            out = (xs[0], ws[0]) + pool2d_output_shape(conv[0], conv[1], pk, ps)
            tag = f"x{xs} w{ws} s{stride} p{pad} pool {pk}/{ps}"
            if job == "forward":
                calls.append(Call(tag, [x, w, b, stride, pad, pk, ps, _empty(out, dtype),
                                        _empty(out, np.int32)], outputs=(7, 8)))
                continue
            y, am = np.empty(out, dtype), np.empty(out, np.int32)
            cpu.conv2d_relu_maxpool2d_forward(x, w, b, stride, pad, pk, ps, y, am)
            dy = _rand(rng, out, dtype)
            calls.append(Call(tag, [x, w, dy, am, y, stride, pad, _rand(rng, ws, dtype),
                                    _rand(rng, ws[0], dtype), _empty(xs, dtype)],
                              outputs=(9,), accumulates=(7, 8)))
            calls.append(Call(f"{tag} weight only", [x, w, dy, am, y, stride, pad,
                                                     _rand(rng, ws, dtype), None, None],
                              accumulates=(7,)))
        return calls
    return make


def _adaptive(job):
    def make(rng, size, dtype):
        calls = []
        for xs, (ho, wo) in ADAPTIVE[size]:
            out = xs[:2] + (ho, wo)
            src, dst = (xs, out) if job == "forward" else (out, xs)
            calls.append(Call(f"{xs}->{(ho, wo)}", [_rand(rng, src, dtype), _empty(dst, dtype)],
                              outputs=(1,)))
        return calls
    return make


def _loss(name):
    def make(rng, size, dtype):
        n, c = ROWS[size][0], 10
        scale = dtype(1.0 / n)
        if name == "softmax_cross_entropy":
            z = (rng.standard_normal((n, c)) * 5).astype(dtype)
            z[0, 0] = 80  # an extreme logit: the stable form must hold
            labels = rng.integers(0, c, n).astype(np.int64)
            return [Call("", [z, labels, scale, _empty(n, dtype), _empty(z.shape, dtype)],
                         outputs=(3, 4))]
        if name == "squared_error":
            return [Call("", [_rand(rng, (n, c), dtype), _rand(rng, (n, c), dtype), scale,
                              _empty(n, dtype), _empty((n, c), dtype)], outputs=(3, 4))]
        yhat = (rng.standard_normal(n) * 3).astype(dtype)
        pm = np.where(rng.random(n) < 0.5, -1, 1).astype(dtype)
        if name == "logistic":
            return [Call("", [yhat, pm, scale, _empty(n, dtype), _empty(n, dtype)],
                         outputs=(3, 4))]
        return [Call(f"margin {m}", [yhat, pm, dtype(m), scale, _empty(n, dtype),
                                     _empty(n, dtype)], outputs=(4, 5)) for m in (1, 0)]
    return make


def _arrays(name):
    def make(rng, size, dtype):
        n, f = ROWS[size]
        if name == "fill":
            return [Call("", [_empty(FLAT[size], dtype), dtype(2.5)], outputs=(0,))]
        if name == "scale":
            return [Call("", [_rand(rng, FLAT[size], dtype), dtype(3.0), _empty(FLAT[size], dtype)],
                         outputs=(2,))]
        if name == "multiply":
            return [Call("", [_rand(rng, FLAT[size], dtype) for _ in range(3)], outputs=(2,))]
        if name == "accumulate":
            return [Call("", [_rand(rng, FLAT[size], dtype) for _ in range(2)], accumulates=(0,))]
        if name == "gather_rows":
            idx = rng.permutation(n * 3)[:n].astype(np.int64)
            return [Call("", [_rand(rng, (n * 3, f), dtype), idx, _empty((n, f), dtype)],
                         outputs=(2,))]
        x = _rand(rng, FLAT[size], dtype)
        bad = x.copy()
        bad[[3, 17, 101]] = [np.nan, np.inf, -np.inf]
        return [Call("finite", [x], result=True), Call("nan and inf", [bad], result=True)]
    return make


def _sgd(rng, size, dtype):
    n = FLAT[size]
    # (at momentum 0 the velocity is left as it is: torch keeps no buffer then)
    return [Call(what, [_rand(rng, n, dtype), _rand(rng, n, dtype), _rand(rng, n, dtype),
                        dtype(0.05), dtype(momentum), dtype(1e-3)], accumulates=(0, 2))
            for what, momentum in (("", 0.9), ("momentum 0", 0.0))]


CASES = {
    "matmul": _matmul,
    "add_bias": _bias(0), "accumulate_bias_grad": _bias(1), "add_bias_relu": _bias(0),
    "relu_backward_bias_grad": lambda rng, size, dtype: [Call(
        "", [np.maximum(_rand(rng, ROWS[size], dtype), 0), _rand(rng, ROWS[size], dtype),
             _empty(ROWS[size], dtype), _rand(rng, ROWS[size][1], dtype)],
        outputs=(2,), accumulates=(3,))],
    **{f"{unit}_forward": _forward for unit in ("relu", "tanh", "sigmoid", "threshold")},
    **{f"{unit}_backward": _backward(f"{unit}_forward") for unit in ("relu", "tanh", "sigmoid")},
    "conv2d_forward": _conv("forward"), "conv2d_backward_input": _conv("input"),
    "conv2d_backward_weight": _conv("weight"),
    "maxpool2d_forward": _pool("max-forward"), "maxpool2d_backward": _pool("max-backward"),
    "relu_maxpool2d_forward": _pool("max-forward"),
    "relu_maxpool2d_backward": _pool("max-backward", relu=True),
    "avgpool2d_forward": _pool("avg-forward"), "avgpool2d_backward": _pool("avg-backward"),
    "conv2d_relu_maxpool2d_forward": _conv_pool("forward"),
    "conv2d_relu_maxpool2d_backward": _conv_pool("backward"),
    "adaptive_avgpool2d_forward": _adaptive("forward"),
    "adaptive_avgpool2d_backward": _adaptive("backward"),
    **{name: _loss(name) for name in ("softmax_cross_entropy", "squared_error", "logistic",
                                      "hinge")},
    **{name: _arrays(name) for name in ("fill", "scale", "multiply", "accumulate",
                                        "gather_rows", "all_finite")},
    "sgd_step": _sgd,
}


def calls(name: str, size: str = "tiny", dtype=np.float32, seed: int = 0) -> list[Call]:
    """The example calls of kernel ``name``."""
    return CASES[name](np.random.default_rng(seed), size, np.dtype(dtype).type)


def _poisoned(a):
    return np.full(a.shape, np.nan if a.dtype.kind == "f" else -7, a.dtype)


def twin(name: str, kernels, to_device, to_host, size: str = "tiny",
         dtype=np.float32) -> dict:
    """{label: (result, CPU result)} for every output of every example call of kernel
    ``name``: ``kernels``' (a device's set, its arrays moved with ``to_device`` and
    back with ``to_host``) beside the CPU set's, on the same random inputs; and every
    array it only reads, beside the input it was given (a kernel must not write it)."""
    from . import cpu
    results = {}
    for call in calls(name, size, dtype):
        host = [a.copy() if isinstance(a, np.ndarray) else a for a in call.args]
        device = [to_device(_poisoned(a) if i in call.outputs else a)
                  if isinstance(a, np.ndarray) else a for i, a in enumerate(call.args)]
        want = getattr(cpu, name)(*host, **call.keywords)
        got = getattr(kernels, name)(*device, **call.keywords)
        tag = f"{name} {call.label}".strip()
        for i in call.outputs + call.accumulates:
            results[f"{tag} arg{i}"] = (np.asarray(to_host(device[i])), host[i])
        for i, a in enumerate(call.args):  # what it only reads: as it was
            if isinstance(a, np.ndarray) and i not in call.outputs + call.accumulates:
                results[f"{tag} arg{i} (read only)"] = (np.asarray(to_host(device[i])), host[i])
        if call.result:
            results[f"{tag} result"] = (np.array([got]), np.array([want]))
    return results


def run_twin(name: str, size: str = "tiny", dtype=np.float32) -> dict:
    """{label: (cuda result, cpu result)} for every output of every example call."""
    from numba import cuda

    from . import cuda as gpu
    return twin(name, gpu, cuda.to_device, lambda a: a.copy_to_host(), size, dtype)


def cuda_signatures() -> dict:
    """{raw CUDA kernel: {argument types}} that the example calls launch, float32
    and float64 (no GPU needed: launches are only recorded)."""
    from . import cuda as gpu
    from .cuda._grid import recording
    from .. import kernels
    found = {}
    with recording() as log:
        for name in kernels.KERNELS:
            for dtype in FLOATS:
                for call in calls(name, "tiny", dtype):
                    getattr(gpu, name)(*call.args, **call.keywords)
    for kernel, types in log:
        found.setdefault(kernel, set()).add(types)
    return found


def mismatch(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| over max |want| (of its finite values): 0 when equal, infinities
    in the same places included; inf for a shape mismatch, a NaN where the reference
    has none (an unwritten element), or an infinity where it has another value."""
    if got.shape != want.shape:
        return float("inf")
    if want.dtype.kind != "f":
        return 0.0 if np.array_equal(got, want) else float("inf")
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return float("inf")
    differ = ~np.isnan(want) & (got != want)
    g, w = got[differ].astype(np.float64), want[differ].astype(np.float64)
    if not (np.isfinite(g).all() and np.isfinite(w).all()):
        return float("inf")
    finite = want[np.isfinite(want)]
    scale = max(float(np.max(np.abs(finite), initial=0.0)), np.finfo(want.dtype).tiny)
    return float(np.max(np.abs(g - w), initial=0.0) / scale)
