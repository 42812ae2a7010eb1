"""Plugin trial 40: a GPU workflow from the docs, in the CUDA simulator.

Each test runs its CUDA part in a subprocess with NUMBA_ENABLE_CUDASIM=1 (never in
the pytest process) and is skipped where numba-cuda is not installed. Both failed at
df56f9f: "gpu" was pointed to "cpu", and gpu_check.py replaced a mistyped --data-dir.
"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                                reason="numba-cuda is not installed")

import nnumba  # noqa: E402

REPO = Path(nnumba.__file__).resolve().parent.parent


def _sim(code, timeout=300):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=str(REPO))


def test_device_gpu_is_pointed_to_cuda_not_cpu():
    """Finding 1: `model.to("gpu")` (and `nnumba train --device gpu`) answer
    "did you mean 'cpu'?" on a machine with CUDA: following the hint trains on the CPU.
    The error must stay a RegistryError, and its hint must name 'cuda', not 'cpu'."""
    r = _sim("""
        import json, nnumba
        from nnumba.errors import RegistryError
        try:
            nnumba.build("mlp").to("gpu")
        except RegistryError as e:
            print(json.dumps(str(e)))
        else:
            print(json.dumps(None))
    """)
    assert r.returncode == 0, r.stderr
    message = json.loads(r.stdout.strip().splitlines()[-1])
    assert message is not None, "to('gpu') was accepted"
    hint = message.split(" One from a plugin")[0]    # the 'did you mean' part
    assert "'cuda'" in hint, message
    assert "did you mean 'cpu'" not in message, message

    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    cli = subprocess.run([sys.executable, "-m", "nnumba", "train", "--device", "gpu",
                          "--train-size", "8", "--test-size", "4", "--epochs", "1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert cli.returncode == 2, cli.stderr
    assert "did you mean 'cpu'" not in cli.stderr and "cuda" in cli.stderr, cli.stderr


def test_gpu_check_refuses_a_data_dir_that_does_not_exist():
    """Finding 2: docs/gpu.md's recipe `python benchmarks/gpu_check.py --data-dir
    /path/to/fashion-mnist` silently replaces a mistyped folder with the system copy
    (or 60,000 tiled MNIST digits) and reports that epoch as the check's; `nnumba train
    --dataset fashion-mnist --data-dir` with the same folder exits 2 naming it. The
    script should refuse the folder it was given (nnumba's MissingFileError, or a
    non-zero exit naming it)."""
    script = REPO / "benchmarks" / "gpu_check.py"
    if not script.exists():
        pytest.skip("benchmarks/gpu_check.py is not in this checkout")
    r = _sim(f"""
        import importlib.util, json
        spec = importlib.util.spec_from_file_location("gpu_check", {str(script)!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        try:
            *_, name = mod._data("/nonexistent/trial40/fashion-mnist")
        except FileNotFoundError as e:   # nnumba's MissingFileError is one
            print(json.dumps({{"refused": str(e)}}))
        else:
            print(json.dumps({{"used": name}}))
    """)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "refused" in out, f"a missing --data-dir was replaced by: {out['used']}"
    assert "/nonexistent/trial40/fashion-mnist" in out["refused"]
