"""Trial 42 (nnumba.sklearn in parallel and concurrent use): under numba's omp layer,
the passive wait policy nnumba gave numba's OpenMP runtime reached PyTorch, which
shares the system's libgomp when imported after a fit (its MLP epoch 1.7x slower).
The scenario runs in a fresh process: it is about process-wide state."""
import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 180


def _run(code, **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER")}
    full.update({"NUMBA_NUM_THREADS": "2"}, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                          capture_output=True, text=True, timeout=TIMEOUT)


# F1: README ("nnumba changes nothing that other libraries read ... no thread
# setting of numpy's or PyTorch's") and nnumba/_threads.py ("the passive policy is
# set only while numba loads its own OpenMP runtime ... removed again before any
# other library can see it").  Under numba's omp layer the runtime numba loads is
# the system libgomp.so.1; torch's extension needs libgomp.so.1 too, so when torch
# is imported after a fit the dynamic loader hands torch that same runtime,
# initialised passive (GOMP_SPINCOUNT 0).  Measured: torch's MLP epoch 0.056 s ->
# 0.09-0.10 s (the same as OMP_WAIT_POLICY=passive set by hand).
def test_omp_layer_passive_wait_policy_does_not_leak_into_torch():
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    code = r"""
        import numpy as np, numba
        from nnumba.sklearn import NNClassifier
        x = np.random.RandomState(0).randn(200, 10).astype("float32")
        NNClassifier(epochs=1, random_state=0).fit(x, (x[:, 0] > 0).astype(int))
        print("LAYER", numba.threading_layer(), flush=True)
        import torch
        torch.ones(512, 512).sum()          # run torch's OpenMP region
        maps = open("/proc/self/maps").read()
        print("TORCH_OWN_GOMP", "torch/lib/libgomp" in maps, flush=True)
    """
    p = _run(code, NUMBA_THREADING_LAYER="omp", OMP_DISPLAY_ENV="VERBOSE")
    if p.returncode != 0 and "LAYER" not in p.stdout:
        pytest.skip("numba's omp layer is not available here: " + p.stderr[-300:])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "LAYER omp" in p.stdout
    if "TORCH_OWN_GOMP True" in p.stdout:
        return  # torch runs on a runtime of its own: nothing shared
    # torch shares the runtime numba loaded: it must be initialised as the user
    # asked (here: nothing), not with nnumba's private passive policy.
    assert "GOMP_SPINCOUNT = '0'" not in p.stderr, (
        "torch runs on the OpenMP runtime nnumba initialised with OMP_WAIT_POLICY=passive "
        "(GOMP_SPINCOUNT 0), a setting the user never made:\n" + p.stderr[-1500:])


def test_predict_during_fit_in_another_thread_speaks_an_estimators_words():
    """predict_proba while fit ran in another thread was refused with advice for the
    Python API (model.copy(), a loss of its own), which an estimator user has not."""
    pytest.importorskip("sklearn")
    import threading

    import numpy as np

    from nnumba.errors import ContractError
    from nnumba.layers.fitting import hold_for_fit, release_after_fit
    from nnumba.sklearn import NNClassifier
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    est = NNClassifier(epochs=1, random_state=0).fit(x, (x[:, 0] > 0).astype(int))
    held, started, stop = [], threading.Event(), threading.Event()

    def fitting():  # another thread holds the model as a trainer's fit does
        hold_for_fit(est.model_, None, held)
        started.set()
        stop.wait(10)
        release_after_fit(held)
    worker = threading.Thread(target=fitting)
    worker.start()
    started.wait(10)
    try:
        with pytest.raises(ContractError, match="copy.deepcopy") as caught:
            est.predict_proba(x)
        assert "model.copy()" not in str(caught.value)
    finally:
        stop.set()
        worker.join()
    assert est.predict_proba(x).shape == (40, 2)  # after the fit: as before
