"""Peer oracle 27: resumed training, a numpy SGD and torch.optim.SGD, MPI against one
process, callbacks as schedules (all matched but this). Under MPI (2 ranks) a model
with Dropout did not train on "as one longer run would": fit(2) + fit(1) on the same
DistributedSGDTrainer, and fit(2) + save(training=) + resume + fit(1), both differed
from fit(3), because every fit call reseeded each rank's Dropout stream (rank_stream)
and the file kept rank 0's stream only.

The reference is the documented equivalence itself (nnumba/checkpoint.py: "Training on
then takes the steps one longer run would have taken ... Dropout's draws included";
README: saved weights "train on as one longer run would"), which holds bit for bit on
one process, and on 2 ranks without Dropout (checked in the control test, which passes).
"""
import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

_BESIDE = Path(sys.executable).with_name("mpiexec")
MPIEXEC = str(_BESIDE) if _BESIDE.is_file() else shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    not (MPIEXEC and importlib.util.find_spec("mpi4py")), reason="needs mpi4py and mpiexec")

WORKER = textwrap.dedent('''
    import sys
    import numpy as np
    import nnumba
    from nnumba.distributed import DistributedSGDTrainer, setup
    from nnumba.losses import CrossEntropy
    out, dropout = sys.argv[1], sys.argv[2] == "1"
    comm = setup()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(53, 6)).astype("float64"); y = rng.integers(0, 3, size=53)
    spec = [{"type": "Linear", "in_features": 6, "out_features": 8}, {"type": "Tanh"}]
    if dropout:
        spec.append({"type": "Dropout", "p": 0.3, "seed": 5})
    spec.append({"type": "Linear", "in_features": 8, "out_features": 3})
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=10, seed=3)
    def new(model, **more):
        return DistributedSGDTrainer(model, CrossEntropy(), comm=comm, **{**kw, **more})
    # one call of 3 epochs
    full = nnumba.Sequential.from_spec(spec, seed=0).astype("float64")
    new(full).fit(x, y, epochs=3)
    # the same trainer, fit(2) then fit(1)
    split = nnumba.Sequential.from_spec(spec, seed=0).astype("float64")
    t = new(split); t.fit(x, y, epochs=2); t.fit(x, y, epochs=1)
    # fit(2), saved by rank 0 with its training, resumed on every rank, fit(1)
    first = nnumba.Sequential.from_spec(spec, seed=0).astype("float64")
    t = new(first); t.fit(x, y, epochs=2)
    path = f"{out}/ck.npz"
    if comm.is_root:
        nnumba.save(first, path, training=t)
    comm.barrier()
    resumed = nnumba.load_model(path)
    t = new(resumed, seed=77); t.resume(nnumba.stored_training(path)); t.fit(x, y, epochs=1)
    if comm.is_root:
        np.savez(f"{out}/w.npz", full=full.flat_params, split=split.flat_params,
                 resumed=resumed.flat_params)
''')


def _run(tmp_path, dropout: bool):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    import os
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script), str(tmp_path),
                           "1" if dropout else "0"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "w.npz")


@needs_mpi
def test_control_two_ranks_without_dropout_train_on_as_one_run(tmp_path):
    """The control: the property held bit for bit without Dropout."""
    w = _run(tmp_path, dropout=False)
    assert np.array_equal(w["split"], w["full"])
    assert np.array_equal(w["resumed"], w["full"])


@needs_mpi
def test_two_ranks_with_dropout_fit_in_two_calls_equals_one_call(tmp_path):
    w = _run(tmp_path, dropout=True)
    assert np.array_equal(w["split"], w["full"]), \
        f"fit(2)+fit(1) differs from fit(3) by {np.abs(w['split'] - w['full']).max():.3g}"


@needs_mpi
def test_two_ranks_with_dropout_resume_from_file_equals_one_longer_run(tmp_path):
    w = _run(tmp_path, dropout=True)
    assert np.array_equal(w["resumed"], w["full"]), \
        f"save + resume + fit(1) differs from fit(3) by " \
        f"{np.abs(w['resumed'] - w['full']).max():.3g}"
