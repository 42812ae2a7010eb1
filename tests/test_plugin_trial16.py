"""Plugin trial 16: gaps in nnumba's layer kits for a layer with non-trainable state
(add_param(..., trainable=False)), found while writing a LayerNorm plugin with a running
statistic.  Each test defines its layer here, written with self.kernels only (so it runs on
every device), and asserts what the kit should do; the reference for the state is numpy."""
import os
import subprocess
import sys
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import integer


class RunningMeanBias(Layer):
    """y = x + b (b trainable, (D,)); state running_mean (D,): an exponential average of the
    batch mean of x, updated in training only, written with the kernel set."""

    examples = [({"features": 3}, (4, 3)), ({"features": 2}, (5, 2))]
    momentum = 0.5

    def __init__(self, features: int):
        super().__init__()
        self.features = integer("RunningMeanBias", "features", features)
        self.b = self.add_param("b", (self.features,))
        self.running_mean = self.add_param("running_mean", (self.features,), trainable=False)

    def reset_parameters(self, rng):
        self.b.value[...] = rng.uniform(-0.1, 0.1, self.features)
        self.running_mean.value[...] = 0

    def input_shape(self):
        return (self.features,)

    def output_shape(self, input_shape):
        return (self.features,)

    def _state_array(self):
        return self.running_mean.value

    def _update_state(self, x):
        k, n = self.kernels, x.shape[0]
        tot = self._buffer("tot", (self.features,))
        k.fill(tot, 0)
        k.accumulate_bias_grad(x, tot)                 # column sums
        run = self._state_array()
        k.scale(run, 1 - self.momentum, run)
        k.scale(tot, self.momentum / n, tot)
        k.accumulate(run, tot)

    def _wants_state_update(self):
        return self.training

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        k = self.kernels
        k.fill(y, 0)
        k.add_bias(y, self.b.value)
        k.accumulate(y.reshape(y.size), x.reshape(x.size))
        if self._wants_state_update():
            self._update_state(x)
        return y

    def _backward(self, dl_dy):
        self.kernels.accumulate_bias_grad(dl_dy, self.b.grad)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        self.kernels.scale(dl_dy.reshape(dl_dy.size), 1.0, dx.reshape(dx.size))
        return dx


def _expected_state(start, x, momentum=0.5):
    return (1 - momentum) * start + momentum * x.mean(axis=0)


def test_the_correct_layer_passes_the_kit_and_keeps_its_state_in_a_model():
    testing.check_all(RunningMeanBias)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    model = nnumba.Sequential(RunningMeanBias(3), seed=0)
    model.train()
    model.forward(x)
    np.testing.assert_allclose(model.layers[0].running_mean.value, _expected_state(0, x),
                               rtol=1e-6)


# ---- 1. an evaluation forward that changes the state passes check_all ---------------------

class StateInEvalToo(RunningMeanBias):
    """Bug: the state moves in evaluation mode too (predict, a trainer's test pass)."""

    def _wants_state_update(self):
        return True


def test_an_eval_forward_that_changes_state_fails_check_all():
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    model = nnumba.Sequential(StateInEvalToo(3), seed=0)
    model.train()
    model.forward(x)
    before = model.layers[0].running_mean.value.copy()
    model.predict(x)                                       # evaluation mode
    after = model.layers[0].running_mean.value
    # the bug is real: predict moved the state, as the numpy reference of one more update says
    np.testing.assert_allclose(after, _expected_state(before, x), rtol=1e-6)
    assert not np.array_equal(after, before)
    with pytest.raises(testing.ConformanceError, match="evaluation mode changed 'running_mean'"):
        testing.check_all(StateInEvalToo)


# ---- 2. a state array kept from reset_parameters passes check_all -------------------------

class StaleState(RunningMeanBias):
    """Bug (rule 1 of plugins.md, for state): the running mean is updated through an array
    kept from reset_parameters; a model rebinds the parameter into its flat buffer, so the
    model's state (what it saves) never moves."""

    def reset_parameters(self, rng):
        super().reset_parameters(rng)
        self._kept = self.running_mean.value

    def _state_array(self):
        return self._kept


def test_a_state_update_through_a_kept_array_fails_check_all():
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    model = nnumba.Sequential(StaleState(3), seed=0)
    model.train()
    model.forward(x)
    saved_state = model.layers[0].running_mean.value
    # the bug is real: the model's state is not what the numpy reference says
    assert not np.allclose(saved_state, _expected_state(0, x), rtol=1e-6)
    # (the kept array stays float64 where the kit converts the layer to float32: the
    # kernels refuse the two dtypes, and the kit names the rule)
    with pytest.raises(testing.ConformanceError, match="an array kept from a parameter .* "
                                                        "read param.value at every call"):
        testing.check_all(StaleState)


# ---- 3. the misleading hint for a non-trainable parameter's grad --------------------------

class WritesStateGrad(RunningMeanBias):
    """Bug: backward adds into running_mean.grad (plugins.md: 'leave their grad alone')."""

    def _backward(self, dl_dy):
        dx = super()._backward(dl_dy)
        self.kernels.accumulate_bias_grad(dl_dy, self.running_mean.grad)
        return dx


def test_writing_a_state_grad_is_named_as_such_not_as_a_stale_copy():
    with pytest.raises(testing.ConformanceError) as info:
        testing.check_all(WritesStateGrad)
    message = str(info.value)
    # (it said: "... the output does not depend on it: read it as param.value at every
    # call, never a copy kept from __init__" -- the layer keeps no copy; the cause is a
    # write into the grad of a trainable=False parameter.
    assert "never a copy kept" not in message, message
    assert "trainable=False" in message, message


# ---- 4. check_device compares no state (nor evaluation mode) -----------------------------

_DEVICE_CHECK = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_plugin_trial16 import RunningMeanBias
from nnumba import testing
from nnumba.device import to_device, to_host


class StateOnCpuOnly(RunningMeanBias):
    '''Bug: the state update is written for the CPU path only (the GPU's state never moves).'''
    def _wants_state_update(self):
        return self.training and self.device.name == "cpu"


x = np.random.default_rng(0).normal(size=(6, 3))
cpu = StateOnCpuOnly(3).astype("float64")
gpu = StateOnCpuOnly(3).astype("float64").to("cuda")
for layer in (cpu, gpu):
    layer.reset_parameters(np.random.default_rng(1))
cpu.forward(x)
gpu.forward(to_device(x, "cuda"))
want = 0.5 * x.mean(axis=0)
assert np.allclose(cpu.running_mean.value, want), "cpu state wrong"
assert not np.allclose(to_host(gpu.running_mean.value), want), "gpu state right?"
try:
    ok = testing.check_device(StateOnCpuOnly, "cuda")
except testing.ConformanceError as exc:
    print("caught:", exc)
else:
    print("NOT CAUGHT: check_device returned", ok)
"""


def test_check_device_compares_the_state_a_training_forward_leaves():
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    run = subprocess.run([sys.executable, "-c", _DEVICE_CHECK, str(Path(__file__).parent)],
                         env=env, text=True, capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "caught:" in run.stdout, run.stdout + run.stderr[-2000:]
    assert "its state running_mean after a training forward" in run.stdout, run.stdout


# ---- 5. an epsilon > 0 through the documented validation helper -------------------------

@pytest.mark.parametrize("value, ok", [(1e-5, True), (0, False), (-1e-5, False),
                                       (float("nan"), False), ("1e-5", False), (True, False)])
def test_number_takes_a_strict_lower_bound_for_an_epsilon(value, ok):
    """plugins.md: number(..., above=0) refuses 0 and below (a LayerNorm's eps), where
    low=0 is inclusive and would let eps = 0 divide by zero."""
    from nnumba import SpecError
    from nnumba.layers.validation import number
    if ok:
        assert number("LayerNorm", "eps", value, above=0) == value
    else:
        with pytest.raises(SpecError, match=r"LayerNorm: eps must be a finite number > 0, got"):
            number("LayerNorm", "eps", value, above=0)
