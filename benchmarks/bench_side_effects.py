"""What nnumba does to other libraries in the same process: nothing, it must be.

PyTorch's MLP epoch and numpy's sgemm, each timed in a fresh process that never
saw nnumba and in one that imported nnumba first (and, for torch, one where
nnumba also trained a few steps), taking turns.  The ratio (with nnumba / without)
should stay within 1.05.  Both sides are peers here; the benchmark's own time is
the process with nnumba."""
import pytest
from conftest import fashion_sized, has, turns

from nnumba.models.mlp import mlp

BATCH = 100


@pytest.mark.parametrize("nnumba_first", ["import", "train"])
def test_torch_mlp_epoch_beside_nnumba(benchmark, peers, files, quick, nnumba_first):
    if not has("torch"):
        pytest.skip("torch is not installed")
    x, y = fashion_sized(6_000 if quick else 60_000)
    job = {"kind": "torch-train", "spec": mlp(), "batch": BATCH, "lr": 0.01,
           "momentum": 0.9, **files(x=x, y=y)}
    alone = peers("torch alone", job)
    beside = peers(f"torch after nnumba {nnumba_first}", {**job, "nnumba": nnumba_first})
    # An epoch varies by up to a third between rounds on a shared VM: 15 rounds, as
    # for the sgemm, so that the median can resolve the 5 % this check is about.
    turns(benchmark, f"torch-mlp-epoch after nnumba {nnumba_first} / alone", beside.round,
          alone, rounds=1 if quick else 15, compare=beside)


SGEMM = {"small": ([100, 784, 256], 200), "large": ([2048, 2048, 2048], 3)}


@pytest.mark.parametrize("size", list(SGEMM))
def test_numpy_sgemm_beside_nnumba(benchmark, peers, quick, size):
    shape, repeat = SGEMM[size]
    job = {"kind": "numpy-sgemm", "shape": shape, "repeat": 1 if quick else repeat}
    alone = peers("numpy alone", job)
    beside = peers("numpy after nnumba import", {**job, "nnumba": "import"})
    turns(benchmark, f"numpy-sgemm-{size} after nnumba import / alone", beside.round, alone,
          rounds=1 if quick else 15, compare=beside)
