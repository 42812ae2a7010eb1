"""What nnumba does to other libraries in the same process: nothing, it must be.

PyTorch's MLP epoch and numpy's sgemm, each timed in fresh processes that never
saw nnumba and in ones that imported nnumba first (and, for torch, ones where
nnumba also trained a few steps), taking turns (torch: a new process every
round).  The ratio (with nnumba / without) should stay within 1.05.  Both sides are peers here; the benchmark's own time is
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
    # A process each round, both sides: one torch process can run a third slower than
    # the next, all its rounds alike, so one long-lived process a side compared two
    # draws (after import 0.87x, then 1.33x, after training 1.52x, then 0.92x).  About
    # one process in four or five is slow, on either side: 20 rounds, since ten drew a
    # slow median (after training 1.40x at 19d64e5; twelve pairs after it: 0.95x).
    alone = peers("torch alone", job, fresh=True)
    beside = peers(f"torch after nnumba {nnumba_first}", {**job, "nnumba": nnumba_first},
                   fresh=True)
    turns(benchmark, f"torch-mlp-epoch after nnumba {nnumba_first} / alone", beside.round,
          alone, rounds=1 if quick else 20, compare=beside)


SGEMM = {"small": ([100, 784, 256], 200), "large": ([2048, 2048, 2048], 3)}


@pytest.mark.parametrize("size", list(SGEMM))
def test_numpy_sgemm_beside_nnumba(benchmark, peers, quick, size):
    shape, repeat = SGEMM[size]
    job = {"kind": "numpy-sgemm", "shape": shape, "repeat": 1 if quick else repeat}
    alone = peers("numpy alone", job)   # steady from one process to the next
    beside = peers("numpy after nnumba import", {**job, "nnumba": "import"})
    turns(benchmark, f"numpy-sgemm-{size} after nnumba import / alone", beside.round, alone,
          rounds=1 if quick else 15, compare=beside)
