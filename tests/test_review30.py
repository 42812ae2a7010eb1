"""Review 30: the kits pass correct plugins they failed (whole-number draws that are
no ids, a loss whose ignore_index is -1, a penalty on a model's *.weight) and report a
crash at a size the layer declared free; the perceptron refuses samples whose products
underflow, on every rank as in one process; summary's example shape fits the model."""
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnumba import LabelError, Layer, Loss, ShapeError, testing
from nnumba.device import to_host
from nnumba.errors import NnumbaError
from nnumba.layers.validation import integer, number


# ------------------------------------------- 1. whole-number draws that are not ids
class Bytes01(Layer):
    """Raw 8-bit pixel values (whole numbers 0..255, not ids) scaled to [0, 1]; any
    float is a valid input (a 300 from a 16-bit image is simply 300/255)."""
    examples = [({}, (2, 1, 4, 4))]
    devices = ("cpu",)

    def example_input(self, shape, rng):
        return rng.integers(0, 256, size=shape).astype(np.float64)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x / 255.0
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy / 255.0
        return dx


class SpinGate(Layer):
    """y = tanh(w x) on +-1 spins (its draws); any float is a valid input."""
    examples = [({"features": 3}, (4, 3))]
    devices = ("cpu",)

    def __init__(self, features: int):
        super().__init__()
        self.features = integer("SpinGate", "features", features)
        self.weight = self.add_param("weight", (self.features,))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.uniform(0.5, 1.5, self.features)

    def input_shape(self):
        return (self.features,)

    def example_input(self, shape, rng):
        return rng.choice([-1.0, 1.0], size=shape)

    def _forward(self, x):
        self._x = x
        y = self._buffer("y", x.shape)
        y[...] = np.tanh(self.weight.value * x)
        self._y = y
        return y

    def _backward(self, dl_dy):
        d = dl_dy * (1 - self._y ** 2)
        self.weight.grad[...] += (d * self._x).sum(0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = d * self.weight.value
        return dx


@pytest.mark.parametrize("cls", [Bytes01, SpinGate])
def test_whole_number_draws_that_are_not_ids_pass_check_all(cls):
    """testing/inputs.py:46 takes any example_input whose draws are all whole numbers
    for ids and :74-77 fail a layer that then takes values past their range; pixel
    bytes, counts and +-1 spins are whole numbers a layer rightly takes at any size.
    Both layers are right (closed form, torch) and passed check_all at 93ff8fe."""
    torch = pytest.importorskip("torch")
    layer = cls(**cls.examples[0][0]).astype("float64")
    x = np.array([[300.0, -7.5, 2.0]]) if cls is SpinGate else np.full((1, 1, 4, 4), 300.0)
    if cls is SpinGate:
        ref = torch.tanh(torch.tensor(layer.weight.value) * torch.tensor(x)).numpy()
    else:
        ref = x / 255.0
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-15)
    testing.check_all(cls)  # HEAD: "ids past the range example_input draws ... were taken"


# ------------------------------------------- 2. a loss whose -1 label is valid
def _log_softmax(z):
    m = z.max(1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(1, keepdims=True))


class IgnoreCE(Loss):
    """torch's CrossEntropyLoss(ignore_index=...): a label equal to ignore_index adds
    nothing; any other label outside [0, C) is a LabelError."""
    target_dtype = "int64"
    examples = [({}, (5, 4), "classes"), ({"ignore_index": -1}, (6, 3), "classes")]

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)

    def config(self):
        return {"ignore_index": self.ignore_index, **super().config()}

    def _compute(self, y_hat, y, scale):
        if y_hat.ndim != 2:
            raise ShapeError(f"IgnoreCE: expected (N, C), got {y_hat.shape}")
        z, labels = to_host(y_hat).astype(np.float64), to_host(y)
        n, c = z.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise LabelError(f"IgnoreCE: expected {n} integer labels")
        keep = labels != self.ignore_index
        if (((labels < 0) | (labels >= c)) & keep).any():
            raise LabelError(f"IgnoreCE: labels must lie in [0, {c}) or be {self.ignore_index}")
        lp = _log_softmax(z)
        t = np.zeros((n, c))
        t[np.arange(n)[keep], labels[keep]] = 1
        grad = (np.exp(lp) - t) * keep[:, None]
        return -(t * lp).sum(1), self.device.to_device((scale * grad).astype(y_hat.dtype))


def test_a_loss_whose_ignore_index_is_minus_one_passes_check_loss():
    """testing/losses.py _outside (:131-141) feeds class -1 to every example and wants a
    LabelError; with ignore_index=-1 (the usual convention) -1 is a valid label, as
    torch's CrossEntropyLoss(ignore_index=-1) agrees.  Passed at 93ff8fe."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 3)), rng.integers(0, 3, 6)
    y[0] = -1
    ref = torch.nn.CrossEntropyLoss(ignore_index=-1, reduction="sum")(
        torch.tensor(z), torch.tensor(y))
    assert IgnoreCE(ignore_index=-1, reduction="sum").forward(z, y) == \
        pytest.approx(ref.item(), rel=1e-12)
    with pytest.raises(LabelError):
        IgnoreCE().forward(z, y)  # -1 is refused where it is not the ignore_index
    testing.check_loss(IgnoreCE)  # HEAD: "a class label -1 was accepted"


# ------------------------------------------- 3. the size-1 pass swallows a crash
class CenterScale(Layer):
    """y = (x - mean) n/(n-1) over the features; input_shape() says any width, and
    width 1 divides by zero: the bug the size-1 pass exists for."""
    examples = [({}, (3, 4))]
    devices = ("cpu",)

    def input_shape(self):
        return (None,)

    def _forward(self, x):
        k = x.shape[1] / (x.shape[1] - 1)
        y = self._buffer("y", x.shape)
        y[...] = (x - x.mean(1, keepdims=True)) * k
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        n = dl_dy.shape[1]
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = (dl_dy - dl_dy.mean(1, keepdims=True)) * (n / (n - 1))
        return dx


def test_size_one_pass_reports_a_crash_at_a_width_the_layer_declared():
    """testing/layers.py _takes (:360-371) now returns False for ANY exception, so a
    layer whose input_shape() declares the axis free (None) and crashes there passes
    check_all silently (93ff8fe reported it; docs/plugins.md says a ZeroDivisionError
    in _forward comes out as a ConformanceError).  Skipping is right only for a layer
    that never declared its sizes (input_shape() None), trial 28's case."""
    with pytest.raises(ZeroDivisionError):  # the reference: the layer's own width-1 run
        CenterScale().astype("float64").forward(np.ones((3, 1)))
    with pytest.raises(testing.ConformanceError, match="ZeroDivisionError"):
        testing.check_all(CenterScale)  # HEAD: passes


# ------------------------------------------- 4. perceptron: underflow on mixed scales
def _mixed_scale_set():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = np.where(x @ [1.0, -2.0, 0.5] > 0, 1, -1)
    x[:20] = x[20:] * 2.0 ** -600  # tiny, exact copies of the other half
    y[:20] = y[20:]
    return x, y


def test_perceptron_on_half_tiny_rows_is_refused_or_separates():
    """train/perceptron.py:200 refuses only where the set's LARGEST |x| is below
    TINY; with the first rows tiny, w stays ~2**-588 (those rows' updates), its
    products with the tiny rows underflow to 0 and 1000 epochs end unconverged,
    silently (fuzz 33's case).  The rows are scaled copies of separable ones, so any
    w that separates the normal half separates all (checked directly)."""
    from nnumba.train import train_perceptron
    x, y = _mixed_scale_set()
    assert train_perceptron(x[20:], y[20:], bias=False).converged  # the normal half alone
    try:
        got = train_perceptron(x, y, bias=False, max_epochs=1000)
    except NnumbaError:
        return
    assert got.converged and (y * (x @ got.w) > 0).all(), (got.converged, got.updates)


MPI_SCRIPT = textwrap.dedent("""
    import numpy as np
    from nnumba.distributed.perceptron import train_perceptron_distributed
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = np.where(x @ [1.0, -2.0, 0.5] > 0, 1, -1)
    x[:20] = x[20:] * 2.0 ** -600
    y[:20] = y[20:]
    train_perceptron_distributed(x, y, bias=False, max_epochs=5)
    print("TRAINED")
""")


def test_distributed_perceptron_refuses_what_the_serial_one_refuses(tmp_path):
    """The TINY check reads each rank's own shard's largest |x| (distributed/
    perceptron.py prepare -> train/perceptron.py:200): rank 0's shard holds only the
    tiny rows and aborts the job ('inputs no larger than 5.4e-181'), a claim false of
    the set the serial run takes without a word."""
    from nnumba.train import train_perceptron
    mpiexec = Path(sys.executable).with_name("mpiexec")
    if not mpiexec.is_file():
        pytest.skip("needs mpiexec")
    x, y = _mixed_scale_set()
    try:
        train_perceptron(x, y, bias=False, max_epochs=5)
        serial = "TRAINED"
    except NnumbaError:
        serial = "REFUSED"
    script = tmp_path / "w.py"
    script.write_text(MPI_SCRIPT)
    p = subprocess.run([str(mpiexec), "-n", "2", sys.executable, str(script)],
                       capture_output=True, text=True, timeout=120)
    dist = "TRAINED" if p.stdout.count("TRAINED") == 2 else "REFUSED"
    assert dist == serial, p.stdout + p.stderr[-600:]


# ------------------------------------------- 5. summary's suggested input shape
def test_summary_suggests_an_input_shape_the_model_takes():
    """summary.py:186-188 builds the example from input_shape() with 8 for every free
    axis: a Conv2d of kernel 11 (or a MaxPool2d of 9) is told '--input-shape 3,8,8',
    which it then refuses as smaller than the kernel."""
    from nnumba.summary import summarize
    for spec in ([{"type": "Conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 11}],
                 [{"type": "MaxPool2d", "kernel_size": 9}]):
        with pytest.raises(ShapeError) as info:
            summarize(spec)
        shape = re.search(r"--input-shape (\S+)", str(info.value)).group(1)
        summarize(spec, input_shape=tuple(int(v) for v in shape.split(",")))


# ------------------------------------------- 6. check_options_matter's probe name
class PenalisedMSE(Loss):
    """Mean squared error + lam * sum of the squared weights of a MODEL's parameters,
    which a model names INDEX.NAME (docs/plugins.md): it selects names ending
    '.weight'."""
    examples = [({"lam": 0.5}, (4, 2), "values")]

    def __init__(self, lam: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.lam = number("PenalisedMSE", "lam", lam, 0)

    def config(self):
        return {"lam": self.lam, **super().config()}

    def _compute(self, y_hat, y, scale):
        z, t = to_host(y_hat).astype(np.float64), np.asarray(to_host(y), np.float64)
        if t.shape != z.shape:
            raise ShapeError(f"PenalisedMSE: targets {t.shape} for predictions {z.shape}")
        k = z[0].size
        return ((z - t) ** 2).reshape(len(z), -1).sum(1) / k, \
            self.device.to_device((scale * 2 * (z - t) / k).astype(y_hat.dtype))

    def penalty(self, params):
        return self.lam * sum(float((to_host(p.value) ** 2).sum())
                              for name, p in params if name.endswith(".weight"))


def test_check_loss_does_not_warn_of_an_option_used_on_a_models_weights():
    """testing/losses.py _effect probes the penalty with [('weight', ...)], a name no
    model gives (a model's are INDEX.NAME, as '0.weight'): a loss that penalises
    '.weight' parameters, as a model hands them over, gets 'the option lam changes no
    example's loss ... is it used?'."""
    from nnumba import build
    model = build([{"type": "Linear", "in_features": 3, "out_features": 2}])
    params = list(model.params().items()) if isinstance(model.params(), dict) \
        else list(model.params())
    w = next(p for name, p in params if name.endswith("weight"))
    want = 0.5 * float((w.value.astype(np.float64) ** 2).sum())
    assert PenalisedMSE(lam=0.5).penalty(params) == pytest.approx(want, rel=1e-6)
    assert PenalisedMSE().penalty(params) == 0.0  # the option does matter on a model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_loss(PenalisedMSE)
    assert not [w for w in caught if "lam" in str(w.message)], \
        [str(w.message) for w in caught]
