"""Trial 44: a plugin written from README.md and docs/plugins.md alone. What it
missed: PyTorch weights had no documented public entry point, and check_all repeated
one warning once per example it ran."""
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.layers.validation import integer


def test_load_torch_weights_is_public_and_matches_torch(tmp_path):
    """docs/plugins.md named `load_torch_weights` without a module; `nnumba` had no
    such name. Reference: torch's own output on the weights loaded."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    np.savez(tmp_path / "sd.npz", **{k: v.detach().numpy() for k, v in net.state_dict().items()})
    model = nnumba.build([{"type": "Linear", "in_features": 5, "out_features": 4},
                          {"type": "ReLU"},
                          {"type": "Linear", "in_features": 4, "out_features": 3}])
    nnumba.load_torch_weights(model.astype(np.float64), tmp_path / "sd.npz")
    x = np.random.default_rng(0).standard_normal((6, 5))
    with torch.no_grad():
        want = net.double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-12, atol=1e-12)


class _KeepsDerivedCopy(Layer):
    """A numpy PReLU-like layer that also keeps a float64 copy of its input unnamed."""
    examples = [({"channels": 3}, (4, 3)), ({"channels": 2}, (5, 2))]
    devices = ("cpu",)

    def __init__(self, channels: int):
        super().__init__()
        self.channels = integer("_KeepsDerivedCopy", "channels", channels)
        self.slope = self.add_param("slope", (self.channels,))

    def reset_parameters(self, rng):
        self.slope.value[...] = 0.25

    def input_shape(self):
        return (self.channels,)

    def _forward(self, x):
        self._x64 = x.astype(np.float64)          # not in kept_for_backward
        y = self._buffer("y", x.shape)
        y[...] = np.where(x > 0, x, self.slope.value * x)
        self._x = x
        return y

    def _backward(self, dl_dy):
        x = self._x
        self.slope.grad[...] += np.where(x > 0, 0, x * dl_dy).sum(axis=0)
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = np.where(x > 0, dl_dy, self.slope.value * dl_dy)
        return dx


def test_check_all_warns_once_per_unnamed_kept_attribute():
    """check_all gave the same `_x64` warning once per example and size-one variant."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing.check_all(_KeepsDerivedCopy)
    ours = [w for w in caught if "_x64" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert ours[0].filename == __file__  # pointing at the caller of check_all
