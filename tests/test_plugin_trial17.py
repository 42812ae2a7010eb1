"""Plugin trial 17 (GroupedLinear with its own kernels, MultiMargin17, quadpairs,
grouped-mlp, a cpu-counting device): gaps in nnumba's kits and registry.

Every plugin piece is defined here and registered at run time (tests/runtime_plugin.py);
the layer's "own kernels" are plain numpy functions in modules made here, which a device
of numpy arrays runs as it would numba kernels.  The references are closed forms (numpy
block matmuls), the CPU run, and what nnumba's own API does with the model.

"""
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.device import CPUDevice, get_device
from nnumba.errors import NnumbaError
from nnumba.layers.validation import integer
from nnumba.models import NamedModel

from runtime_plugin import runtime_plugin


# ---- a GroupedLinear whose own kernels are modules named in `devices` -----------------
def _module(name, **functions):
    mod = types.ModuleType(name)
    mod.__dict__.update(functions)
    sys.modules[name] = mod
    return mod


def _forward(x, w, y):
    g, b, a = w.shape
    for i in range(g):
        y[:, i * b:(i + 1) * b] = x[:, i * a:(i + 1) * a] @ w[i].T


def _input_grad(dy, w, dx):
    g, b, a = w.shape
    for i in range(g):
        dx[:, i * a:(i + 1) * a] = dy[:, i * b:(i + 1) * b] @ w[i]


def _weight_grad(x, dy, dw):          # correct: adds
    g, b, a = dw.shape
    for i in range(g):
        dw[i] += dy[:, i * b:(i + 1) * b].T @ x[:, i * a:(i + 1) * a]


def _weight_grad_overwrites(x, dy, dw):   # the bug: = instead of +=
    g, b, a = dw.shape
    for i in range(g):
        dw[i] = dy[:, i * b:(i + 1) * b].T @ x[:, i * a:(i + 1) * a]


_module("t17_gl_good", forward=_forward, input_grad=_input_grad, weight_grad=_weight_grad)
_module("t17_gl_overwrite", forward=_forward, input_grad=_input_grad,
        weight_grad=_weight_grad_overwrites)


class GroupedLinear17(Layer):
    """Block-diagonal linear map: G independent Linear maps on slices of the input."""

    examples = [({"in_features": 4, "out_features": 6, "groups": 2}, (3, 4)),
                ({"in_features": 6, "out_features": 3, "groups": 3}, (5, 6))]
    devices = {"cpu": "t17_gl_good"}

    def __init__(self, in_features: int, out_features: int, groups: int = 1):
        super().__init__()
        self.in_features = integer("GroupedLinear17", "in_features", in_features)
        self.out_features = integer("GroupedLinear17", "out_features", out_features)
        self.groups = integer("GroupedLinear17", "groups", groups)
        g = self.groups
        self.weight = self.add_param("weight", (g, out_features // g, in_features // g))
        self.bias = self.add_param("bias", (out_features,))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.uniform(-1, 1, self.weight.value.shape)
        self.bias.value[...] = rng.uniform(-1, 1, self.bias.value.shape)

    def input_shape(self):
        return (self.in_features,)

    def output_shape(self, input_shape):
        return (self.out_features,)

    def _forward(self, x):
        y = self._buffer("y", (x.shape[0], self.out_features))
        self.own.forward(x, self.weight.value, y)
        self.kernels.add_bias(y, self.bias.value)
        self._x = x
        return y

    def _backward(self, dl_dy):
        self.own.weight_grad(self._x, dl_dy, self.weight.grad)
        self.kernels.accumulate_bias_grad(dl_dy, self.bias.grad)
        if not self.needs_input_grad:
            return None
        dl_dx = self._buffer("dx", (dl_dy.shape[0], self.in_features))
        self.own.input_grad(dl_dy, self.weight.value, dl_dx)
        return dl_dx


def _block_reference(x, w, b):
    g, bo, a = w.shape
    return np.concatenate([x[:, i * a:(i + 1) * a] @ w[i].T for i in range(g)], axis=1) + b


# ---- a second device of numpy arrays: the GPU's situation without a GPU --------------
class OtherCPU(CPUDevice):
    """A device of numpy arrays whose layers use the kernels `devices` names for it."""
    name = "t17-other"
    kernel_set = "nnumba.kernels.cpu"


def _bias_grad_overwrites(dl_dy, db):
    db[...] = dl_dy.sum(axis=0)


_cpu_kernels = __import__("nnumba.kernels.cpu", fromlist=["*"])
_module("t17_bad_bias_kernels",
        **{**{n: getattr(_cpu_kernels, n) for n in nnumba.kernels.KERNELS},
           "accumulate_bias_grad": _bias_grad_overwrites})


class BadBiasCPU(CPUDevice):
    """The CPU's kernels, but accumulate_bias_grad overwrites db."""
    name = "t17-bad-bias"
    kernel_set = "t17_bad_bias_kernels"


# ---- 1. check_device never checks accumulation on the device ---------------------------
def test_check_device_catches_own_device_kernels_that_overwrite_the_weight_gradient():
    """A layer whose CPU kernels add into weight.grad (check_all passes) but whose kernels
    on another device overwrite it (the CUDA twin written `dw[...] = acc`).  check_device
    compares a second backward too: after one backward from zero, = and += agree.  Under GDTrainer (gradients of several batches
    summed) that device then trains otherwise than the CPU."""
    cls = type("GLOverwriteOnDevice", (GroupedLinear17,), {
        "type_name": "GLOverwriteOnDevice",
        "devices": {"cpu": "t17_gl_good", "t17-other": "t17_gl_overwrite"}})
    with runtime_plugin(devices={"t17-other": OtherCPU()}, layers={cls.type_name: cls}):
        testing.check_all(cls)                      # the CPU path is right
        # the harm, against the CPU run: GD over 3 batches of 4
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(12, 4)).astype(np.float32), rng.integers(0, 3, 12)
        spec = [{"type": cls.type_name, "in_features": 4, "out_features": 4, "groups": 2},
                {"type": "Linear", "in_features": 4, "out_features": 3}]
        weights = []
        for device in ("cpu", "t17-other"):
            model = nnumba.Sequential.from_spec(spec, seed=0).to(device)
            nnumba.GDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.5,
                             batch_size=4).fit(x, y, epochs=1)
            weights.append(model.to("cpu").flat_params.copy())
        assert np.abs(weights[0] - weights[1]).max() > 1e-3   # the device trains wrongly
        with pytest.raises(testing.ConformanceError, match="accumulate|overwrite"):
            testing.check_device(cls, "t17-other")


def test_check_device_catches_a_device_kernel_set_whose_bias_gradient_overwrites():
    """A device plugin whose accumulate_bias_grad writes db = sums instead of db += sums.
    plugins.md tells a device author to compare each layer with check_device; it returns
    True for Linear, whose bias gradient is then wrong whenever gradients accumulate."""
    Linear = nnumba.get_layer("Linear")
    with runtime_plugin(devices={"t17-bad-bias": BadBiasCPU()}):
        layer = Linear(3, 2).astype("float64").to("t17-bad-bias")
        rng = np.random.default_rng(0)
        x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
        layer.zero_grad()
        for _ in range(2):
            layer.forward(x)
            layer.backward(g)
        # closed form: two backwards add 2 * column sums
        assert not np.allclose(layer.bias.grad, 2 * g.sum(axis=0))   # the bug is there
        with pytest.raises(testing.ConformanceError, match="accumulate|overwrite"):
            testing.check_device(Linear, "t17-bad-bias")


# ---- 2. a parameter reference kept at the first forward ---------------------------------
class GLKeptAtFirstForward(GroupedLinear17):
    """Keeps weight.value from its first forward (a "cache" many authors write)."""
    type_name = "GLKeptAtFirstForward"

    def _forward(self, x):
        if not hasattr(self, "_w_kept"):
            self._w_kept = self.weight.value
        y = self._buffer("y", (x.shape[0], self.out_features))
        self.own.forward(x, self._w_kept, y)
        self.kernels.add_bias(y, self.bias.value)
        self._x = x
        return y


def test_check_all_catches_a_weight_reference_kept_from_the_first_forward():
    """plugins.md's first rule: read the parameters at every call.  A reference kept at
    the first forward (not in reset_parameters, which trial 15 covered: the save/load
    step catches that) passes check_all and check_device, since every kit check builds
    a fresh layer or model and never calls forward before a model rebinds, converts
    (astype) or moves (to) the parameters.  In use, a forward before model.astype(...)
    (or .to(device)) makes the layer compute with a dead copy: training updates weight
    and the output never changes."""
    with runtime_plugin(layers={"GLKeptAtFirstForward": GLKeptAtFirstForward}):
        Linear = nnumba.get_layer("Linear")
        model = nnumba.Sequential(Linear(4, 4), GLKeptAtFirstForward(4, 4, 2), seed=0)
        x = np.random.default_rng(0).normal(size=(5, 4))
        model.predict(x.astype(np.float32))         # one forward before converting
        model = model.astype("float64")
        gl = model.layers[1]
        gl.weight.value[...] += 1.0                 # as an update would
        h = model.layers[0].forward(x)
        want = _block_reference(h, gl.weight.value, gl.bias.value)
        got = gl.forward(h)
        assert not np.allclose(got, want)           # the bug is there
        with pytest.raises(testing.ConformanceError):
            testing.check_all(GLKeptAtFirstForward)


# ---- 3. check_model and the inputs / classes options ------------------------------------
def _mlp(inputs, classes):
    return [{"type": "Linear", "in_features": inputs, "out_features": 8}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 8, "out_features": classes}]


def test_check_model_catches_a_build_that_ignores_inputs():
    """The model's input_shape honours `inputs` but build() ignores it (always 4).  The
    width check runs the model built with inputs=7 on that input shape: without it
    check_model passed, and nnumba train and
    NNClassifier on 7-feature data then fail."""
    def build(inputs: int = 4, classes: int = 3):
        """An MLP that ignores inputs."""
        return _mlp(4, classes)

    named = NamedModel(build, input_shape=lambda inputs=4, **o: (inputs,))
    with runtime_plugin(models={"t17-ignores-inputs": named}):
        model = nnumba.build("t17-ignores-inputs", inputs=7, seed=0)
        with pytest.raises(NnumbaError):            # the harm: 7 features do not go in
            model.predict(np.zeros((2, 7), np.float32))
        with pytest.raises(testing.ConformanceError, match="inputs"):
            testing.check_model("t17-ignores-inputs")


def test_check_model_with_classes_given_checks_the_output_width():
    """check_model('m', classes=3), the natural test of an option, skips the width check
    is checked with the value given: a build that ignores classes is caught."""
    def build(inputs: int = 4, classes: int = 5):
        """An MLP that ignores classes."""
        return _mlp(inputs, 5)

    named = NamedModel(build, input_shape=lambda inputs=4, **o: (inputs,))
    with runtime_plugin(models={"t17-ignores-classes": named}):
        model = nnumba.build("t17-ignores-classes", classes=3, seed=0)
        assert model.output_shape((4,)) != (3,)     # the bug is there
        with pytest.raises(testing.ConformanceError, match="classes"):
            testing.check_model("t17-ignores-classes", classes=3)


# ---- 4. a device registered under a key other than its name -----------------------------
class NamedOtherwise(CPUDevice):
    """A device whose name differs from the key it is registered under."""
    name = "t17-dev-name"
    kernel_set = "nnumba.kernels.cpu"


def test_a_device_registered_under_another_key_is_refused():
    """A plugin's {"t17-dev-key": device named "t17-dev-name"} is refused, naming both:
    model.to("t17-dev-key") would give a model whose model.device.name model.to()
    refuses, and a layer's `devices` entry would need the name the user never types."""
    with pytest.raises(nnumba.RegistryError, match=r"device 't17-dev-key': its name is "
                                                   r"'t17-dev-name': register it under"):
        with runtime_plugin(devices={"t17-dev-key": NamedOtherwise()}):
            pass
    with pytest.raises(nnumba.RegistryError):
        get_device("t17-dev-key")


# ---- 5. a loss returning a host gradient on a device ------------------------------------
def test_a_loss_that_returns_its_gradient_on_the_host_is_named_on_a_device():
    """A plugin loss that forgets self.device.to_device(grad) (the GPU path of plugins.md's
    SmoothedCrossEntropy) is refused by Loss.forward, naming the loss.  Without the
    check the docs' by-hand GPU test (gpu.backward() against cpu.backward()) passes, since
    backward() copies it into a device array; in training the error then blames the
    model's last layer ("Linear #... expected dl_dy as a cuda device array"), not the
    loss.  Runs in the CUDA simulator in a subprocess."""
    code = textwrap.dedent("""
        import numpy as np, nnumba
        from nnumba.device import to_device, to_host
        CE = nnumba.get_loss("CrossEntropy")
        class HostGrad17(CE):
            def _compute(self, y_hat, y, scale):
                losses, g = CE._compute(self, y_hat, y, scale)
                return losses, to_host(g)
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.integers(0, 2, 8)
        z = rng.normal(size=(8, 2))
        try:  # the docs' by-hand test of a loss on the GPU
            HostGrad17().forward(to_device(z, "cuda"), to_device(y, "cuda"))
            print("FORWARD TOOK IT")
        except nnumba.NnumbaError as exc:
            print("FORWARD", type(exc).__name__, exc)
        model = nnumba.build("logreg", inputs=3, classes=2, seed=0).to("cuda")
        try:
            nnumba.SGDTrainer(model, HostGrad17(), lr=0.1, batch_size=4).fit(x, y, epochs=1)
            print("TRAINED")
        except Exception as exc:
            print("ERROR", type(exc).__name__, exc)
    """)
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600)
    if "numba-cuda" in out.stderr and "not installed" in out.stderr:
        pytest.skip("numba-cuda is not installed")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("FORWARD ContractError HostGrad17 loss: _compute returned "
                                 "the gradient as a ndarray"), out.stdout
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("ERROR"), last            # a host gradient is not a device one
    assert "HostGrad17" in last, last                # ... and the error names the loss
