"""Fuzz round 37: CPU / CUDA-simulator parity of refusals.  predict on a cuda model used
the values under a masked array's mask (the device copy dropped it) and refused object or
string input with a DeviceError, not the CPU's DTypeError; non-finite -1/+1 targets on the
device were a LabelError, not the host's NonFiniteError.

Each test runs its body in a subprocess with NUMBA_ENABLE_CUDASIM=1 (never in the pytest
process itself) and compares the simulated GPU with the CPU run of the same call, which
is the reference; it skips where numba-cuda is not installed."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                                reason="numba-cuda is not installed")


def run_sim(body: str) -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    head = textwrap.dedent("""
        import json, numpy as np, nnumba
        from nnumba import Sequential, device as D
        from nnumba.errors import NnumbaError
        def outcome(f):
            try:
                v = f()
            except NnumbaError as e:
                return type(e).__name__
            except Exception as e:
                return "RAW " + type(e).__name__
            return "ok"
        out = {}
    """)
    code = head + textwrap.dedent(body) + "\nprint('RESULT' + json.dumps(out))\n"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [l for l in p.stdout.splitlines() if l.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def test_masked_input_with_masked_values_is_refused_on_cuda_as_on_the_cpu():
    out = run_sim("""
        m = Sequential(nnumba.get_layer("Linear")(3, 2), seed=0).astype(np.float64)
        g = m.copy().to("cuda")
        x = np.arange(6.).reshape(2, 3)
        mx = np.ma.masked_array(x, mask=[[0, 1, 0], [0, 0, 0]])
        from nnumba.train.metrics import evaluate
        loss = nnumba.get_loss("CrossEntropy")
        y = np.array([0, 1])
        out["cpu_predict"] = outcome(lambda: m.predict(mx))
        out["cuda_predict"] = outcome(lambda: g.predict(mx))
        out["cpu_evaluate"] = outcome(lambda: evaluate(m, loss(), mx, y))
        out["cuda_evaluate"] = outcome(lambda: evaluate(g, loss(), mx, y))
    """)
    assert out["cpu_predict"] == out["cpu_evaluate"] == "DTypeError", out  # the reference
    assert out["cuda_predict"] == "DTypeError", out    # at HEAD: "ok" (masked values used)
    assert out["cuda_evaluate"] == "DTypeError", out


@pytest.mark.parametrize("kind", ["object", "str"])
def test_non_numeric_input_gets_the_cpu_error_class_on_cuda(kind):
    out = run_sim(f"""
        m = Sequential(nnumba.get_layer("Linear")(3, 2), seed=0).astype(np.float64)
        g = m.copy().to("cuda")
        x = np.arange(6.).reshape(2, 3).astype({kind!r})
        out["cpu"] = outcome(lambda: m.predict(x))
        out["cuda"] = outcome(lambda: g.predict(x))
    """)
    assert out["cpu"] == "DTypeError", out
    assert out["cuda"] == out["cpu"], out              # at HEAD: DeviceError


@pytest.mark.parametrize("loss", ["Logistic", "Hinge", "Perceptron"])
@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_device_sign_targets_get_the_cpu_error_class(loss, bad):
    out = run_sim(f"""
        yh = np.array([0.3, -0.2, 1.5]); y = np.array([1.0, -1.0, float({bad!r})])
        L = nnumba.get_loss({loss!r})
        out["cpu"] = outcome(lambda: L().forward(yh, y))
        out["cuda_host_targets"] = outcome(lambda: L().forward(D.to_device(yh, "cuda"), y))
        out["cuda_device_targets"] = outcome(
            lambda: L().forward(D.to_device(yh, "cuda"), D.to_device(y, "cuda")))
    """)
    assert out["cpu"] == out["cuda_host_targets"] == "NonFiniteError", out
    assert out["cuda_device_targets"] == "NonFiniteError", out   # at HEAD: LabelError
