"""Plugin trial 31 (self-attention written from the docs alone): the float32 check
failed a key bias whose gradient cancels to 0 (its tolerance scaled with that zero), no
kit fed large inputs (a softmax or cross-entropy without the row maximum subtracted
passed), and a kernel module that did not import was called a refused input.  The
inline layers are checked first against torch autograd or SciPy."""
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from nnumba import Layer, Loss, testing
from nnumba.device import to_host
from nnumba.errors import LabelError, ShapeError
from nnumba.layers.validation import integer


# --------------------------------------------------------------------------- finding 1
class KeyBiasAttention(Layer):
    """Single-head self-attention over (N, T, D) with a key bias (as torch's in_proj_bias
    has): y = softmax(q k^T / sqrt(D)) v, q = x Wq^T, k = x Wk^T + bk, v = x Wv^T."""

    examples = [({"dim": 4}, (2, 3, 4)), ({"dim": 3}, (3, 4, 3))]
    devices = ("cpu",)
    kept_for_backward = ("_x", "_q", "_k", "_v", "_p")

    def __init__(self, dim: int):
        super().__init__()
        self.dim = integer("KeyBiasAttention", "dim", dim)
        self.wq = self.add_param("wq", (self.dim, self.dim))
        self.wk = self.add_param("wk", (self.dim, self.dim))
        self.wv = self.add_param("wv", (self.dim, self.dim))
        self.bk = self.add_param("bk", (self.dim,))

    def reset_parameters(self, rng):
        b = 1 / np.sqrt(self.dim)
        for p in (self.wq, self.wk, self.wv, self.bk):
            p.value[...] = rng.uniform(-b, b, p.value.shape)

    def input_shape(self):
        return (None, self.dim)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def _forward(self, x):
        c = x.dtype.type(1 / np.sqrt(self.dim))
        q = x @ self.wq.value.T
        k = x @ self.wk.value.T + self.bk.value
        v = x @ self.wv.value.T
        s = (q @ k.transpose(0, 2, 1)) * c
        s = s - s.max(axis=2, keepdims=True)
        e = np.exp(s)
        p = e / e.sum(axis=2, keepdims=True)
        y = self._buffer("y", x.shape)
        y[...] = p @ v
        self._x, self._q, self._k, self._v, self._p = x, q, k, v, p
        return y

    def _backward(self, g):
        c = g.dtype.type(1 / np.sqrt(self.dim))
        x, q, k, v, p = self._x, self._q, self._k, self._v, self._p
        dv = p.transpose(0, 2, 1) @ g
        dp = g @ v.transpose(0, 2, 1)
        ds = p * (dp - (dp * p).sum(axis=2, keepdims=True)) * c
        dq = ds @ k
        dk = ds.transpose(0, 2, 1) @ q
        d = self.dim
        self.wq.grad[...] += dq.reshape(-1, d).T @ x.reshape(-1, d)
        self.wk.grad[...] += dk.reshape(-1, d).T @ x.reshape(-1, d)
        self.wv.grad[...] += dv.reshape(-1, d).T @ x.reshape(-1, d)
        self.bk.grad[...] += dk.reshape(-1, d).sum(axis=0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", x.shape)
        dx[...] = dq @ self.wq.value + dk @ self.wk.value + dv @ self.wv.value
        return dx


def _torch_attention(layer, x, g):
    torch = pytest.importorskip("torch")
    t = {n: torch.tensor(p.value, dtype=torch.float64, requires_grad=True)
         for n, p in layer.params().items()}
    xt = torch.tensor(x, requires_grad=True)
    q, k, v = xt @ t["wq"].T, xt @ t["wk"].T + t["bk"], xt @ t["wv"].T
    y = torch.softmax(q @ k.transpose(1, 2) / np.sqrt(layer.dim), dim=2) @ v
    y.backward(torch.tensor(g))
    return y.detach().numpy(), xt.grad.numpy(), {n: p.grad.numpy() for n, p in t.items()}


def test_keybias_attention_matches_torch_in_float64():
    """The reference check: the inline layer is right (the key bias's gradient is 0)."""
    rng = np.random.default_rng(0)
    layer = KeyBiasAttention(4).astype("float64")
    layer.reset_parameters(rng)
    x, g = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 4))
    layer.zero_grad()
    y = np.array(layer.forward(x))
    layer.needs_input_grad = True
    dx = np.array(layer.backward(g))
    ty, tdx, tgrads = _torch_attention(layer, x, g)
    np.testing.assert_allclose(y, ty, atol=1e-13)
    np.testing.assert_allclose(dx, tdx, atol=1e-13)
    for name, p in layer.params().items():
        np.testing.assert_allclose(p.grad, tgrads[name], atol=1e-13)
    assert np.abs(tgrads["bk"]).max() < 1e-14    # softmax ignores a constant per row


def test_check_all_takes_an_attention_key_bias_whose_gradient_is_exactly_zero():
    """Finding 1: the float32 check's tolerance is 64 x max(spread, EPS32 x |ref|) per
    quantity; for a gradient that is 0 whatever the inputs (the key bias), both are
    ~1e-17, so float32's ordinary rounding of the cancelling terms (~1e-8, as torch's
    own float32 attention gives) fails a correct layer."""
    rng = np.random.default_rng(1)
    layer = KeyBiasAttention(4)                       # float32, as torch float32 does it
    layer.reset_parameters(rng)
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    g = rng.normal(size=(2, 3, 4)).astype(np.float32)
    _, _, tgrads = _torch_attention(layer.astype("float64"), x.astype(np.float64),
                                    g.astype(np.float64))
    assert np.abs(tgrads["bk"]).max() < 1e-14        # the true gradient: 0
    testing.check_all(KeyBiasAttention)              # ConformanceError at HEAD


# --------------------------------------------------------------------------- finding 2
class NaiveSoftmax(Layer):
    """softmax over the last axis WITHOUT subtracting the row maximum (a planted bug):
    exp overflows for inputs above ~88 in float32, ~709 in float64."""

    examples = [({}, (3, 4)), ({}, (2, 3, 5))]
    devices = ("cpu",)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        e = np.exp(x)
        y[...] = e / e.sum(axis=-1, keepdims=True)
        self._y = y
        return y

    def _backward(self, g):
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", g.shape)
        dx[...] = self._y * (g - (g * self._y).sum(axis=-1, keepdims=True))
        return dx


def test_check_all_feeds_large_inputs_a_softmax_overflows_on():
    """Finding 2: docs/plugins.md says the kit 'feeds values far past the range of its
    draws'; it does so only for a layer with its own example_input, and only to
    x +- (2 max|x| + 1).  A softmax without max-subtraction passes every kit, yet gives
    NaN where torch's softmax is finite."""
    x = np.array([[100.0, 0.0, -3.0]], np.float32)
    with np.errstate(all="ignore"):
        y = to_host(NaiveSoftmax().forward(x))
    assert np.isfinite(softmax(x.astype(np.float64), axis=1)).all()
    assert not np.isfinite(y).all()                  # the planted bug is real
    with pytest.raises(testing.ConformanceError):
        with np.errstate(all="ignore"):
            testing.check_all(NaiveSoftmax)          # passes at HEAD


class NaiveCrossEntropy(Loss):
    """Softmax cross-entropy computed in the predictions' dtype without the max shift."""

    target_dtype = "int64"
    examples = [({}, (5, 4), "classes"), ({"reduction": "sum"}, (3, 2), "classes")]

    def _compute(self, y_hat, y, scale):
        name = type(self).__name__
        if y_hat.ndim != 2:
            raise ShapeError(f"{name} loss: expected (N, C), got {y_hat.shape}")
        z, labels = to_host(y_hat), to_host(y)
        n, c = z.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise LabelError(f"{name} loss: expected {n} integer labels, got {labels.shape}")
        if ((labels < 0) | (labels >= c)).any():
            raise LabelError(f"{name} loss: class labels must be in [0, {c})")
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        losses = -np.log(p[np.arange(n), labels]).astype(np.float64)
        grad = p.copy()
        grad[np.arange(n), labels] -= 1
        return losses, self.device.to_device((scale * grad).astype(y_hat.dtype))


def test_check_loss_feeds_large_logits():
    """Finding 2b: README says CrossEntropy is 'stable for large logits'; check_loss never
    tries large logits, so a plugin cross-entropy that overflows passes."""
    z = np.array([[100.0, 0.0]], np.float32)
    ref = -log_softmax(z.astype(np.float64), axis=1)[0, 0]
    with np.errstate(all="ignore"):
        got = NaiveCrossEntropy().forward(z, np.array([0]))
    assert np.isfinite(ref) and not np.isfinite(got)  # the planted bug is real
    with pytest.raises(testing.ConformanceError):
        with np.errstate(all="ignore"):
            testing.check_loss(NaiveCrossEntropy)    # passes at HEAD


# --------------------------------------------------------------------------- finding 3
class BrokenKernels(Layer):
    """A layer whose own-kernel module (devices) does not import."""

    examples = [({}, (2, 3))]
    devices = {"cpu": "nnumba_trial31_no_such_module"}

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        self.own.forward(x, y)
        return y


def test_a_kernel_module_that_does_not_import_is_not_called_a_refused_input():
    """Finding 3: the kit reports the DeviceError of an unimportable kernel module as
    'refused the example input ...; an example gives the input shape with the batch axis
    first ... an embedding's ids draws its own with example_input', with nothing
    chained; plugins.md says the author's exception comes chained (raise ... from)."""
    with pytest.raises(testing.ConformanceError) as info:
        testing.check_all(BrokenKernels)
    msg = str(info.value)
    assert "nnumba_trial31_no_such_module" in msg
    assert "refused the example input" not in msg and "example_input(shape" not in msg
    chain, e = [], info.value
    while e is not None:
        chain.append(type(e).__name__)
        e = e.__cause__ or e.__context__
    assert "ModuleNotFoundError" in chain or "DeviceError" in chain[1:]
