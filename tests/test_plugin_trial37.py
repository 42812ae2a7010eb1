"""Plugin trial 37: 1-d pools, ELU, a learnable 0-d scale, moving-average layers and
a Huber loss from the docs alone (they matched PyTorch to 2e-16); the CUDA device
made a 0-d parameter 1-d, and check_all refused a layer whose training output uses
the running state its forward then moves."""
import importlib.util
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from nnumba import Layer, testing
from nnumba.layers.validation import number


# ---------------------------------------------------------------------------------
# F1: a 0-d parameter (one learnable scalar) becomes shape (1,) on the CUDA device
# ---------------------------------------------------------------------------------

SCALE_MODULE = '''
"""Scale37: y = s x with one learnable scalar s, a 0-d parameter, kernel set only."""
import math
from nnumba import Layer, hookimpl


class Scale37(Layer):
    examples = [({}, (3, 4))]

    def __init__(self, init: float = 1.5):
        super().__init__()
        self.init = float(init)
        self.s = self.add_param("s", ())

    def reset_parameters(self, rng):
        self.s.value[...] = self.init

    def _sbuf(self, shape, n):
        sb = self._buffer("sb", shape)
        self.kernels.fill(sb, 0)
        self.kernels.add_bias(sb.reshape(n, 1), self.s.value.reshape(1))
        return sb

    def _forward(self, x):
        n = x.size
        y = self._buffer("y", x.shape)
        self.kernels.multiply(x.reshape(n), self._sbuf(x.shape, n).reshape(n), y.reshape(n))
        self._x = x
        return y

    def _backward(self, g):
        k, n = self.kernels, g.size
        t = self._buffer("t", (n,))
        k.multiply(self._x.reshape(n), g.reshape(n), t)
        k.accumulate_bias_grad(t.reshape(n, 1), self.s.grad.reshape(1))
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", g.shape)
        k.multiply(g.reshape(n), self._sbuf(g.shape, n).reshape(n), dx.reshape(n))
        return dx


@hookimpl
def nnumba_register_layers():
    return {"Scale37": Scale37}
'''

SIM_SCRIPT = '''
import numpy as np, nnumba
from nnumba import testing
from nnumba.device import to_device, to_host
import scale37
from scale37 import Scale37
nnumba.register_plugin(scale37, "t37test")

a = to_device(np.array(2.5, dtype=np.float32), "cuda")
assert a.shape == (), f"to_device of a 0-d array gave shape {a.shape}"
assert to_host(a).shape == ()

s = Scale37().to("cuda")
assert s.s.value.shape == () and s.s.grad.shape == (), (s.s.value.shape, s.s.grad.shape)
s.to("cpu")
assert s.s.value.shape == () and float(s.s.value) == 1.5, s.s.value.shape
# a model holding it saves a file that loads (was WeightsError '(1,) in the file, () in the model')
m = nnumba.Sequential([nnumba.get_layer("Linear")(3, 4), s])
import tempfile, os
path = os.path.join(tempfile.mkdtemp(), "m.npz")
nnumba.save(m, path)
nnumba.load_model(path)

assert testing.check_device(Scale37, "cuda")
print("ALL OK")
'''


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="the CUDA simulator needs numba-cuda")
def test_zero_d_parameter_keeps_its_shape_on_cuda(tmp_path):
    (tmp_path / "scale37.py").write_text(SCALE_MODULE)
    (tmp_path / "run.py").write_text(SIM_SCRIPT)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1",
               PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, str(tmp_path / "run.py")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "ALL OK" in run.stdout, run.stdout + run.stderr[-3000:]


# ---------------------------------------------------------------------------------
# F2: check_all cannot accept a layer whose training output uses the state it moves
# ---------------------------------------------------------------------------------

class EMAMean37(Layer):
    """y = x - m; in training m then moves to (1 - momentum) m + momentum mean(x).
    The output uses m from before the batch, so dy/dx is the identity (the state a constant)."""

    examples = [({}, (4, 3)), ({"momentum": 0.5}, (3, 2, 4))]
    kept_for_backward = ()

    def __init__(self, momentum: float = 0.1):
        super().__init__()
        self.momentum = number("EMAMean37", "momentum", momentum, 0, 1)
        self.mean = self.add_param("mean", (1,), trainable=False)

    def _forward(self, x):
        k, n = self.kernels, x.size
        y = self._buffer("y", x.shape)
        k.fill(y, 0)
        k.accumulate(y.reshape(n), x.reshape(n))
        neg = self._buffer("neg", (1,))
        k.scale(self.mean.value, -1, neg)
        k.add_bias(y.reshape(n, 1), neg)
        if self.training:
            tot = self._buffer("tot", (1,), zero=True)
            k.accumulate_bias_grad(x.reshape(n, 1), tot)
            k.scale(tot, self.momentum / n, tot)
            k.scale(self.mean.value, 1 - self.momentum, self.mean.value)
            k.accumulate(self.mean.value, tot)
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        n = dl_dy.size
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.fill(dx, 0)
        self.kernels.accumulate(dx.reshape(n), dl_dy.reshape(n))
        return dx


def _emamean_matches_closed_form():
    """The layer is right: output, state and gradient against the closed form."""
    layer = EMAMean37(momentum=0.25).astype("float64")
    layer.train()
    rng = np.random.default_rng(0)
    m = 0.0
    for _ in range(3):
        x = rng.normal(size=(4, 3))
        y = layer.forward(x)
        np.testing.assert_allclose(y, x - m, atol=1e-15)
        m = 0.75 * m + 0.25 * x.mean()
        np.testing.assert_allclose(layer.mean.value, [m], atol=1e-15)
        g = rng.normal(size=y.shape)
        np.testing.assert_array_equal(layer.backward(g), g)


def test_check_all_accepts_a_layer_whose_training_output_uses_its_moving_state():
    # The kit puts the generator back before each forward of a gradient check; it does
    # not put the state (trainable=False) back, so it refuses every such layer with
    # "two training forwards of one input differ ... which finite differences cannot
    # check", and the guide neither forbids such layers nor offers a way to check one.
    _emamean_matches_closed_form()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        testing.check_all(EMAMean37)
