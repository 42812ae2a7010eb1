"""Plugin trial 43: an outside author's layers built on self.kernels (a grouped
convolution on channel views, a gated linear unit, a residual block, an Embedding by
gather_rows) ran on the CPU and in the simulator; these are the kernel arguments the
checks let through at e42128f: read-only outputs (a memory map was written into, a
segfault), a bias overlapping its output, shifted overlaps, non-arrays, fill of a
strided view on one device only, gather_rows' dtypes named as shapes."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba.kernels.cpu as k
from nnumba.errors import DTypeError, NnumbaError, ShapeError


def _read_only(a):
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


# 1. matmul writes into a read-only output (docs: outputs checked writable)
def test_matmul_refuses_read_only_output():
    out = _read_only(np.zeros((2, 2)))
    with pytest.raises(ShapeError):
        k.matmul(np.ones((2, 3)), np.ones((3, 2)), out)
    np.testing.assert_array_equal(out, 0)   # and nothing was written


def test_matmul_into_read_only_memmap_does_not_crash(tmp_path):
    # today: the process dies with SIGSEGV (rc -11)
    code = textwrap.dedent(f"""
        import numpy as np
        import nnumba.kernels.cpu as k
        from nnumba.errors import NnumbaError
        np.save(r"{tmp_path}/m.npy", np.zeros((64, 64)))
        m = np.load(r"{tmp_path}/m.npy", mmap_mode="r")
        try:
            k.matmul(np.ones((64, 64)), np.ones((64, 64)), m)
        except NnumbaError:
            print("refused")
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "NUMBA_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0 and "refused" in r.stdout, (r.returncode, r.stderr[-500:])


# 2. read-only outputs of the bias kernels and of scale into a read-only memmap:
#    a bare numba TypingError today
@pytest.mark.parametrize("call", [
    lambda: k.add_bias(_read_only(np.zeros((2, 3))), np.ones(3)),
    lambda: k.add_bias_relu(_read_only(np.zeros((2, 3))), np.ones(3)),
    lambda: k.accumulate_bias_grad(np.ones((2, 3)), _read_only(np.zeros(3))),
    lambda: k.fill(_read_only(np.zeros(3)), 1.0),
], ids=["add_bias", "add_bias_relu", "accumulate_bias_grad", "fill"])
def test_read_only_outputs_are_refused_with_nnumba_error(call):
    with pytest.raises(NnumbaError):
        call()


def test_scale_into_read_only_memmap_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(8))
    m = np.load(tmp_path / "v.npy", mmap_mode="r")   # np.memmap: type(m) is not np.ndarray
    with pytest.raises(NnumbaError):
        k.scale(np.ones(8), 2.0, m)


# 3. add_bias / add_bias_relu: a bias that overlaps the output (y[0]) is neither
#    refused nor computed right (docs: non-elementwise outputs must not overlap inputs)
@pytest.mark.parametrize("relu", [False, True])
def test_bias_overlapping_output_refused_or_right(relu):
    rng = np.random.default_rng(0)
    y0 = rng.normal(size=(4, 6))
    y = y0.copy()
    ref = y0 + y0[0]
    if relu:
        ref = np.maximum(ref, 0)
    try:
        (k.add_bias_relu if relu else k.add_bias)(y, y[0])
    except ShapeError:
        return
    np.testing.assert_allclose(y, ref)


# 4. elementwise kernels: a partial (shifted) overlap of output and input is neither
#    refused nor right; the docs allow writing into "one of their inputs" (the same array)
@pytest.mark.parametrize("kernel", ["scale", "accumulate", "multiply", "sigmoid_forward"])
def test_elementwise_shifted_overlap_refused_or_right(kernel):
    v = np.random.default_rng(1).normal(size=10)
    a = v.copy()
    src, dst = a[:-1], a[1:]
    ref = {"scale": 2 * v[:-1], "accumulate": v[1:] + v[:-1], "multiply": v[:-1] * v[:-1],
           "sigmoid_forward": 1 / (1 + np.exp(-v[:-1]))}[kernel]
    try:
        if kernel == "scale":
            k.scale(src, 2.0, dst)
        elif kernel == "accumulate":
            k.accumulate(dst, src)
        elif kernel == "multiply":
            k.multiply(src, src, dst)
        else:
            k.sigmoid_forward(src, dst)
    except ShapeError:
        return
    np.testing.assert_allclose(a[1:], ref)


# 5. non-arrays: the window kernels refuse them with a DTypeError, the others give a
#    bare AttributeError
@pytest.mark.parametrize("call", [
    lambda: k.scale([1.0, 2.0], 2.0, np.empty(2)),
    lambda: k.accumulate(np.zeros(2), None),
    lambda: k.multiply(np.zeros(2), 3.0, np.zeros(2)),
    lambda: k.relu_forward([1.0], np.empty(1)),
    lambda: k.fill([1.0, 2.0], 0),
    lambda: k.matmul([[1.0]], np.eye(1), np.zeros((1, 1))),
    lambda: k.add_bias(np.zeros((1, 1)), [1.0]),
    lambda: k.accumulate_bias_grad(np.zeros((1, 1)), None),
    lambda: k.gather_rows(np.zeros((2, 2)), [0, 1], np.zeros((2, 2))),
    lambda: k.all_finite([1.0, 2.0]),
], ids=["scale", "accumulate", "multiply", "relu_forward", "fill", "matmul", "add_bias",
        "accumulate_bias_grad", "gather_rows", "all_finite"])
def test_non_arrays_refused_with_nnumba_error(call):
    with pytest.raises(NnumbaError):
        call()


# 6. fill on a strided view: the CPU fills it, the CUDA set refuses it (ShapeError):
#    a layer body tested on the CPU breaks on the GPU. Both devices should agree.
def test_fill_of_a_strided_view_same_on_cpu_and_cuda():
    pytest.importorskip("numba_cuda")
    code = textwrap.dedent("""
        import numpy as np
        from nnumba.device import get_device, to_device, to_host
        from nnumba.errors import ShapeError
        import nnumba.kernels.cpu as cpu
        cuda = get_device("cuda").kernels
        out = []
        for kset, wrap, unwrap in ((cpu, np.array, np.asarray), (cuda, to_device, to_host)):
            a = wrap(np.zeros((3, 4)))
            try:
                kset.fill(a[:, :2], 1.0)
                out.append(repr(unwrap(a).tolist()))
            except ShapeError:
                out.append("ShapeError")
        print(out[0]); print(out[1])
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-800:]
    cpu_out, cuda_out = r.stdout.strip().splitlines()[-2:]
    assert cpu_out == cuda_out


# 7. gather_rows: a wrong index or destination dtype is a dtype problem, but comes out
#    as a ShapeError (the other kernels raise DTypeError for dtypes)
@pytest.mark.parametrize("idx_dtype, dst_dtype", [(np.int32, np.float64), (np.float64, np.float64),
                                                  (np.int64, np.float32)])
def test_gather_rows_dtype_is_a_dtype_error(idx_dtype, dst_dtype):
    with pytest.raises(DTypeError):
        k.gather_rows(np.zeros((3, 2)), np.array([0, 1], dtype=idx_dtype),
                      np.zeros((2, 2), dtype=dst_dtype))
