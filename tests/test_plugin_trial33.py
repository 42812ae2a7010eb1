"""Plugin trial 33 (Swish, Huber and a CSV data set written in a hurry from the docs):
a layer returning a view of its input without output_is_view let `out -= target`
rewrite an earlier layer's kept output (wrong gradients, no word from check_all); an
entry point in the group "nnumba.plugins" was ignored silently; a data set loader's
bug exited with status 2, as the user's to fix, and its plain FileNotFoundError named
no data set; own @njit kernels without devices passed check_all."""
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import Layer, hookimpl, testing
from nnumba.layers import Linear, Sigmoid

from fake_distribution import fake_distribution


class _Reshape(Layer):
    """A view of its input; output_is_view forgotten."""
    examples = [({}, (3, 4))]

    def _forward(self, x):
        return x.reshape(x.shape)

    def _backward(self, dl_dy):
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy
        return dx


def test_a_view_of_the_input_keeps_the_gradients_right_and_is_named_by_the_kit():
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    model = nnumba.Sequential(Linear(4, 3), Sigmoid(), _Reshape(), seed=0).astype("float64")
    w, b = model.layers[0].weight.value.copy(), model.layers[0].bias.value.copy()
    out = model.forward(x)
    out -= t  # the caller's to write into (README)
    model.backward(out)
    y = 1 / (1 + np.exp(-(x @ w.T + b)))  # numpy: L = 1/2 |sigmoid(x W^T + b) - t|^2
    ds = (y - t) * y * (1 - y)
    np.testing.assert_allclose(model.layers[0].weight.grad, ds.T @ x, rtol=1e-10)
    np.testing.assert_allclose(model.layers[0].bias.grad, ds.sum(0), rtol=1e-10)
    with pytest.raises(testing.ConformanceError, match="set output_is_view = True"):
        testing.check_all(_Reshape)


def test_an_entry_point_in_a_near_miss_group_is_named(tmp_path):
    env = fake_distribution(tmp_path, "zplug", "nnumba.plugins", '''
        from nnumba import Layer, hookimpl
        class SiLU(Layer):
            """x * sigmoid(x)."""
        @hookimpl
        def nnumba_register_layers():
            return {"SiLU": SiLU}
    ''')
    r = subprocess.run([sys.executable, "-m", "nnumba", "plugins"], capture_output=True,
                       text=True, env=env, timeout=300)
    said = r.stdout + r.stderr
    assert "'nnumba.plugins', which nnumba does not read" in said and "zplug" in said, said


def test_a_plugin_loaders_bug_is_status_1_naming_the_plugin(tmp_path):
    """README: status 2 for what the user can fix, 1 for a bug (a plugin's): a model
    factory's ZeroDivisionError was 1, a loader's 2."""
    env = fake_distribution(tmp_path, "zplug", "nnumba", '''
        from nnumba import hookimpl
        def zdiv(root=None, download=False):
            """A loader with a bug."""
            return 1 / 0
        @hookimpl
        def nnumba_register_datasets():
            return {"zdiv-data": zdiv}
    ''')
    r = subprocess.run([sys.executable, "-m", "nnumba", "train", "--dataset", "zdiv-data",
                        "--model", "logreg"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 1, r.stderr
    assert "ZeroDivisionError" in r.stderr and "a bug in plugin 'zplug'" in r.stderr
    assert "zplug.py:5" in r.stderr and "Traceback" not in r.stderr


def test_a_loaders_missing_file_names_the_data_set():
    def iris_cwd(root=None, download=False):
        """Reads its table from the current folder."""
        return np.loadtxt("iris_like_not_here.csv", delimiter=",")
    hooks = types.SimpleNamespace(nnumba_register_datasets=hookimpl(lambda: {"iris-cwd": iris_cwd}))
    nnumba.register_plugin(hooks, "trial33cwd")
    try:
        from nnumba.data import load_dataset
        with pytest.raises(FileNotFoundError, match="data set 'iris-cwd' .*not found"):
            load_dataset("iris-cwd")
    finally:
        nnumba.unregister_plugin("trial33cwd")


def test_own_kernels_without_devices_are_warned_about():
    module = types.ModuleType("trial33_fast")
    exec(textwrap.dedent('''
        import numpy as np
        from numba import njit
        from nnumba import Layer

        @njit
        def silu(x, y):
            for i in range(x.size):
                y[i] = x[i] / (1 + np.exp(-x[i]))

        class FastSwish(Layer):
            """Forward only; devices forgotten."""
            examples = [({}, (3, 4))]
            has_gradient = False

            def _forward(self, x):
                y = self._buffer("y", x.shape)
                silu(x.reshape(x.size), y.reshape(y.size))
                return y
    '''), module.__dict__)
    sys.modules["trial33_fast"] = module
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            testing.check_all(module.FastSwish)
        assert any("names no devices, yet calls CPU kernels of its own (silu)"
                   in str(w.message) for w in said)
        module.FastSwish.devices = ("cpu",)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            testing.check_all(module.FastSwish)
        assert not any("names no devices" in str(w.message) for w in said)
    finally:
        del sys.modules["trial33_fast"]
