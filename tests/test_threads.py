"""nnumba leaves the environment other libraries read alone, whatever the import
order, and numba runs on a threading layer that does not spin against OpenBLAS."""
import json
import os
import subprocess
import sys

import pytest

CODE = ("import json, os, sys\n{first}\nimport numpy as np, nnumba, numba\n"
        "before = dict(os.environ)\n"
        "m = nnumba.build('mlp', hidden=(8,), seed=0)\n"
        "nnumba.SGDTrainer(m, nnumba.get_loss('CrossEntropy')(), precompile=False).fit("
        "np.zeros((20, 784), np.float32), np.zeros(20, int))\n"
        "changed = sorted(k for k in set(os.environ) | set(before) "
        "if os.environ.get(k) != before.get(k))\n"
        "print(json.dumps({{'env': {{k: os.environ.get(k) for k in "
        "('OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT')}}, 'changed': changed, "
        "'layer': numba.threading_layer()}}))")
VARS = ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")


def run(first="", **env):
    base = {k: v for k, v in os.environ.items() if k not in VARS}
    out = subprocess.run([sys.executable, "-c", CODE.format(first=first)], capture_output=True,
                         text=True, check=True, env={**base, **env}, timeout=300)
    return json.loads(out.stdout)


@pytest.mark.parametrize("first", ["", "import numpy", "import scipy.linalg"])
def test_importing_and_training_changes_no_environment_variable(first):
    report = run(first)
    assert report["env"] == {"OMP_WAIT_POLICY": None, "OPENBLAS_THREAD_TIMEOUT": None}
    assert report["changed"] == []


def test_the_omp_fallback_leaves_the_environment_alone_too():
    report = run(NUMBA_THREADING_LAYER="omp")
    assert report["layer"] == "omp" and report["env"]["OMP_WAIT_POLICY"] is None


def test_a_users_own_setting_wins_and_is_left_alone():
    report = run("import numpy", OPENBLAS_THREAD_TIMEOUT="10", OMP_WAIT_POLICY="active")
    assert report["env"] == {"OMP_WAIT_POLICY": "active", "OPENBLAS_THREAD_TIMEOUT": "10"}


def test_tbb_is_the_layer_where_its_wheel_is_installed():
    import importlib.util
    if importlib.util.find_spec("tbb") is None and not any(
            os.path.exists(os.path.join(p, "lib", "libtbb.so.12"))
            for p in {sys.prefix, sys.base_prefix}):
        pytest.skip("the tbb wheel is not installed here")
    assert run()["layer"] == "tbb"
