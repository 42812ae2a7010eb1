"""Fuzz round 30: a layer called alone while its model runs in another thread (a
segfault in the max-pool's backward), and a predict refused during another thread's fit
(it ended the fit); each test failed at d56098a."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import nnumba
from nnumba import layers as P
from nnumba.losses import CrossEntropy

torch = pytest.importorskip("torch")

_RACE = textwrap.dedent(r"""
    import sys, threading, time, numpy as np, torch, nnumba
    from nnumba import layers as P
    kind = sys.argv[1]
    pool = {"max": P.MaxPool2d(2), "relu": P.ReLU()}[kind]
    conv = P.Conv2d(1, 2, 3, padding=1)
    m = nnumba.Sequential(conv, P.Tanh(), pool).astype(np.float64)
    m.input_grad = True
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((64, 1, 32, 32)); xb = rng.standard_normal((1, 2, 2, 2))
    # independent reference: torch, float64, the same weights
    tx = torch.tensor(xa, requires_grad=True)
    h = torch.tanh(torch.nn.functional.conv2d(tx, torch.tensor(conv.weight.value),
                                               torch.tensor(conv.bias.value), padding=1))
    ty = torch.nn.functional.max_pool2d(h, 2) if kind == "max" else torch.relu(h)
    g = rng.standard_normal(tuple(ty.shape)); ty.backward(torch.tensor(g))
    y_ref, dx_ref = ty.detach().numpy(), tx.grad.numpy()
    stop = time.time() + 8
    foreign, wrong = [], []
    def A():
        while time.time() < stop:
            try:
                y = m.forward(xa)
                if not np.allclose(y, y_ref, atol=1e-12): wrong.append("y")
                dx = m.backward(g)
                if not np.allclose(dx, dx_ref, atol=1e-12): wrong.append("dx")
            except nnumba.NnumbaError:
                pass
            except Exception as e:
                foreign.append(f"A {type(e).__name__}: {e}")
    def B():
        while time.time() < stop:
            try:
                yb = pool.forward(xb)
                pool.set_flags(needs_input_grad=True)
                pool.backward(np.ones_like(yb))
            except nnumba.NnumbaError:
                pass
            except Exception as e:
                foreign.append(f"B {type(e).__name__}: {e}")
    ts = [threading.Thread(target=A), threading.Thread(target=B)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print("FOREIGN", foreign[:3]); print("WRONG", wrong[:3])
""")


@pytest.mark.parametrize("kind", ["max", "relu"])
def test_a_layer_called_alone_while_its_model_runs_in_another_thread_does_not_crash(kind, tmp_path):
    """A layer's own forward/backward (its lock) and its model's (the model's lock,
    run_forward/run_backward) do not exclude each other: with a max-pool the process
    segfaults (pool.py:99 -> kernels/cpu/pool.py:315); with a ReLU a raw ValueError
    from a reshape inside the kernels' call comes out.  Either a clear nnumba error or
    correct results (torch's) are fine; a crash or a raw error is not."""
    script = tmp_path / "race.py"
    script.write_text(_RACE)
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(script), kind], capture_output=True, text=True,
                       timeout=240, env=env)
    assert r.returncode == 0, f"crashed (status {r.returncode}): {r.stderr[-800:]}"
    assert "FOREIGN []" in r.stdout, r.stdout
    assert "WRONG []" in r.stdout, r.stdout


def test_a_refused_predict_in_another_thread_does_not_end_the_fit():
    """predict() from a second thread while fit() trains the model is refused with a
    ContractError (as documented), but before refusing it has already set
    model._no_backward (model.py:340, in predict's finally), so the fitting thread's next
    backward raises NoGradientError and the fit dies.  The reference is the same fit
    run alone: the refused predict must change nothing."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)); Y = rng.integers(0, 3, 64)

    base = nnumba.Sequential(P.Linear(4, 8), P.ReLU(), P.Linear(8, 3)).astype(np.float64)

    def run(interfere):
        in_step, predicted = threading.Event(), threading.Event()

        class Pausing(CrossEntropy):
            calls = 0

            def forward(self, y_hat, y):
                out = super().forward(y_hat, y)
                Pausing.calls += 1
                if interfere and Pausing.calls == 3:  # mid-epoch, between forward and backward
                    in_step.set()
                    assert predicted.wait(20)
                return out

        m = base.copy()
        tr = nnumba.SGDTrainer(m, Pausing(), lr=0.1, batch_size=16, shuffle=False)
        res = {}

        def A():
            try:
                tr.fit(X, Y, epochs=2)
                res["fit"] = "ok"
            except Exception as e:  # noqa: BLE001
                res["fit"] = f"{type(e).__name__}: {e}"

        def B():
            if in_step.wait(20):
                try:
                    m.predict(X[:4])
                    res["predict"] = "ran"
                except nnumba.NnumbaError as e:
                    res["predict"] = type(e).__name__
                predicted.set()

        ta = threading.Thread(target=A)
        tb = threading.Thread(target=B) if interfere else None
        ta.start()
        tb and tb.start()
        ta.join(60)
        tb and tb.join(60)
        return res, m

    alone, m_alone = run(False)
    assert alone["fit"] == "ok"
    res, m = run(True)
    assert res.get("predict") in ("ContractError", "ran"), res
    assert res["fit"] == "ok", f"the refused predict ended the fit: {res['fit']}"
    np.testing.assert_array_equal(m.flat_params, m_alone.flat_params)
