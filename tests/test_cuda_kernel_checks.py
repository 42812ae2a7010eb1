"""The CUDA kernel set refuses hostile arguments as the CPU set does (fuzz round 46
hardened the CPU set only): each call below gets the same nnumba error from both
sets, where before the CUDA twin wrote past an array (an IndexError in the
simulator, silent writes or an illegal address on a GPU) or ran on garbage.
Values only the device holds (an index, an argmax) are guarded in the kernel:
a NaN, or a label -1, marks the row the checks after it report.

The simulator must be on before numba.cuda is imported, so in a normal run this
module runs itself in a subprocess with NUMBA_ENABLE_CUDASIM=1 (as
tests/test_cuda_sim.py does).  Tiny sizes: each simulated thread is a Python thread.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("numba_cuda") is None:
    pytest.skip('numba-cuda is not installed (pip install "nnumba[cuda]")',
                allow_module_level=True)

f32, f64, i32, i64 = np.float32, np.float64, np.int32, np.int64


def z(*shape, dtype=f32):
    return np.zeros(shape, dtype)


def r(*shape, dtype=f32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


# (name, the kernel's arguments, the error both sets give): host arrays, moved to the
# device for the CUDA set
CASES = [
    ("relu_forward", lambda: (r(4), z(3)), "ShapeError"),                     # short output
    ("sigmoid_forward", lambda: (np.ones(4, np.uint8), z(4, dtype=np.uint8)), "DTypeError"),
    ("tanh_backward", lambda: (r(4), r(4), z(4, dtype=f64)), "DTypeError"),   # mixed floats
    ("sgd_step", lambda: (r(6), r(6), z(5), f32(0.1), f32(0.9), f32(0)), "ShapeError"),
    ("softmax_cross_entropy", lambda: (r(3, 4), np.zeros(3, i64), z(2), z(3, 4), ),
     "ShapeError"),                                                            # short losses
    ("softmax_cross_entropy", lambda: (r(3, 4), np.zeros(3, f32), z(3), z(3, 4)),
     "DTypeError"),                                                            # float labels
    ("squared_error", lambda: (r(3, 2), r(3, 1), f32(1), z(3), z(3, 2)), "ShapeError"),
    ("hinge", lambda: (r(4), r(4), f32(1), f32(1), z(4), z(3)), "ShapeError"),
    ("gather_rows", lambda: (r(5, 3), np.arange(2, dtype=i64), z(2, 4)), "ShapeError"),
    ("gather_rows", lambda: (r(5, 3), np.arange(2, dtype=i32), z(2, 3)), "DTypeError"),
    ("gather_rows", lambda: (np.ones((5, 3), bool), np.arange(2, dtype=i64), z(2, 3, dtype=bool)),
     "DTypeError"),                                                            # no number
    ("matmul", lambda: (r(3, 4), r(5, 2), z(3, 2)), "ShapeError"),
    ("matmul", lambda: (r(3, 4), r(4, 2), z(3, 2, dtype=f64)), "DTypeError"),
    ("conv2d_forward", lambda: (r(2, 1, 5, 5), r(3, 1, 3, 3), None, 1, 0, z(1, 3, 3, 3)),
     "ShapeError"),                                                            # batch 1 of 2
    ("conv2d_forward", lambda: (r(1, 1, 5, 5), r(3, 1, 3, 3), None, 0, 0, z(1, 3, 3, 3)),
     "ShapeError"),                                                            # stride 0
    ("conv2d_forward", lambda: (r(1, 1, 5, 5), r(3, 1, 3, 3), r(2), 1, 0, z(1, 3, 3, 3)),
     "ShapeError"),                                                            # short bias
    ("conv2d_backward_input", lambda: (r(1, 3, 3, 3), r(3, 2, 3, 3), 1, 0, z(1, 1, 5, 5)),
     "ShapeError"),                                                            # channels
    ("conv2d_backward_weight", lambda: (r(1, 1, 5, 5), r(1, 3, 2, 2), 1, 0, z(3, 1, 3, 3),
                                        None), "ShapeError"),
    ("maxpool2d_forward", lambda: (r(1, 1, 4, 4), 2, 2, z(1, 1, 2, 1), z(1, 1, 2, 1, dtype=i32)),
     "ShapeError"),                                                            # a column short
    ("maxpool2d_forward", lambda: (r(1, 1, 4, 4), 2, 2, z(1, 1, 2, 2), z(1, 1, 2, 2)),
     "ShapeError"),                                                            # float argmax
    ("maxpool2d_backward", lambda: (r(1, 2, 2, 2), np.zeros((1, 2, 2, 2), i32), z(1, 1, 4, 4)),
     "ShapeError"),                                                            # planes
    ("avgpool2d_forward", lambda: (r(1, 1, 4, 4), 2, 0, z(1, 1, 2, 2)), "ShapeError"),
    ("avgpool2d_backward", lambda: (r(1, 1, 2, 2), 2, 2, z(1, 1, 6, 6)), "ShapeError"),
    ("adaptive_avgpool2d_forward", lambda: (r(1, 2, 4, 4), z(1, 3, 2, 2)), "ShapeError"),
    ("conv2d_relu_maxpool2d_forward", lambda: (r(1, 1, 6, 6), r(4, 1, 3, 3), None, 1, 0, 2, 2,
                                               z(1, 4, 2, 1), z(1, 4, 2, 1, dtype=i32)),
     "ShapeError"),
    ("conv2d_relu_maxpool2d_backward", lambda: (r(1, 1, 6, 6), r(4, 1, 3, 3), r(1, 4, 2, 2),
                                                np.zeros((1, 4, 2, 2), i32), r(1, 4, 2, 2), 1, 0,
                                                z(4, 1, 3, 3), z(3), None), "ShapeError"),
]

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"

if not SIMULATED:
    def test_cuda_kernel_checks_in_the_simulator():
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
        run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p",
                              "no:cacheprovider"], env=env, capture_output=True, text=True,
                             timeout=900, cwd=Path(__file__).parent.parent)
        assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]

else:
    import nnumba.kernels.cpu as cpu
    import nnumba.kernels.cuda as gpu
    from kernel_calls import error_of, on_device
    from nnumba.device import to_device, to_host

    @pytest.mark.parametrize("name,make,error", CASES,
                             ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
    def test_both_kernel_sets_refuse_the_call_with_one_error(name, make, error):
        assert error_of(lambda: getattr(cpu, name)(*make())) == error
        assert error_of(lambda: getattr(gpu, name)(*on_device(make()))) == error

    def test_device_gather_marks_rows_of_out_of_range_indices():
        src, idx = r(4, 3), np.array([1, 9, -1], i64)
        dst = to_device(z(3, 3))
        gpu.gather_rows(to_device(src), to_device(idx), dst)
        got = to_host(dst)
        np.testing.assert_array_equal(got[0], src[1])
        assert np.isnan(got[1:]).all()
        labels = to_device(np.zeros((2, 1), i64))
        gpu.gather_rows(to_device(np.arange(4, dtype=i64).reshape(4, 1)),
                        to_device(np.array([2, 7], i64)), labels)
        assert to_host(labels).ravel().tolist() == [2, -1]
        small = to_device(np.zeros((2, 1), np.uint8))  # unsigned: its largest value
        gpu.gather_rows(to_device(np.arange(4, dtype=np.uint8).reshape(4, 1)),
                        to_device(np.array([7, 1], i64)), small)
        assert to_host(small).ravel().tolist() == [255, 1]

    def test_device_maxpool_backward_marks_an_argmax_outside_its_plane():
        dy = np.ones((1, 1, 2, 2), f32)
        argmax = np.array([0, 3, 99, 12], i32).reshape(1, 1, 2, 2)  # 99: past the 4 x 4 plane
        dx = to_device(z(1, 1, 4, 4))
        gpu.maxpool2d_backward(to_device(dy), to_device(argmax), dx)
        got = to_host(dx).ravel()
        assert np.isnan(got[0]) and got[3] == 1 and got[12] == 1
        assert np.count_nonzero(got[1:]) == 2  # nothing written elsewhere

    def test_device_fill_of_a_fortran_ordered_array_fills_the_array_itself():
        a = to_device(np.asfortranarray(np.ones((3, 4), f32)))
        gpu.fill(a, 2.0)
        assert (to_host(a) == 2).all()
