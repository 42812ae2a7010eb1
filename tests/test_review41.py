"""Review 41 of 68252c4..e42128f (drop_last, the kernel checks of fuzz round 48).
Each test failed at e42128f."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError
from nnumba.losses import CrossEntropy

REPO = Path(__file__).resolve().parent.parent
_BESIDE = Path(sys.executable).with_name("mpiexec")
MPIEXEC = str(_BESIDE) if _BESIDE.is_file() else shutil.which("mpiexec")


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "MPI_LOCAL", "PMIX_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("NUMBA_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


# ---- 1. drop_last is not among the settings the MPI ranks must agree on ---------------------
@pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec")
def test_drop_last_that_differs_between_ranks_is_a_clear_error(tmp_path):
    pytest.importorskip("mpi4py")
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent("""
        import numpy as np, nnumba
        from mpi4py import MPI
        from nnumba.distributed.trainers import DistributedSGDTrainer
        from nnumba.layers import Linear, ReLU
        from nnumba.losses import CrossEntropy
        rank = MPI.COMM_WORLD.Get_rank()
        rng = np.random.default_rng(0)
        x = rng.normal(size=(21, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        m = nnumba.Sequential(Linear(4, 6), ReLU(), Linear(6, 2), seed=0)
        DistributedSGDTrainer(m, CrossEntropy(), batch_size=5, seed=0,
                              drop_last=(rank == 0)).fit(x, y, epochs=2)
    """))
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(worker)], env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    # as lr, shuffle, batch_size ... get (now: MPI's "Message truncated" abort)
    assert "drop_last differ between the MPI ranks" in done.stderr, done.stderr[-2000:]


def test_the_cli_trains_a_saved_drop_last_run_on_as_one_run(tmp_path):
    """nnumba train --model saved.npz kept the file's batch_size but not drop_last, and
    said it went on 'as one run'; --no-drop-last turns it off."""
    m = nnumba.build("mlp", seed=0)
    x = np.random.default_rng(0).random((21, 1, 28, 28)).astype(np.float32)
    trainer = nnumba.SGDTrainer(m, CrossEntropy(), batch_size=10, drop_last=True)
    trainer.fit(x, np.arange(21) % 10)
    first = nnumba.save(m, tmp_path / "a.npz", training=trainer)
    for flags, want in (([], True), (["--no-drop-last"], False)):
        out = tmp_path / f"b{len(flags)}.npz"
        done = subprocess.run([sys.executable, "-m", "nnumba", "train", "--model", str(first),
                               "--epochs", "1", "--train-size", "201", "--test-size", "50",
                               "--save", str(out), *flags], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert nnumba.stored_training(out)["drop_last"] is want


@pytest.mark.parametrize("kernel", ["accumulate", "multiply", "scale"])
def test_elementwise_kernels_refuse_an_output_shifted_over_an_input(kernel):
    """accumulate(buf[1:], buf[:-1]) gave a running sum where numpy adds the old values;
    in place (the same array) stays allowed."""
    from nnumba.kernels import cpu
    buf, three = np.full(6, 2, np.float32), np.full(5, 3, np.float32)
    calls = {"accumulate": lambda: cpu.accumulate(buf[1:], buf[:-1]),
             "multiply": lambda: cpu.multiply(buf[:-1], three, buf[1:]),
             "scale": lambda: cpu.scale(buf[:-1], 3.0, buf[1:])}
    with pytest.raises(NnumbaError, match="overlaps"):
        calls[kernel]()
    assert np.all(buf == 2)  # nothing written
    cpu.scale(buf, 3.0, buf)
    cpu.accumulate(buf[1:], buf[1:])  # in place, two views of one span
    np.testing.assert_array_equal(buf, [6, 12, 12, 12, 12, 12])


def test_conv_backward_weight_refuses_dw_and_db_in_one_buffer():
    from nnumba.kernels import cpu
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 4, 4)).astype(np.float32)
    dy = rng.normal(size=(2, 2, 3, 3)).astype(np.float32)
    buf = np.zeros(8, np.float32)
    with pytest.raises(NnumbaError, match="db_out"):
        cpu.conv2d_backward_weight(x, dy, 1, 0, buf.reshape(2, 1, 2, 2), buf[:2])


def test_conv_backward_weight_takes_a_strided_dy():
    """numba's TypingError (a reshape of a strided image) before; the result is that of
    the contiguous copy."""
    from nnumba.kernels import cpu
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    dy = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)[..., ::2]
    dw, db = np.zeros((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)
    dw_ref, db_ref = dw.copy(), db.copy()
    cpu.conv2d_backward_weight(x, np.ascontiguousarray(dy), 1, 0, dw_ref, db_ref)
    cpu.conv2d_backward_weight(x, dy, 1, 0, dw, db)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, db_ref, rtol=1e-5, atol=1e-5)
