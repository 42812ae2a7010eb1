"""Review 38 of the sitting's device kit and kernel-signature check: both refused
correct devices (options passed by position, a numba @vectorize kernel, a
functools.wraps wrapper).  Throw-away devices are registered with
tests/throwaway_device.py."""
import importlib

import numpy as np

import nnumba
from nnumba import testing
from throwaway_device import device_with_kernels


def _mlp_forward_matches_numpy(dev):
    """The device's MLP forward against a numpy forward of the same weights."""
    model = nnumba.build("mlp", inputs=4, hidden=[3], classes=2, seed=0).astype("float64")
    p = {n: v.value.copy() for n, v in model.params()}
    model.to(dev)
    x = np.random.default_rng(0).normal(size=(5, 4))
    h = np.maximum(x @ p["1.weight"].T + p["1.bias"], 0)
    np.testing.assert_allclose(np.asarray(model.forward(x)), h @ p["3.weight"].T + p["3.bias"],
                               rtol=1e-12, atol=1e-12)


# F1: check_kernels calls kernels differently from the layers ---------------------------
def test_check_kernels_passes_optional_arguments_by_name_as_the_layers_do(tmp_path):
    """docs/plugins.md: a kernel takes the CPU set's required arguments by position and
    its optional ones by name; model.to checks exactly that and the layers call so
    (k.matmul(x, w, y, trans_b=True)).  cases._matmul passes trans_a/trans_b by
    position, so check_kernels refuses a matmul whose options are keyword-only."""
    with device_with_kernels(tmp_path, """
        def matmul(a, b, out, *, trans_a=False, trans_b=False, accumulate=False):
            return cpu.matmul(a, b, out, trans_a=trans_a, trans_b=trans_b,
                              accumulate=accumulate)
    """) as dev:
        _mlp_forward_matches_numpy(dev)                  # model.to accepts it; it is right
        assert testing.check_kernels(dev) == testing.check_kernels("cpu")


def test_check_kernels_passes_keep_as_the_layers_do(tmp_path):
    """Conv2d always passes keep= by name; cases never pass it at all."""
    with device_with_kernels(tmp_path, """
        def conv2d_forward(x, w, b, stride, pad, out, *, keep):
            return cpu.conv2d_forward(x, w, b, stride, pad, out, keep=keep)
    """) as dev:
        nnumba.build("lenet", seed=0).to(dev)            # model.to accepts it
        assert testing.check_kernels(dev) == testing.check_kernels("cpu")


# F2: the signature check refuses numba @vectorize kernels ------------------------------
def test_model_to_accepts_a_numba_vectorize_elementwise_kernel(tmp_path):
    """relu_forward(x, y) written as a numba ufunc (y is its positional out argument,
    as for every ufunc) computes the CPU set's result; check_kernels accepts it, but
    signatures.misfits reads the ufunc's Python function (x) and model.to raises
    DeviceError 'cannot take the CPU set's arguments', blaming the plugin."""
    with device_with_kernels(tmp_path, """
        import numba

        @numba.vectorize(["float32(float32)", "float64(float64)"])
        def relu_forward(x):
            return x if x > 0 else 0.0
    """) as dev:
        from nnumba.device import get_device
        ks = importlib.import_module(get_device(dev).kernel_set)
        x = np.array([-1.5, 0.0, 2.0])
        y = np.full_like(x, np.nan)
        ks.relu_forward(x, y)
        np.testing.assert_array_equal(y, np.maximum(x, 0))   # it is a valid kernel
        nnumba.build("mlp", inputs=4, hidden=[3], classes=2, seed=0).to(dev)


# F3: the signature check follows functools.wraps' __wrapped__ --------------------------
def test_model_to_reads_the_signature_of_the_callable_not_of_what_it_wraps(tmp_path):
    """A decorator that supplies a leading argument and keeps the name with
    functools.wraps: the callable takes (a, value), inspect.signature reports the
    wrapped (stream, a, value), and model.to refuses a kernel that works."""
    with device_with_kernels(tmp_path, """
        def _fill(stream, a, value):
            a[...] = value

        @functools.wraps(_fill)
        def fill(*args, **kwargs):
            return _fill(None, *args, **kwargs)
    """) as dev:
        _mlp_forward_matches_numpy(dev)
