"""The thread-pool settings reach numba and OpenBLAS whatever the import order."""
import json
import os
import subprocess
import sys

import pytest

CODE = ("import json, os, sys\n{first}\nimport nnumba\nfrom nnumba import _threads\n"
        "print(json.dumps({{'timeout': os.environ.get('OPENBLAS_THREAD_TIMEOUT'), "
        "'wait': os.environ.get('OMP_WAIT_POLICY'), 'restarted': _threads.RESTARTED}}))")


def run(first, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", CODE.format(first=first)], capture_output=True,
                         text=True, check=True, env={**base, **env})
    return json.loads(out.stdout)


def test_defaults_are_set_when_nnumba_comes_first():
    report = run("")
    assert report == {"timeout": "4", "wait": "passive", "restarted": []}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_openblas_loaded_by_numpy_first_is_made_to_reread_the_timeout():
    report = run("import numpy")
    assert report["timeout"] == "4"
    assert any("openblas" in path.lower() for path in report["restarted"])


def test_a_users_own_setting_wins_and_is_left_alone():
    report = run("import numpy", OPENBLAS_THREAD_TIMEOUT="10", OMP_WAIT_POLICY="active")
    assert report == {"timeout": "10", "wait": "active", "restarted": []}
