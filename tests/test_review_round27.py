"""Review round 27 of this sitting's later commits: fused steps and the model's lock, old
pickles' steps, the stamp warning for plugins named nnumba_*, classify --size image on
a flat model, check_fused's batch-sum message, knn-radius's k; each test failed at
049981f for the reason in its docstring."""
import importlib
import json
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba import layers as P
from nnumba.errors import ContractError
from nnumba.losses import CrossEntropy



# ------------------------------------------------------------------ 1. fused steps and the lock
def test_a_fused_step_called_alone_during_another_threads_fit_is_refused():
    """5af9960 makes a layer of a model take the model's lock and refuses it while
    another thread fits the model, but a fused step (model.steps[i], a Layer the model
    runs) gets no container flag (fusion.py sets only its label): it takes its own
    lock and runs.  In a free-running race this segfaults in the max-pool's backward,
    the very crash the commit fixed for plain layers (race_fused.py, status 139).
    Reference: the same call on a plain layer of the model is refused (ContractError)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 1, 8, 8))
    Y = rng.integers(0, 3, 64)
    m = nnumba.Sequential(P.Conv2d(1, 2, 3, padding=1), P.Tanh(), P.ReLU(), P.MaxPool2d(2),
                          P.Flatten(), P.Linear(2 * 4 * 4, 3), seed=0).astype(np.float64)
    fused = next(s for s in m.steps if not any(s is layer for layer in m.layers))
    in_step, done = threading.Event(), threading.Event()

    class Pausing(CrossEntropy):
        calls = 0

        def forward(self, y_hat, y):
            out = super().forward(y_hat, y)
            Pausing.calls += 1
            if Pausing.calls == 2:
                in_step.set()
                assert done.wait(30)
            return out

    tr = nnumba.SGDTrainer(m, Pausing(), lr=0.1, batch_size=16, shuffle=False,
                           precompile=False)  # its warm-up runs before fit holds the model
    t = threading.Thread(target=lambda: tr.fit(X, Y, epochs=1))
    t.start()
    try:
        assert in_step.wait(30)
        xb = np.zeros((1, 2, 2, 2))
        with pytest.raises(ContractError):   # the reference: a plain layer is refused
            m.layers[3].forward(xb)
        outcome = "ran"
        try:
            fused.forward(xb)
        except ContractError:
            outcome = "refused"
    finally:
        done.set()
        t.join(60)
    assert outcome == "refused", "a fused step ran alone during another thread's fit"


# ------------------------------------------------------- 2. old pickles whose steps differ
def test_a_model_pickled_with_other_steps_than_todays_fusion_still_runs():
    """7b33f1e: _step_shapes (model.py:240) rebuilds the missing ``_members`` of an old
    pickle from today's fuse(), not from the pickled steps.  A conv net pickled before
    93c9f3c fused Conv2d into ReLU+MaxPool2d has steps [Conv2d, ReLUMaxPool2d, ...];
    today's fuse gives [(0, 1, 2), ...]: every forward now fails with 'Conv2d #0
    returned (2, 4, 16, 16), but output_shape promised (2, 4, 8, 8): a bug in that
    layer' (before 7b33f1e it ran).  Reference: torch on the same weights."""
    torch = pytest.importorskip("torch")
    m = nnumba.Sequential(P.Conv2d(1, 4, 3, padding=1), P.ReLU(), P.MaxPool2d(2),
                          P.Flatten(), P.Linear(4 * 8 * 8, 3), seed=0).astype(np.float64)
    old = m.copy()
    old.steps = [old.layers[0], old.layers[2].fuse_after(old.layers[1]), old.layers[3],
                 old.layers[4]]
    del old.__dict__["_members"]
    old.__dict__.pop("_shape_cache", None)
    old = pickle.loads(pickle.dumps(old))
    x = np.random.default_rng(0).standard_normal((2, 1, 16, 16))
    c, lin = m.layers[0], m.layers[4]
    h = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(c.weight.value),
                                   torch.tensor(c.bias.value), padding=1)
    h = torch.nn.functional.max_pool2d(torch.relu(h), 2).flatten(1)
    want = (h @ torch.tensor(lin.weight.value).T + torch.tensor(lin.bias.value)).numpy()
    np.testing.assert_allclose(old.forward(x), want, rtol=1e-10, atol=1e-12)


# ------------------------------------------------- 3. the stamp warning and plugin names
FORMULA = '''
def twice(x, y, i):
    y[i] = x[i] * y.dtype.type(2)


def twice_grad(g, dx, i):
    dx[i] = g[i] * dx.dtype.type(2)
'''
KERNELS = '''
from numba import njit, prange
from . import formula as f

_twice, _grad = njit(inline="always")(f.twice), njit(inline="always")(f.twice_grad)


@njit(parallel=True, cache=True)
def forward(x, y):
    for i in prange(x.size):
        _twice(x, y, i)


@njit(parallel=True, cache=True)
def backward(g, dx):
    for i in prange(g.size):
        _grad(g, dx, i)
'''


def test_check_all_warns_of_unstamped_kernels_of_a_plugin_named_as_the_guide_names_them(
        tmp_path, monkeypatch):
    """stamps.py:24 skips every foreign function whose module starts with "nnumba"
    (meant for nnumba's own): the guide's plugin is nnumba_spirals, and the shipped
    plugins are nnumba_extra_activations and nnumba_features, so for any plugin named
    that way the warning never comes.  The same package under another name warns
    (tests/test_plugin_trial25.py's stamp25pkg)."""
    pkg = tmp_path / "nnumba_stamp27pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "formula.py").write_text(textwrap.dedent(FORMULA))
    (pkg / "kernels.py").write_text(textwrap.dedent(KERNELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    kernels = importlib.import_module("nnumba_stamp27pkg.kernels")

    class Twice27(Layer):
        """y = 2 x with its own cached kernels."""
        examples = [({}, (3, 4))]
        devices = {"cpu": "nnumba_stamp27pkg.kernels"}
        kept_for_backward = ()

        def _forward(self, x):
            y = self._buffer("y", x.shape)
            self.own.forward(x.reshape(x.size), y.reshape(y.size))
            return y

        def _backward(self, dl_dy):
            if not self.needs_input_grad:
                return None
            dx = self._buffer("dx", dl_dy.shape)
            self.own.backward(dl_dy.reshape(dl_dy.size), dx.reshape(dx.size))
            return dx

    x = np.arange(4.0)
    y = np.empty_like(x)
    kernels.forward(x, y)
    np.testing.assert_array_equal(y, 2 * x)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            testing.check_all(Twice27)
    finally:
        for name in ("nnumba_stamp27pkg.kernels", "nnumba_stamp27pkg.formula",
                     "nnumba_stamp27pkg"):
            sys.modules.pop(name, None)
    assert any("stamp" in str(w.message) for w in caught), [str(w.message) for w in caught]


# ------------------------------------------------------------------- 4. classify --size image
def _flat_model(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    m = nnumba.Sequential(P.Linear(784, 10), seed=0)
    nnumba.save(m, tmp_path / "lin.npz")
    pixels = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "g28.png")
    return m, pixels


def _classify(tmp_path, *extra):
    exe = Path(sys.executable).with_name("nnumba")
    return subprocess.run([str(exe), "classify", str(tmp_path / "g28.png"), "--weights",
                           str(tmp_path / "lin.npz"), "--json", "--top", "10", *extra],
                          capture_output=True, text=True, timeout=120)


def test_classify_size_image_takes_a_gray_image_of_the_right_size_for_a_flat_model(tmp_path):
    """_input_shape (classify.py:229) returns 3 channels for --size image where the
    model neither is named nor stores its shape and has no Conv first (the _flat_shape
    path, which finds 1 x 28 x 28, is skipped): a 28 x 28 gray image for Linear(784)
    fails with 'expected (N, 784), got (1, 2352)' while --size 28,28 runs.
    Reference: W p + b on the image's own pixels / 255."""
    m, pixels = _flat_model(tmp_path)
    r = _classify(tmp_path, "--size", "image")
    assert r.returncode == 0, r.stderr
    scores = {t["index"]: t["score"] for t in json.loads(r.stdout)["top"]}
    lin = m.layers[0]
    want = lin.weight.value.astype(np.float64) @ (pixels.ravel() / 255.0) + lin.bias.value
    np.testing.assert_allclose([scores[i] for i in range(10)], want, rtol=1e-4, atol=1e-4)


def test_classify_json_gives_the_image_size_a_flat_model_saw(tmp_path):
    """2e1587d: --json's "size" is list(x.shape[2:]) taken after x is flattened for a
    model whose first layer is a Linear (classify.py:335), so it reads [] instead of
    the 28 x 28 the image was resized to.  Reference: the image's size from Pillow."""
    _flat_model(tmp_path)
    r = _classify(tmp_path, "--size", "28,28")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == [28, 28]


# -------------------------------------------------------- 5. check_fused's misleading hint
def test_check_fused_names_a_batch_sum_only_where_the_batch_matters(monkeypatch):
    """fused.py:137: the hint 'a sum over the batch: every row, and no race between
    threads' is given for any wrong parameter gradient at a batch of more than 2 rows,
    also at the first, ordinary comparison.  A fused LinearReLU whose weight gradient
    is twice the right one at every batch size (at 2 rows too: the reference) is
    described at 4 rows as a batch-sum race."""
    from nnumba.layers.activation import LinearReLU
    from nnumba.testing.fused import check_fused
    orig = LinearReLU._backward

    def doubled(self, g):
        w = self.params()["weight"]
        before = w.grad.copy()
        out = orig(self, g)
        w.grad[...] = before + 2 * (w.grad - before)
        return out

    monkeypatch.setattr(LinearReLU, "_backward", doubled)
    m = nnumba.Sequential(P.Linear(5, 4), P.ReLU(), P.Linear(4, 2), seed=0)
    with pytest.raises(testing.ConformanceError) as at2:
        check_fused("t", m, np.random.default_rng(0).standard_normal((2, 5)))
    assert "batch" not in str(at2.value)      # wrong at two rows already
    with pytest.raises(testing.ConformanceError) as at4:
        check_fused("t", m, np.random.default_rng(0).standard_normal((4, 5)))
    assert "sum over the batch" not in str(at4.value), str(at4.value)


# --------------------------------------------------------- 6. a bool in a count list option
def test_knn_radius_refuses_a_bool_k():
    """d56098a refuses bools for count options but not inside list options: knn-radius
    with ks=[True] runs as k = 1 and reports keys '0.0/True'."""
    from nnumba.experiments.registry import get_experiment
    with pytest.raises(nnumba.NnumbaError):
        get_experiment("knn-radius").run(fast=True, ks=[True])
