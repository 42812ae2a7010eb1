"""On a real NVIDIA GPU: every kernel against its CPU twin at the lecture CNN's
sizes (float32, 1e-4 relative to the output's scale), and a lecture-CNN training
run on the device against the CPU. Marked ``gpu``; skipped where numba-cuda
finds no GPU (and under the simulator, which tests/test_cuda_sim.py covers).
benchmarks/gpu_check.py adds timings and a full epoch."""
import importlib.util
import os

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def _gpu_reason():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "the CUDA simulator is on"
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed"
    from nnumba.device import CUDA
    return CUDA.unavailable_reason()


_REASON = _gpu_reason()
if _REASON:
    pytest.skip(f"no real GPU: {_REASON}", allow_module_level=True)

import nnumba  # noqa: E402
from nnumba.device import to_host  # noqa: E402
from nnumba.kernels import KERNELS, cases  # noqa: E402


@pytest.mark.parametrize("name", KERNELS)
def test_kernels_match_their_cpu_twins_on_the_gpu(name):
    results = cases.run_twin(name, "real", np.float32)
    bad = {k: cases.mismatch(*v) for k, v in results.items() if cases.mismatch(*v) > 1e-4}
    assert results and not bad, bad


def test_lecture_cnn_trains_on_the_gpu_as_on_the_cpu():
    rng = np.random.default_rng(0)
    x = rng.random((400, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 400)
    weights = []
    for device in ("cpu", "cuda"):
        model = nnumba.build("lenet", seed=0).to(device)
        nnumba.SGDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.05, momentum=0.9,
                          batch_size=100, seed=1).fit(x, y, epochs=1)
        weights.append(to_host(model.flat_params))
    scale = np.abs(weights[0]).max()
    assert np.abs(weights[1] - weights[0]).max() <= 1e-4 * scale
