"""Plugin trial 28 (a text plugin: hashed embedding, masked mean, label-smoothed
cross-entropy): the loss kit feeds labels outside their kind, the layer kit feeds an id
layer ids out of range on every device, and an option that changes no example's loss is
warned of."""
import warnings

import numpy as np
import pytest

from nnumba import LabelError, Layer, Loss, ShapeError, testing
from nnumba.device import to_host
from nnumba.errors import NnumbaError
from nnumba.layers.validation import integer, number


# ---------------------------------------------------------------- finding 1: labels
def _log_softmax(z):
    m = z.max(1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(1, keepdims=True))


class UncheckedSmoothCE(Loss):
    """Label-smoothed cross-entropy (torch's) that checks the labels' shape and dtype
    but not their range: a label -1 indexes the last class (numpy wraps it), as a
    kernel without bounds checks would read whatever lies there."""

    target_dtype = "int64"
    examples = [({}, (5, 4), "classes"), ({"smoothing": 0.3, "reduction": "sum"}, (3, 2), "classes")]

    def __init__(self, smoothing: float = 0.1, reduction: str = "mean"):
        super().__init__(reduction)
        self.smoothing = number("UncheckedSmoothCE", "smoothing", smoothing, 0, 1)

    def config(self):
        return {"smoothing": self.smoothing, **super().config()}

    def _compute(self, y_hat, y, scale):
        if y_hat.ndim != 2:
            raise ShapeError(f"UncheckedSmoothCE: expected (N, C), got {y_hat.shape}")
        z, labels = to_host(y_hat).astype(np.float64), to_host(y)
        n, c = z.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise LabelError(f"UncheckedSmoothCE: expected {n} integer labels")
        t = np.full((n, c), self.smoothing / c)
        t[np.arange(n), labels] += 1 - self.smoothing        # no range check
        lp = _log_softmax(z)
        return -(t * lp).sum(1), self.device.to_device(
            (scale * (np.exp(lp) - t)).astype(y_hat.dtype))


class UncheckedSoftMargin(Loss):
    """log(1 + exp(-y z)) (torch's soft_margin_loss) for y in {-1, +1}, with no check
    that y is a sign: y = 0 gives log 2 and no gradient, silently."""

    examples = [({}, (6, 1), "signs")]

    def _compute(self, y_hat, y, scale):
        z = to_host(y_hat).astype(np.float64)
        yy = np.asarray(to_host(y), np.float64).reshape(z.shape)
        losses = np.logaddexp(0, -yy * z).reshape(len(z), -1).sum(1)
        grad = scale * (-yy / (1 + np.exp(yy * z)))
        return losses, self.device.to_device(grad.astype(y_hat.dtype))


def test_check_loss_feeds_labels_outside_the_target_kind():
    """check_loss never gives a "classes" loss a label outside [0, C) nor a "signs"
    loss a label outside {-1, +1} (testing/losses.py:16-25 draws them in range only,
    and :119-126 test dtype, empty batch and shape errors only), although
    docs/plugins.md ('A loss') tells the loss to raise LabelError for them and every
    built-in does.  Both losses equal torch on valid labels and accept invalid ones."""
    torch = pytest.importorskip("torch")  # the reference
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    ref = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(z), torch.tensor(y))
    assert UncheckedSmoothCE().forward(z, y) == pytest.approx(ref.item(), rel=1e-12)
    bad = y.copy(); bad[0] = -1
    with pytest.raises((IndexError, RuntimeError)):   # torch refuses the label -1 ...
        torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(z), torch.tensor(bad))
    assert np.isfinite(UncheckedSmoothCE().forward(z, bad))   # ... this loss takes it
    zs, s = rng.normal(size=(6, 1)), np.where(rng.random((6, 1)) < .5, -1, 1)
    ref = torch.nn.functional.soft_margin_loss(torch.tensor(zs), torch.tensor(s, dtype=torch.float64))
    assert UncheckedSoftMargin().forward(zs, s) == pytest.approx(ref.item(), rel=1e-12)
    s0 = s.copy(); s0[0] = 0
    assert np.isfinite(UncheckedSoftMargin().forward(zs, s0))
    for cls in (UncheckedSmoothCE, UncheckedSoftMargin):
        with pytest.raises(testing.ConformanceError, match="label|target"):
            testing.check_loss(cls)


# ---------------------------------------------------------------- finding 2: ids
class IdError(NnumbaError, ValueError):
    pass


class HashEmb(Layer):
    """ids (N, T) as floats -> w[id % B]: one hash.  Ids must lie in [0, num_ids)."""

    examples = [({"num_ids": 9, "buckets": 4, "dim": 3}, (3, 5))]
    devices = ("cpu",)
    kept_for_backward = ("_x", "_rows")
    check_range = True

    def __init__(self, num_ids: int, buckets: int, dim: int):
        super().__init__()
        self.num_ids = integer("HashEmb", "num_ids", num_ids)
        self.buckets = integer("HashEmb", "buckets", buckets)
        self.weight = self.add_param("weight", (self.buckets, integer("HashEmb", "dim", dim)))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.normal(size=self.weight.value.shape)

    def input_shape(self):
        return (None,)

    def output_shape(self, s):
        return (s[0], self.weight.value.shape[1])

    def example_input(self, shape, rng):
        return rng.integers(0, self.num_ids, size=shape).astype(np.float64)

    def invalid_input(self, shape, rng):   # proposed hook: a batch the layer must refuse
        x = self.example_input(shape, rng)
        x.flat[rng.integers(x.size)] = rng.choice([-1, self.num_ids])
        return x

    def _forward(self, x):
        ids = np.floor(x + 0.5).astype(np.int64)
        if self.check_range and ((ids < 0) | (ids >= self.num_ids)).any():
            raise IdError(f"{self.label}: ids must lie in [0, {self.num_ids})")
        self._x, self._rows = x, ids % self.buckets
        y = self._buffer("y", x.shape + (self.weight.value.shape[1],))
        y[...] = self.weight.value[self._rows]
        return y

    def _backward(self, dl_dy):
        np.add.at(self.weight.grad, self._rows, dl_dy)
        if self.needs_input_grad:
            return self._buffer("dx", self._x.shape, zero=True)
        return None


class HashEmbNoCheck(HashEmb):
    check_range = False


def test_check_all_feeds_an_id_layer_ids_out_of_range():
    """docs/plugins.md ('A layer with parameters', _forward) says an id layer 'refuses
    an id out of range with an error that names it (self.label)'; example_input lets
    it pass the kits, but no kit ever gives it an id out of range
    (testing/inputs.py:12-35 draws only what example_input returns), so a layer that
    reads any id passes check_all.  The layer declares what it refuses with a proposed
    invalid_input(shape, rng) hook (its example_input's ids are all integers too, so a
    kit probing one past their range would catch it as well)."""
    torch = pytest.importorskip("torch")  # the reference
    layer = HashEmbNoCheck(num_ids=9, buckets=4, dim=3).astype("float64")
    x = np.array([[0., 3, 8, 5, 2]])
    ref = torch.nn.functional.embedding(torch.tensor(x, dtype=torch.int64) % 4,
                                        torch.tensor(layer.weight.value))
    np.testing.assert_array_equal(layer.forward(x), ref.numpy())   # right on valid ids
    with pytest.raises(IndexError):                                # torch refuses id 9 of 9
        torch.nn.functional.embedding(torch.tensor([9]), torch.zeros(9, 3))
    assert np.isfinite(layer.forward(np.array([[9., -1, 0, 0, 0]]))).all()   # this takes it
    testing.check_all(HashEmb)                       # the checked layer passes
    with pytest.raises(testing.ConformanceError):
        testing.check_all(HashEmbNoCheck)


# ---------------------------------------------------------------- finding 3: options
class SmoothingIgnored(UncheckedSmoothCE):
    """Range-checked, but the smoothing option is dropped: plain cross-entropy."""

    examples = [({"smoothing": 0.25}, (5, 4), "classes"),
                ({"smoothing": 0.6, "reduction": "sum"}, (3, 3), "classes")]

    def _compute(self, y_hat, y, scale):
        if y_hat.ndim != 2:
            raise ShapeError(f"SmoothingIgnored: expected (N, C), got {y_hat.shape}")
        labels = to_host(y)
        n, c = y_hat.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise LabelError(f"SmoothingIgnored: expected {n} integer labels")
        if ((labels < 0) | (labels >= c)).any():
            raise LabelError("SmoothingIgnored: label out of range")
        z = to_host(y_hat).astype(np.float64)
        t = np.zeros((n, c)); t[np.arange(n), labels] = 1
        lp = _log_softmax(z)
        return -(t * lp).sum(1), self.device.to_device(
            (scale * (np.exp(lp) - t)).astype(y_hat.dtype))


def test_check_loss_notices_an_option_that_changes_nothing():
    """Every example of this loss sets smoothing away from its default, and the loss
    ignores it (torch's label_smoothing=0.25 differs); check_loss passes it, silently:
    it checks config() round trips and the reductions, never that an option an example
    sets changes the loss (testing/losses.py:52-126).  A warning is enough."""
    torch = pytest.importorskip("torch")  # the reference
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    ref = torch.nn.CrossEntropyLoss(label_smoothing=0.25)(torch.tensor(z), torch.tensor(y))
    assert abs(SmoothingIgnored(smoothing=0.25).forward(z, y) - ref.item()) > 1e-3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            testing.check_loss(SmoothingIgnored)
        except testing.ConformanceError as exc:
            assert "smoothing" in str(exc), exc
            return
    assert any("smoothing" in str(w.message) for w in caught), \
        "check_loss said nothing of an option that changes nothing"
