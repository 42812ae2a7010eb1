"""Review round 22, second part (a review of the round's own changes): the CUDA
simulator's outputs written by the caller, a pickled model's gradients, a Dropout
subclass with its own argument names, an estimator pickled before input_shape.
References: closed-form gradients, the training rows, the subclass's signature,
scikit-learn's get_params and clone."""
import importlib.util
import io
import inspect
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba
from nnumba.layers.dropout import Dropout


# ---- 1. the CUDA simulator: a caller's write into forward's output changes the gradient --
_SIM_SCRIPT = textwrap.dedent("""
    import numpy as np
    from nnumba import Sequential
    from nnumba.device import get_device, may_share_memory, to_host
    from nnumba.layers.activation import Sigmoid
    from nnumba.layers.linear import Linear

    dev = get_device("cuda")
    a = dev.to_device(np.zeros(8, np.float32))
    assert may_share_memory(a, a), "an array shares memory with itself"
    assert may_share_memory(a, a.reshape(2, 4)), "and with a reshaped view of itself"

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    t = rng.standard_normal((4, 2)).astype(np.float32)
    m = Sequential(Linear(3, 2), Sigmoid(), seed=0).to("cuda")
    W = to_host(m.layers[0].weight.value).astype(np.float64)
    b = to_host(m.layers[0].bias.value).astype(np.float64)
    out = m.forward(dev.to_device(x))
    out.copy_to_device(to_host(out) - t)   # documented: the caller may write into it
    m.zero_grad()
    m.backward(out)
    # closed form: s = sigmoid(x W^T + b), dL/ds = s - t, dz = (s - t) s (1 - s)
    s = 1 / (1 + np.exp(-(x @ W.T + b)))
    dz = (s - t) * s * (1 - s)
    want = np.concatenate([(dz.T @ x).ravel(), dz.sum(0)])
    got = to_host(m.flat_grads)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (got, want)
    print("OK")
""")


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason='numba-cuda is not installed (pip install "nnumba[cuda]")')
def test_cuda_simulator_output_written_by_the_caller_leaves_the_gradient_as_it_was():
    """README: what forward returns is the caller's to write into (out -= target before
    backward(out)). The simulator's arrays have no __cuda_array_interface__, so
    may_share_memory said False even for an array and itself, and the write changed
    the gradient. Reference: the closed-form gradient of a Linear+Sigmoid."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _SIM_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and "OK" in run.stdout, run.stderr[-2000:]


# ---- 2. a pickled model carries the gradient of its last batch -------------------------
class _Raw:
    """Stands in for Sequential on loading: keeps the pickled state as it is."""
    def __setstate__(self, state):
        self.__dict__.update(state)


class _Reader(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("nnumba.model", "Sequential"):
            return _Raw
        return super().find_class(module, name)


def test_a_pickled_fitted_estimator_holds_no_gradient_its_last_training_row_can_be_read_from():
    """docs/plugins.md: a pickled model or estimator 'holds none of the samples it last
    saw'. Each Parameter pickled its grad, the last mini-batch's gradient: with a last
    batch of one row, the first Linear's dW[j] / db[j] is that row. Reference: the
    training rows themselves (dW = g x^T, db = g for one sample)."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from nnumba.sklearn import NNClassifier
    X, y = load_digits(return_X_y=True)
    X, y = (X[:201] / 16).astype(np.float32), y[:201]
    clf = NNClassifier("mlp", epochs=1, batch_size=100, random_state=0).fit(X, y)
    blob = pickle.dumps(clf)
    raw = _Reader(io.BytesIO(blob)).load()
    lin = [layer for layer in raw.model_.__dict__["layers"] if layer._params][0]
    grads = [p.grad for p in lin._params.values()]
    if any(g is not None and np.any(g) for g in grads):
        dW, db = grads
        j = int(np.argmax(np.abs(db)))
        nearest = float(np.abs(X - dW[j] / db[j]).max(axis=1).min())
        assert nearest > 1e-3, "a training row can be read back from the pickled gradient"


# ---- 3. a Dropout subclass with its own argument names -------------------------------------
class RateDropout(Dropout):
    """A plugin's dropout whose argument is named rate (Keras' name)."""
    type_name = "RateDropout"

    def __init__(self, rate: float = 0.5, seed=None):
        super().__init__(p=rate, seed=seed, resample=False)


def test_a_dropout_subclass_with_other_argument_names_rebuilds_from_its_spec():
    """Dropout.p's setter wrote _config['p'] even where the constructor recorded is a
    subclass's without p; spec() then held p, which the subclass does not take, so
    save/load and the kit's round trip failed. Reference: the subclass's signature."""
    layer = RateDropout(0.3, seed=1)
    spec = layer.spec()
    takes = set(inspect.signature(RateDropout).parameters)
    assert set(spec) - {"type"} <= takes, spec
    from nnumba.testing.layers import check_layer
    check_layer(RateDropout, {"rate": 0.3, "seed": 1}, (4, 6))


# ---- 4. an estimator pickled before input_shape existed ------------------------------------
def test_an_estimator_pickled_before_input_shape_existed_still_works():
    """An NNClassifier pickled before the input_shape parameter has no such attribute:
    repr, get_params, clone, fit and partial_fit raised AttributeError. Made here as
    such a pickle loads. Reference: a freshly built estimator's get_params and
    scikit-learn's clone."""
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.datasets import load_digits
    from nnumba.sklearn import NNClassifier
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    clf = NNClassifier("mlp", epochs=1, random_state=0).fit(X, y)
    del clf.__dict__["input_shape"]  # as one pickled before the parameter loads
    old = pickle.loads(pickle.dumps(clf))
    assert old.get_params() == NNClassifier("mlp", epochs=1, random_state=0).get_params()
    clone(old)
    old.partial_fit(X, y)


# ---- 5. a momentum buffer beyond float32's range, converted with the model ------------------
def test_a_momentum_buffer_beyond_float32_is_refused_not_cast_to_infinity():
    """SGD now converts its momentum with the model (astype) instead of zeroing it; a
    float64 buffer past float32's range became -inf, and every weight inf at the next
    step (peer oracle 15).  Reference: float32's largest value, and the weights left as
    they were."""
    from nnumba.errors import NonFiniteError
    from nnumba.layers import Linear
    from nnumba.losses import MSE
    from nnumba.optim import SGD
    model = nnumba.Sequential(Linear(3, 1), seed=0).astype(np.float64)
    opt, loss = SGD(model, lr=1e-40, momentum=0.9), MSE()
    loss.forward(model.forward(np.ones((4, 3))), np.full((4, 1), 1e39))
    model.backward(loss.backward())
    opt.step()
    assert np.abs(opt.velocity).max() > float(np.finfo(np.float32).max)  # the premise
    model.zero_grad()
    model.astype(np.float32)  # the weights themselves fit
    before = model.flat_params.copy()
    with pytest.raises(NonFiniteError, match="momentum buffer.*float32's range"):
        opt.step()
    np.testing.assert_array_equal(model.flat_params, before)
    from nnumba.train import SGDTrainer
    trainer = SGDTrainer(model, MSE(), lr=0.01, momentum=0.9, batch_size=4, seed=0)
    stored = {"velocity": np.full(model.flat_params.size, 1e39), "trainer": "sgd",
              "rng": trainer.rng.bit_generator.state, "layers": {}}
    with pytest.raises(NonFiniteError, match="stored momentum buffer"):
        trainer.resume(stored)
    assert trainer.optimizer.velocity is None  # a refused resume leaves it as it was
