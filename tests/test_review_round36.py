"""Review 36 of the sitting's last changes (77e4461..3f4e21b): matmul's overlap test,
the device arrays' spans, the CUDA bias kernels, the lecture experiments' text."""
import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest



def test_matmul_accepts_disjoint_strided_views_of_one_buffer():
    """check_apart uses np.may_share_memory, which compares memory *bounds* only: two
    disjoint strided views of one buffer (a batch-first RNN's states hs[:, t-1] ->
    hs[:, t], or the two column halves of one (N, 2D) buffer) are refused with 'the
    output overlaps an input in memory', which is false.  Before the check these
    computed correctly (gemm's numpy fallback for a non-contiguous out)."""
    from nnumba.kernels import cpu as k
    rng = np.random.default_rng(0)
    hs = rng.standard_normal((4, 3, 5))              # (N, T, H), batch first
    w = rng.standard_normal((5, 5))
    assert not np.shares_memory(hs[:, 0], hs[:, 1])   # exact: they share nothing
    want = hs[:, 0] @ w.T
    k.matmul(hs[:, 0], w, hs[:, 1], trans_b=True)
    np.testing.assert_allclose(hs[:, 1], want, rtol=1e-12)
    buf = rng.standard_normal((4, 6))
    want = buf[:, :3] @ np.diag([1.0, 2.0, 3.0])
    k.matmul(buf[:, :3], np.diag([1.0, 2.0, 3.0]), buf[:, 3:])
    np.testing.assert_allclose(buf[:, 3:], want, rtol=1e-12)


def test_device_may_share_memory_sees_overlap_of_a_strided_device_array():
    """For CUDA arrays (the objects check_apart gets on a GPU) may_share_memory takes
    each array's span as [data, data + nbytes): a strided view (out = buf[:, :2], which
    the CUDA matmul indexes through its strides) reaches past that, so an input that
    overlaps its last rows is not seen and matmul writes into its own input."""
    from nnumba.device import may_share_memory

    class DeviceLike:  # what a numba DeviceNDArray / CuPy array exposes
        def __init__(self, view):
            self.shape, self.strides = view.shape, view.strides
            self.nbytes, self.dtype = view.nbytes, view.dtype
            self.__cuda_array_interface__ = {
                "shape": view.shape, "strides": view.strides, "typestr": view.dtype.str,
                "data": (view.__array_interface__["data"][0], False), "version": 3}

    buf = np.zeros((4, 3))
    out, a = buf[:, :2], buf.reshape(-1)[8:10]     # a holds buf[2, 2] and buf[3, 0]
    assert np.shares_memory(out, a)                 # buf[3, 0] is in both
    assert may_share_memory(DeviceLike(out), DeviceLike(a))


_SIM = textwrap.dedent("""
    import numpy as np
    from numba import cuda
    from nnumba.kernels import cuda as k
    d = cuda.to_device
    cases = {
        "add_bias, a bias too short": lambda: k.add_bias(d(np.zeros((4, 3))), d(np.ones(2))),
        "add_bias, (N, C, L)": lambda: k.add_bias(d(np.zeros((2, 3, 4))), d(np.ones(4))),
        "accumulate_bias_grad, db too long": lambda: k.accumulate_bias_grad(
            d(np.ones((4, 3))), d(np.zeros(5))),
        "accumulate_bias_grad, db too short": lambda: k.accumulate_bias_grad(
            d(np.ones((4, 3))), d(np.zeros(2))),
        "relu_backward_bias_grad, dl_dy narrower": lambda: k.relu_backward_bias_grad(
            d(np.ones((4, 3))), d(np.ones((4, 2))), d(np.zeros((4, 3))), d(np.zeros(3))),
    }
    for name, call in cases.items():
        try:
            call()
            print(name, "|| no error")
        except Exception as exc:
            print(name, "||", type(exc).__name__, str(exc).splitlines()[0][:120])
""")


def test_cuda_bias_kernels_refuse_the_shapes_the_cpu_set_refuses():
    """The CPU bias kernels now refuse y that is not (N, D) and a bias of another width;
    the CUDA set has no check: in the simulator a short bias is an IndexError from a
    thread (on a GPU: read or written past the end, silently), (N, C, L) an unpacking
    ValueError, and a db of 5 for 3 columns passes silently."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _SIM], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [l for l in run.stdout.splitlines() if "||" in l]
    assert len(lines) == 5, run.stdout
    bad = [l for l in lines
           if not (l.split("|| ")[1].startswith(("ShapeError", "ValueError"))
                   and ("bias" in l.split("|| ")[1] or "shape" in l.split("|| ")[1]))]
    assert not bad, "\n".join(bad)


def test_cpu_bias_kernels_name_the_kernels_and_what_they_take():
    """The CPU checks run inside the compiled kernels (no cost a step), so their
    message is one constant: it names the kernels and their arguments' shapes."""
    from nnumba.kernels import cpu as k
    with pytest.raises(ValueError, match=r"add_bias.*\(N, D\) arrays and a \(D,\) bias"):
        k.add_bias(np.zeros((4, 3)), np.ones(2))
    with pytest.raises(ValueError, match="accumulate_bias_grad"):
        k.accumulate_bias_grad(np.zeros((4, 3)), np.ones(5))


def test_cnn_mnist_fast_with_data_dir_does_not_call_its_subset_the_full_mnist(monkeypatch):
    """With --data-dir and --fast, the run trains on the first 2,000 images of MNIST,
    yet its 'here, mnist' line says 'the full MNIST given with --data-dir: the
    lecture's data' (the same kind of claim the mnist-5k line was fixed for).  The
    full MNIST is stood in for by the embedded subset renamed (no download)."""
    from nnumba.data import load_dataset
    from nnumba.experiments import cnn
    monkeypatch.setattr(cnn, "_load", lambda datasets, data_dir, notes: [
        dataclasses.replace(load_dataset("mnist-5k"), name="mnist")])
    monkeypatch.setitem(cnn.FAST_SIZES, "train", 200)
    monkeypatch.setitem(cnn.FAST_SIZES, "test", 100)
    result = cnn.run(fast=True, data_dir="unused", datasets=(), epochs=1)
    trained = result.numbers["runs"]["mnist"]["train"]
    assert trained == 200
    line = next(l for l in result.table.splitlines() if l.startswith("here, mnist"))
    assert "the full MNIST" not in line, line
