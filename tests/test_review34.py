"""Review 34 of the sitting's later changes (5214544..b3d334a), each test failing at
b3d334a: astype kept float64 gradients past float32's range as inf; the perceptron's
predict summed with BLAS's fused multiply-adds and tipped a sample its table counted
right; a fastmath caller compiled first made the in-order score fastmath (numba keeps
a callee's first flags, on disk too); a backward after load_weights mixed old inputs
with new weights."""
import subprocess
import sys
import textwrap
import warnings
from fractions import Fraction

import numpy as np
import pytest

import nnumba
from nnumba.errors import NoGradientError, NonFiniteError
from nnumba.layers import Linear, Tanh


def _exact_sign(row, w, b=0.0):
    s = sum(Fraction(float(a)) * Fraction(float(c)) for a, c in zip(row, w)) + Fraction(b)
    return 1 if s >= 0 else -1  # the lecture's sigma


# ---- 1. astype keeps gradients beyond float32's range as inf -------------------------
def test_astype_float32_refuses_or_keeps_finite_gradients_beyond_float32():
    """model.astype(float32) refuses weights beyond float32 (check_cast) but now copies
    the accumulated float64 gradients unchecked: they become inf (a numpy
    RuntimeWarning only), and the next SGD step makes the weights -inf silently.
    Reference: float32's max (np.finfo)."""
    m = nnumba.Sequential(Linear(3, 2), seed=0).astype(np.float64)
    m.forward(np.full((4, 3), 1e20))
    m.backward(np.full((4, 2), 1e20))  # gradients of 4e40 > float32 max 3.4e38
    assert np.abs(m.flat_grads).max() > np.finfo(np.float32).max
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            m.astype(np.float32)
        except NonFiniteError:
            return  # a clear refusal, as for the weights and SGD's momentum buffer
    assert np.isfinite(m.flat_grads).all(), "astype made the gradients inf"


# ---- 2. the perceptron's table and predict disagree on an exact tie ------------------
def test_perceptron_predict_agrees_with_its_table_and_the_lecture_on_an_exact_tie():
    """train_error in the table comes from the in-order sum (score exactly 0 -> +1);
    predict uses BLAS's x @ w, whose fused multiply-adds give -8.3e-19 for
    0.1*0.1 - 0.1*0.1: the table says 0% error and predict misclassifies sample 0.
    Reference: exact rational arithmetic (Fraction)."""
    from nnumba import train_perceptron
    x = np.array([[0.1, -0.1], [0.0, 0.2]])
    t = np.array([1, 1])
    r = train_perceptron(x, t, max_epochs=1, bias=False)
    exact = np.array([_exact_sign(row, r.w) for row in x])
    np.testing.assert_array_equal(r.predict(x), exact)
    assert r.history[-1]["train_error"] == float(np.mean(r.predict(x) != t))


def test_perceptron_predict_agrees_with_the_tables_test_error_after_convergence():
    from nnumba import train_perceptron
    x, t = np.array([[0.1, 0.1]]), np.array([1])
    # the tie's exact score is 0 (sigma = +1); with a second row, BLAS's gemv gives it
    # -8.3e-19, alone +8.3e-19: predict of one sample depends on its batch
    x_test, t_test = np.array([[0.1, -0.1], [0.1, 0.1]]), np.array([1, 1])
    r = train_perceptron(x, t, max_epochs=10, bias=False, x_test=x_test, y_test=t_test)
    assert r.converged
    assert r.predict(x_test)[0] == r.predict(x_test[:1])[0]  # batch-independent
    assert r.predict(x_test)[0] == _exact_sign(x_test[0], r.w)
    assert r.history[-1]["test_error"] == float(np.mean(r.predict(x_test) != t_test))


# ---- 3. a fastmath caller poisons the in-order fallback (memory and disk cache) ------
_POISON = textwrap.dedent("""
    import sys, numpy as np
    from numba import njit
    from nnumba.kernels.cpu import perceptron as K
    if sys.argv[1] == "poison":
        @njit(fastmath=True)
        def user_score(x, i, w, b):
            return K._score(x, i, w, b)
        user_score(np.array([[-0.1, 0.1]]), 0, np.array([0.1, 0.1, 0.0]), 1.0)
    from nnumba import train_perceptron
    x = np.array([[-0.1, 0.1], [0.0, 0.2], [-0.3, 0.3]]); t = np.array([-1, 1, 1])
    r = train_perceptron(x, t, max_epochs=100)
    print(r.epochs, r.w.tolist(), r.b)
""")


def test_a_fastmath_caller_compiled_first_does_not_change_the_in_order_score(tmp_path):
    """numba compiles a callee without explicit fastmath with its first caller's flags
    and keeps (and disk-caches) that one overload for every later caller: a fastmath
    function calling _score first made _in_order fastmath, and train_perceptron, in
    that process and in later ones sharing the cache, stops after 2 epochs with 2 of 3
    points wrong.  Fix: fastmath=False given explicitly on _score and _in_order (and the
    epoch kernels).  Reference: the exact run (Fraction): 60 epochs, w (3.2, 6.6), b -1."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    script = tmp_path / "poison.py"
    script.write_text(_POISON)
    import os
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(nnumba.__file__))
    for arg in ("poison", "later"):
        run = subprocess.run([sys.executable, str(script), arg], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.split()[0] == "60", (arg, run.stdout)


# ---- 4. backward after load_weights pairs old inputs with new weights ----------------
def test_backward_after_load_weights_is_refused(tmp_path):
    """forward, load_weights, backward: dX uses the loaded weights, dW the inputs of
    the forward: the gradient of no function, as after an optimizer step, which is now
    refused.  Reference: torch refuses it (copy_ under no_grad bumps the version)."""
    from nnumba.io import load_weights, save

    def mk(seed):
        m = nnumba.Sequential(Linear(3, 4), Tanh(), Linear(4, 2), seed=seed).astype(np.float64)
        m.input_grad = True
        return m
    a, b = mk(0), mk(1)
    save(b, tmp_path / "b.npz")
    x = np.random.default_rng(0).normal(size=(5, 3))
    a.forward(x)
    load_weights(a, tmp_path / "b.npz")
    with pytest.raises(NoGradientError):
        a.backward(np.ones((5, 2)))
