"""Fuzz 52: MPI training with ranks that disagree.  Each test runs `mpiexec -n 2` on this
very file (the worker at the bottom), as tests/test_mpi.py does, in a process group of its
own that is killed with SIGKILL at the end, so that a hang fails the test and leaves no rank
behind.  The tests skip where mpi4py or mpiexec is missing."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_mpi import MPIEXEC, REPO, TIMEOUT, needs_mpi


def mpi_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "MPI_LOCAL", "PMIX_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("NUMBA_NUM_THREADS", "1")
    return env


def mpiexec(*args, timeout=TIMEOUT, sigterm_after=None):
    """(returncode, stderr) of `mpiexec args`; returncode None where it hung.  With
    ``sigterm_after``, a job still running then gets SIGTERM (what timeout and scancel
    send) and ``timeout`` more seconds to end."""
    proc = subprocess.Popen([MPIEXEC, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=mpi_env(), cwd=REPO,
                            start_new_session=True)
    try:
        try:
            out, err = proc.communicate(timeout=sigterm_after or timeout)
            return proc.returncode, err
        except subprocess.TimeoutExpired:
            if sigterm_after is None:
                return None, ""
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=timeout)
            return ("sigterm", err)
        except subprocess.TimeoutExpired:
            return None, ""
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # every rank, hung or not
        except ProcessLookupError:
            pass
        proc.communicate()


def two_ranks(what, rank1_what=None):
    me = [sys.executable, __file__]
    return ["-n", "1", *me, what, ":", "-n", "1", *me, rank1_what or what]


# ---- finding 1: one bad CLI argument on one rank ------------------------------------------
@needs_mpi
def test_a_bad_cli_argument_on_one_rank_ends_the_job_with_its_error():
    """`mpiexec -n 1 nnumba train ... : -n 1 nnumba train ... --epochs x` hung for ever:
    rank 1 exits with argparse's error before MPI_Init, rank 0 waits in MPI_Init, and the
    SIGTERM handler the CLI installs before setup() makes it ignore timeout's SIGTERM."""
    script = Path(sys.executable).with_name("nnumba")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "nnumba"]
    args = ["train", "--json", "--train-size", "200", "--test-size", "50", "--epochs", "1"]
    rc, err = mpiexec("-n", "1", *cmd, *args, ":", "-n", "1", *cmd, *args, "--epochs", "x",
                      timeout=15, sigterm_after=45)
    assert rc is not None, "the job survived SIGTERM: only SIGKILL ended it"
    assert rc != "sigterm", "the job hung until SIGTERM: a bad argument on one rank"
    assert rc != 0 and "invalid int value: 'x'" in err


# ---- finding 2: another loss on one rank ---------------------------------------------------
@needs_mpi
@pytest.mark.parametrize("what", ["loss-reduction", "loss-class", "loss-lam"])
def test_another_loss_on_one_rank_is_a_clear_error(what):
    """docs/mpi.md: fit compares the settings over the ranks, since another learning rate
    trained on silently.  Another loss (its class, reduction or lam) still does: the job
    ends with rc 0, identical weights on both ranks, those of neither loss."""
    rc, err = mpiexec(*two_ranks(what))
    assert rc is not None, "hung"
    assert rc != 0, "trained on silently with another loss on rank 1"
    assert "differ between the MPI ranks" in err and "loss" in err


# ---- finding 3: another trainer on one rank --------------------------------------------------
@needs_mpi
def test_another_trainer_on_one_rank_is_a_clear_nnumba_error():
    """DistributedSGDTrainer(shuffle=False) on rank 0 and DistributedGDTrainer on rank 1:
    MPICH's 'Message truncated' error stack, no nnumba word (with shuffle=True it is
    caught, as 'shuffle differ')."""
    rc, err = mpiexec(*two_ranks("trainer-kind"))
    assert rc is not None, "hung"
    assert rc != 0
    assert "differ between the MPI ranks" in err, err[-800:]
    assert "Message truncated" not in err


# ---- finding 4: the distributed perceptron does not compare its inputs -------------------------
@needs_mpi
def test_perceptron_test_set_on_one_rank_only_is_a_clear_error():
    rc, err = mpiexec(*two_ranks("perceptron-test-rank0"))
    assert rc is not None, "hung"
    assert rc != 0
    assert "Message truncated" not in err, err[-800:]
    assert "differ" in err


@needs_mpi
def test_perceptron_with_other_data_on_one_rank_is_a_clear_error():
    """docs/mpi.md: every rank passes the same full (x, y); SGD and GD check a checksum of
    it, the perceptron trained silently on a mix of the ranks' sets."""
    rc, err = mpiexec(*two_ranks("perceptron-data-differ"))
    assert rc is not None, "hung"
    assert rc != 0, "trained on silently on other data on rank 1"
    assert "differ" in err


# ---- finding 5: a rank of a library script that raises outside fit ---------------------------
@needs_mpi
def test_a_script_that_raises_on_one_rank_after_setup_does_not_hang():
    """docs/mpi.md: every rank loads the data from its own disk.  A missing file on one
    host raised on that rank, between setup() and fit: its MPI_Finalize at exit and the
    other rank's Bcast in the trainer waited for each other for ever."""
    rc, err = mpiexec(*two_ranks("raise-after-setup"), timeout=40)
    assert rc is not None, "the job hung after rank 1 raised"
    assert rc != 0 and "FileNotFoundError" in err


# ---- the worker --------------------------------------------------------------------------------
def worker(what):
    sys.path.insert(0, str(REPO))
    import nnumba
    from nnumba.distributed import (DistributedGDTrainer, DistributedSGDTrainer, setup,
                                    train_perceptron_distributed)
    from nnumba.losses import CrossEntropy, Hinge, Logistic
    comm = setup()
    r = comm.rank
    rng = np.random.default_rng(7)
    x = rng.standard_normal((203, 6)).astype(np.float32)
    y = (x @ rng.standard_normal((6, 3))).argmax(1).astype(np.int64)
    signs = np.where(y == 0, 1, -1)
    mlp = [{"type": "Linear", "in_features": 6, "out_features": 8}, {"type": "Tanh"},
           {"type": "Linear", "in_features": 8, "out_features": 3}]
    if what == "raise-after-setup":
        if r == 1:
            np.load("/nonexistent/fuzz52/x_train.npy")
        model = nnumba.build(mlp, seed=5)
        DistributedSGDTrainer(model, CrossEntropy(), comm=comm, lr=0.1).fit(x, y)
    elif what.startswith("loss-"):
        if what == "loss-reduction":
            model, yy = nnumba.build(mlp, seed=5), y
            loss = CrossEntropy(reduction="mean" if r == 0 else "sum")
        else:
            model, yy = nnumba.build([{"type": "Linear", "in_features": 6,
                                       "out_features": 1}], seed=1), signs
            loss = (Logistic() if r == 0 else Hinge()) if what == "loss-class" \
                else Hinge(lam=0.1 * r)
        DistributedSGDTrainer(model, loss, comm=comm, lr=0.1, batch_size=20).fit(x, yy, 2)
    elif what == "trainer-kind":
        model = nnumba.build(mlp, seed=5)
        trainer = DistributedSGDTrainer(model, CrossEntropy(), comm=comm, lr=0.1,
                                        batch_size=20, shuffle=False) if r == 0 else \
            DistributedGDTrainer(model, CrossEntropy(), comm=comm, lr=0.1, batch_size=20)
        trainer.fit(x, y, 2)
    elif what == "perceptron-test-rank0":
        test = dict(x_test=x[:37], y_test=signs[:37]) if r == 0 else {}
        train_perceptron_distributed(x, signs, 5, comm=comm, **test)
    elif what == "perceptron-data-differ":
        if r == 1:
            x, signs = x[::-1].copy(), signs[::-1].copy()
        train_perceptron_distributed(x, signs, 5, comm=comm)


if __name__ == "__main__":
    worker(sys.argv[1])
