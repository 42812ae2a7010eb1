"""Review 35 of the sitting's own changes (1818fec..49260ca): the torch import's sorted
mappings, MPI state averaging, the kits' new rules, add_param's starts, long names."""
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba import Layer
from nnumba.errors import ContractError, NnumbaError, NonFiniteError
from nnumba.layers import Linear, ReLU


# ---- F1: a mapping that is sorted by name AND in module order is now reordered ----------
def test_f1_name_sorted_mapping_in_module_order_still_loads():
    """torch.nn.ModuleDict({"16": Linear(4, 16), "8": Linear(16, 8)}) (no biases): its
    state_dict is ['heads.16.weight', 'heads.8.weight'], module order and name order at
    once.  torch_import.py:269 takes any sorted mapping for safetensors' output and
    re-sorts the numbers numerically, so the 8-head goes first: refused.  At 1818fec it
    loaded (a mapping keeps the state_dict's order, as the module docstring says)."""
    from nnumba.torch_import import load_torch_weights
    rng = np.random.default_rng(0)
    state = {"heads.16.weight": rng.normal(size=(16, 4)).astype(np.float32),
             "heads.8.weight": rng.normal(size=(8, 16)).astype(np.float32)}
    model = nnumba.Sequential(Linear(4, 16, bias=False), ReLU(), Linear(16, 8, bias=False),
                              seed=0)
    load_torch_weights(model, state)
    np.testing.assert_array_equal(model.layers[0].weight.value, state["heads.16.weight"])
    np.testing.assert_array_equal(model.layers[2].weight.value, state["heads.8.weight"])


# ---- F2: safetensors' own loader output is missed where no weight/bias pair shows it ----
def test_f2_safetensors_load_file_mapping_of_a_bias_free_model_loads_as_the_file_does(tmp_path):
    """safetensors.torch.load_file returns names sorted ('classifier' < 'features'); the
    commit rebuilds the order only where the sorted names differ from _sort_key's order
    with no ranks, which needs a weight/bias pair or an index >= 10.  A bias-free
    features/classifier model's mapping is then read in name order and refused, while
    the very same .safetensors file loads."""
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    from nnumba.torch_import import load_torch_weights
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Linear(4, 8, bias=False)
            self.classifier = torch.nn.Linear(8, 3, bias=False)

    net = Net()
    path = tmp_path / "net.safetensors"
    st.save_file(net.state_dict(), str(path))
    tensors = st.load_file(str(path))  # sorted by name, as the commit says
    model = nnumba.Sequential(Linear(4, 8, bias=False), ReLU(), Linear(8, 3, bias=False), seed=0)
    load_torch_weights(model, tensors)
    np.testing.assert_array_equal(model.layers[0].weight.value,
                                  net.features.weight.detach().numpy())
    np.testing.assert_array_equal(model.layers[2].weight.value,
                                  net.classifier.weight.detach().numpy())


# ---- F3: MPI averaging changes state that is the same on every rank ---------------------
_MPIEXEC = (str(Path(sys.executable).with_name("mpiexec"))
            if Path(sys.executable).with_name("mpiexec").is_file() else shutil.which("mpiexec"))

_WORKER = textwrap.dedent('''
    import sys
    import numpy as np
    import nnumba
    from nnumba import Layer
    from nnumba.distributed import DistributedSGDTrainer
    from nnumba.distributed.comm import as_communicator
    from nnumba.layers import Linear
    from nnumba.losses import CrossEntropy

    class FixedScale(Layer):
        """y = x * s, s a constant buffer (trainable=False) the layer never moves."""
        def __init__(self, features=4):
            super().__init__()
            self.s = self.add_param("s", (features,), trainable=False)
        def reset_parameters(self, rng):
            self.s.value[...] = rng.uniform(0.5, 1.5, self.s.value.shape)
        def _forward(self, x):
            y = self._buffer("y", x.shape); y[...] = x * self.s.value; return y
        def _backward(self, g):
            dx = self._buffer("dx", g.shape); dx[...] = g * self.s.value; return dx

    comm = as_communicator(None)
    model = nnumba.Sequential(FixedScale(64), Linear(64, 3), seed=0)
    before = model.layers[0].s.value.copy()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 64)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    DistributedSGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=20, comm=comm,
                          progress=False).fit(x, y, epochs=10)
    if comm.rank == 0:
        np.save(sys.argv[1], np.stack([before, model.layers[0].s.value]))
''')


@pytest.mark.skipif(_MPIEXEC is None, reason="needs mpiexec")
def test_f3_constant_state_is_left_as_it_is_over_three_ranks(tmp_path):
    """trainers.py:_epoch sums every trainable=False array over the ranks and divides
    by the number of ranks: for 3 ranks (w + w + w) / 3 != w for ~15 % of float32
    values, so a constant buffer that is already equal on every rank drifts by an ulp
    per epoch (5 of 64 values after 10 epochs), unlike one process's.  At 1818fec it
    stayed exact."""
    pytest.importorskip("mpi4py")
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    out = tmp_path / "s.npy"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    done = subprocess.run([_MPIEXEC, "-n", "3", sys.executable, str(script), str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = np.load(out)
    np.testing.assert_array_equal(after, before)


# ---- F4: the kit excuses a bare exception in output_shape of an undeclared layer --------
class _LayerNormBareRefusal(Layer):
    """Normalises each sample over its last axis; input_shape() None; a width other
    than its own is refused in output_shape, but with a bare ValueError."""
    examples = [({"width": 4}, (3, 4)), ({"width": 3}, (2, 5, 3))]

    def __init__(self, width=4):
        super().__init__()
        self.width = width

    def config(self):
        return {"width": self.width}

    def output_shape(self, shape):
        if shape[-1] != self.width:
            raise ValueError(f"width {shape[-1]} != {self.width}")
        return tuple(shape)

    def _forward(self, x):
        xc = x - x.mean(-1, keepdims=True)
        inv = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)
        self._xh, self._inv = xc * inv, inv
        y = self._buffer("y", x.shape)
        y[...] = self._xh
        return y

    def _backward(self, g):
        xh = self._xh
        dx = self._buffer("dx", g.shape)
        dx[...] = self._inv * (g - g.mean(-1, keepdims=True)
                               - xh * (g * xh).mean(-1, keepdims=True))
        return dx


def test_f4_check_all_refuses_a_bare_exception_in_output_shape_too():
    """testing/layers.py:429-431 still returns None ("no size to check") where an
    undeclared layer's output_shape raises a bare exception at the size-1 pass; only a
    bare exception from forward is now a failure (_takes).  This layer passes check_all,
    and a user's Sequential(layer).forward at another width gets a bare ValueError."""
    from nnumba.testing import ConformanceError, check_all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConformanceError):
            check_all(_LayerNormBareRefusal)


# ---- F5: _check_declared misses an ndarray or a mapping from input_shape() -------------
def _declaring(want):
    class D(Layer):
        def input_shape(self):
            return want

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            y[...] = x
            return y

        def _backward(self, g):
            d = self._buffer("d", g.shape)
            d[...] = g
            return d
    return D()


@pytest.mark.parametrize("want", [np.array([3, 4]), {"a": 1}], ids=["ndarray", "dict"])
def test_f5_malformed_input_shape_is_a_contract_error(want):
    """validation.py:_fits_any catches TypeError only; _fits's `if want and ...` raises
    ValueError for an ndarray and KeyError for a dict, which escape bare."""
    with pytest.raises(ContractError):
        _declaring(want).forward(np.zeros((2, 3, 5), np.float32))


# ---- F6: add_param's overflow check comes after the cast that warns ----------------------
def test_f6_add_param_start_value_past_float32_is_nonfinite_error_under_warnings_as_errors():
    """validation.py:param_start casts (np.ascontiguousarray, RuntimeWarning 'overflow
    encountered in cast') before check_cast: with warnings as errors (pytest -W error,
    a plugin's CI) a bare RuntimeWarning escapes instead of the NonFiniteError."""
    class P(Layer):
        def __init__(self):
            super().__init__()
            self.w = self.add_param("w", np.array([1e39]))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteError):
            P()


# ---- F7: torch_import reads a too-long name with a bare OSError --------------------------
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_f7_torch_weights_path_too_long_is_an_nnumba_error(tmp_path, suffix):
    """The commit made a name too long an nnumba error in paths.regular_file and
    data/arrays.py, but torch_import.read_state_dict (path.exists(), line 64) and
    is_nnumba_npz (npz.py) still raise OSError [Errno 36]."""
    from nnumba.torch_import import load_torch_weights
    model = nnumba.Sequential(Linear(2, 2), seed=0)
    with pytest.raises(NnumbaError):
        load_torch_weights(model, str(tmp_path / ("a" * 300 + suffix)))


# ---- F8: the kernel cases never call sgd_step at momentum 0 ------------------------------
def test_f8_kernel_cases_cover_sgd_step_at_momentum_zero():
    """The momentum-0 branch is new in formulas.sgd (velocity left alone), but
    kernels/cases.py:_sgd calls sgd_step at momentum 0.9 only, so run_twin (simulator
    and real-GPU twin tests) never runs it on the CUDA set, nor would it catch a device
    plugin's kernel set that still writes v = g there."""
    from nnumba.kernels import cases
    assert any(float(call.args[4]) == 0.0 for call in cases.calls("sgd_step"))


# ---- F9: a 0-d float start value becomes shape (1,) ---------------------------------------
def test_f9_zero_d_start_value_keeps_its_shape():
    """param_start returns np.ascontiguousarray(start), which makes a 0-d array 1-d: a
    scalar parameter (a temperature, torch's nn.Parameter(torch.tensor(1.0)), shape ())
    has shape (1,), so a torch state_dict's () tensor no longer fits it."""
    class T(Layer):
        def __init__(self):
            super().__init__()
            self.t = self.add_param("t", np.array(0.5))

    assert T().t.value.shape == np.array(0.5).shape == ()


def test_f2_a_sorted_mapping_that_fits_in_another_order_too_warns(tmp_path):
    """Two bias-free siblings of one shape, named features and classifier: safetensors'
    load_file returns classifier first, which fits the model as well as the module order
    does; it loaded classifier's weights into layer 0 silently.  (The file itself is an
    error: it fits in 2 orders.)"""
    from nnumba.torch_import import load_torch_weights
    rng = np.random.default_rng(0)
    tensors = {"classifier.weight": rng.normal(size=(4, 4)).astype(np.float32),
               "features.weight": rng.normal(size=(4, 4)).astype(np.float32)}
    model = nnumba.Sequential(Linear(4, 4, bias=False), ReLU(), Linear(4, 4, bias=False),
                              seed=0)
    with pytest.warns(UserWarning, match="pass the file's path"):
        load_torch_weights(model, tensors)
    in_order = {"0.weight": tensors["features.weight"], "2.weight": tensors["classifier.weight"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sorted, and no other order fits: no warning
        load_torch_weights(model, in_order)
    np.testing.assert_array_equal(model.layers[0].weight.value, in_order["0.weight"])
