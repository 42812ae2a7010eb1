"""Data-parallel training over MPI, checked with `mpiexec -n 2` runs of this very file.

Run as a script under mpiexec, the file is the worker (see ``worker``): each rank
trains and writes its own weights, and the tests compare them with each other
and with a single-process run over the same global batches. The tests skip
where mpi4py or mpiexec is missing; two of them need neither.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

RANKS = 2
TIMEOUT = 60  # seconds per mpiexec run: a hang fails the test instead of CI
REPO = Path(__file__).resolve().parents[1]
# The mpich wheel puts mpiexec beside the venv's python, which may not be on PATH.
_BESIDE = Path(sys.executable).with_name("mpiexec")
MPIEXEC = str(_BESIDE) if _BESIDE.is_file() else shutil.which("mpiexec")
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not (MPIEXEC and HAVE_MPI4PY),
                               reason='needs mpi4py and mpiexec: pip install "nnumba[mpi]"')

# ---- the problems both sides train on ------------------------------------------------------
N_SAMPLES, N_FEATURES, N_CLASSES = 519, 12, 3  # 519 = 14 x 37 + 1: a last batch one rank skips

MLP_SPEC = [{"type": "Linear", "in_features": N_FEATURES, "out_features": 16}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 16, "out_features": N_CLASSES}]
SVM_SPEC = [{"type": "Linear", "in_features": N_FEATURES, "out_features": 1}]

# name -> (trainer, model spec, loss name, loss kwargs, trainer kwargs, epochs)
SCENARIOS = {
    "sgd-shuffled": ("sgd", MLP_SPEC, "CrossEntropy", {},
                     dict(lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=37, seed=3), 3),
    "sgd-in-order-sum": ("sgd", MLP_SPEC, "CrossEntropy", {"reduction": "sum"},
                         dict(lr=0.002, batch_size=37, shuffle=False), 2),
    "gd": ("gd", MLP_SPEC, "CrossEntropy", {}, dict(lr=0.5, momentum=0.5, batch_size=50), 4),
    "gd-svm-penalty": ("gd", SVM_SPEC, "Hinge", {"lam": 0.01}, dict(lr=0.1, batch_size=64), 5),
}


def make_data(labels="classes"):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float32)
    score = x @ rng.standard_normal((N_FEATURES, N_CLASSES)).astype(np.float32)
    if labels == "classes":
        return x, score.argmax(axis=1).astype(np.int64)
    return x, np.where(score[:, 0] >= 0, 1, -1).astype(np.int64)


def make_separable(n=400, d=8):
    """Linearly separable with a margin, labels in {-1, +1}."""
    rng = np.random.default_rng(11)
    w, x = rng.standard_normal(d), rng.uniform(-1, 1, (4 * n, d))
    score = x @ w + 0.3
    keep = np.abs(score) > 0.2
    return x[keep][:n], np.where(score[keep][:n] > 0, 1, -1)


def train(name, distributed, comm=None, data=None, before=None):
    """The model of scenario ``name`` after training, and the trainer's history;
    ``before(x)`` runs after a first fit of no epochs, where given."""
    import nnumba
    from nnumba.registry import get_loss
    kind, spec, loss_name, loss_kwargs, kwargs, epochs = SCENARIOS[name]
    x, y = data or make_data("classes" if loss_name == "CrossEntropy" else "signs")
    model = nnumba.build(spec, seed=5)
    if distributed:
        from nnumba.distributed import TRAINERS
        trainer = TRAINERS[kind](model, get_loss(loss_name)(**loss_kwargs), comm=comm, **kwargs)
    else:
        from nnumba.train import TRAINERS
        trainer = TRAINERS[kind](model, get_loss(loss_name)(**loss_kwargs), **kwargs)
    if before is not None:
        trainer.fit(x, y, epochs=0)
        before(x)
    history = trainer.fit(x, y, epochs=epochs)
    return model, history


def plugin_dropout():
    """A dropout as a plugin writes one from docs/plugins.md: its own generator, seeded
    from reset_parameters' rng and returned by random_generator(); it keeps each
    training mask.  (No for_rank: the built-in Dropout's own hook.)"""
    from nnumba import Layer

    class Drop(Layer):
        def reset_parameters(self, rng):
            self._rng, self.masks = np.random.default_rng(rng.integers(2**63)), []

        def random_generator(self):
            return self._rng

        def _forward(self, x):
            self._mask = (self._rng.random(x.shape) >= 0.5).astype(x.dtype) * 2
            if self.training:
                self.masks.append(self._mask.copy())
            return np.multiply(x, self._mask, out=self._buffer("y", x.shape))

        def _backward(self, g):
            return np.multiply(g, self._mask, out=self._buffer("dx", g.shape))
    return Drop()


def plugin_input_mean():
    """A layer that keeps, as state (``trainable=False``), a running mean of its input
    (a batch norm's, where the input is the data itself), and passes it on."""
    from nnumba import Layer

    class InputMean(Layer):
        def __init__(self, features):
            super().__init__()
            self.running = self.add_param("running", (features,), trainable=False)

        def _forward(self, x):
            if self.training:
                self.running.value[...] = 0.9 * self.running.value + 0.1 * x.mean(0)
            y = self._buffer("y", x.shape)
            y[...] = x
            return y

        def _backward(self, g):
            dx = self._buffer("dx", g.shape)
            dx[...] = g
            return dx
    return InputMean(N_FEATURES)


# ---- the worker: `mpiexec -n 2 python tests/test_mpi.py WHAT OUT_DIR` --------------------
def worker(what, out):
    import numba

    from nnumba.distributed import setup, train_perceptron_distributed
    comm = setup()
    out = Path(out)
    if what == "fail-on-rank-1":
        x, y = make_data()

        def spoil(x):  # after the ranks agreed on the data: only this rank meets it,
            if comm.rank == 1:  # in training, while rank 0 waits in Allreduce
                x[3, 0] = np.nan
        train("sgd-shuffled", True, comm, data=(x, y), before=spoil)  # MPI_Abort: no return
        return
    if what == "lr-differs-on-rank-1":  # trained on silently, each rank its own lr
        import nnumba
        from nnumba.distributed import DistributedSGDTrainer
        from nnumba.layers import Linear
        from nnumba.losses import CrossEntropy
        x, y = make_data()
        trainer = DistributedSGDTrainer(nnumba.Sequential(Linear(N_FEATURES, N_CLASSES), seed=0),
                                        CrossEntropy(), lr=0.1 + 0.1 * comm.rank, comm=comm)
        trainer.fit(x, y)  # a clear error on every rank, then MPI_Abort
        return
    if what == "plugin-masks":
        import nnumba
        from nnumba.distributed import DistributedSGDTrainer
        from nnumba.layers import Linear
        from nnumba.losses import CrossEntropy
        model = nnumba.Sequential(Linear(N_FEATURES, 8), plugin_dropout(),
                                  Linear(8, N_CLASSES), seed=0)
        DistributedSGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=40, seed=0,
                              comm=comm).fit(*make_data(), epochs=1)
        np.save(Path(out) / f"masks-rank{comm.rank}.npy", np.stack(model.layers[1].masks[:12]))
        return
    if what == "state":
        import nnumba
        from nnumba.distributed import DistributedSGDTrainer
        from nnumba.layers import Linear
        from nnumba.losses import CrossEntropy
        model = nnumba.Sequential(plugin_input_mean(), Linear(N_FEATURES, N_CLASSES), seed=0)
        model.layers[0].running.value[...] += comm.rank  # rank 0's start is everyone's
        x, y = make_data()  # 12 batches of 40: equal shares, whose means average exactly
        DistributedSGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=40, shuffle=False,
                              comm=comm).fit(x[:480], y[:480], epochs=2)
        np.save(Path(out) / f"state-rank{comm.rank}.npy", model.layers[0].running.value)
        return
    info = {"size": comm.size, "numba_threads": numba.get_num_threads(), "histories": {}}
    for name in SCENARIOS:
        model, history = train(name, True, comm)
        np.save(out / f"{name}-rank{comm.rank}.npy", model.flat_params)
        info["histories"][name] = history.epochs
    x, y = make_separable()
    result = train_perceptron_distributed(x[:300], y[:300], x_test=x[300:], y_test=y[300:],
                                          comm=comm)
    np.save(out / f"perceptron-rank{comm.rank}.npy", np.append(result.w, result.b))
    info["perceptron"] = {"converged": result.converged, "history": result.history}
    (out / f"info-rank{comm.rank}.json").write_text(json.dumps(info))


# ---- running mpiexec ----------------------------------------------------------------------
def mpi_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "MPI_LOCAL", "PMIX_"))}  # not nested in a job
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def mpiexec(*args, timeout=TIMEOUT):
    cmd = [MPIEXEC, "-n", str(RANKS), *map(str, args)]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=mpi_env(), cwd=REPO)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} hung for more than {timeout} s:\n{exc.stderr}")
    done.seconds = time.perf_counter() - start
    return done


@pytest.fixture(scope="module")
def ranks_output(tmp_path_factory):
    """Every rank's weights and histories from one `mpiexec -n 2` run of the worker."""
    out = tmp_path_factory.mktemp("mpi")
    done = mpiexec(sys.executable, __file__, "train", out)
    assert done.returncode == 0, done.stderr
    infos = [json.loads((out / f"info-rank{r}.json").read_text()) for r in range(RANKS)]
    return out, infos


def load(out, name):
    return [np.load(out / f"{name}-rank{r}.npy") for r in range(RANKS)]


@needs_mpi
@pytest.mark.parametrize("name", SCENARIOS)
def test_weights_identical_on_every_rank(ranks_output, name):
    out, infos = ranks_output
    weights = load(out, name)
    for other in weights[1:]:
        assert np.array_equal(weights[0], other)  # bit for bit
    untimed = [[{k: v for k, v in row.items() if k != "seconds"} for row in info["histories"][name]]
               for info in infos]
    assert untimed[0] == untimed[1]


@needs_mpi
@pytest.mark.parametrize("name", SCENARIOS)
def test_equal_to_one_process_over_the_same_global_batches(ranks_output, name):
    out, infos = ranks_output
    model, history = train(name, distributed=False)
    distributed = load(out, name)[0]
    assert not np.array_equal(model.flat_params, nnumba_start(name))  # it did train
    np.testing.assert_allclose(distributed, model.flat_params, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(infos[0]["histories"][name], history.epochs):
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)


def nnumba_start(name):
    import nnumba
    return nnumba.build(SCENARIOS[name][1], seed=5).flat_params


@needs_mpi
def test_threads_per_rank_default_to_cores_over_ranks(ranks_output):
    import numba

    from nnumba.distributed.threads import available_cores
    _, infos = ranks_output
    want = min(max(1, available_cores() // RANKS), numba.config.NUMBA_NUM_THREADS)
    if "OMP_NUM_THREADS" in os.environ:
        want = None  # the user's choice, whatever it is
    for info in infos:
        assert info["size"] == RANKS
        if want is not None:
            assert info["numba_threads"] == want


@needs_mpi
def test_distributed_perceptron_converges_on_separable_data(ranks_output):
    out, infos = ranks_output
    w0, w1 = load(out, "perceptron")
    assert np.array_equal(w0, w1)
    run = infos[0]["perceptron"]
    assert run["converged"] and run["history"][-1]["nb_changes"] == 0
    assert [row["epoch"] for row in run["history"]] == list(range(len(run["history"])))
    assert run["history"][-1]["train_error"] == 0
    x, y = make_separable()
    assert np.array_equal(np.where(x[:300] @ w0[:-1] + w0[-1] >= 0, 1, -1), y[:300])


@needs_mpi
def test_settings_that_differ_between_ranks_are_a_clear_error(tmp_path):
    done = mpiexec(sys.executable, __file__, "lr-differs-on-rank-1", tmp_path, timeout=30)
    assert done.returncode != 0
    assert "lr differ between the MPI ranks" in done.stderr


@needs_mpi
def test_a_plugin_layer_draws_its_own_numbers_on_each_rank(tmp_path):
    """docs/mpi.md: no two ranks drop the same units of their samples.  The trainer gave
    a stream of its own to each rank only through the built-in Dropout's for_rank: a
    plugin's dropout drew the same masks on every rank (plugin trial 30)."""
    done = mpiexec(sys.executable, __file__, "plugin-masks", tmp_path)
    assert done.returncode == 0, done.stderr
    masks = [np.load(tmp_path / f"masks-rank{r}.npy") for r in range(RANKS)]
    assert masks[0].shape == masks[1].shape and masks[0].shape[0] == 12
    assert 0.4 < (masks[0] == 0).mean() < 0.6  # it drops half, on each rank
    assert (masks[0] != masks[1]).mean() > 0.3  # independent draws differ in half the units


@needs_mpi
def test_state_is_the_mean_over_the_ranks_and_the_same_on_each(tmp_path):
    """A layer's trainable=False state (a batch norm's running statistics) updates from
    each rank's shares: it was never shared, and the ranks ended with models of their
    own, silently (plugin trial 34).  Averaged over the ranks after every epoch, a
    running mean of the input is one process's over the global batches."""
    done = mpiexec(sys.executable, __file__, "state", tmp_path)
    assert done.returncode == 0, done.stderr
    states = [np.load(tmp_path / f"state-rank{r}.npy") for r in range(RANKS)]
    assert np.array_equal(states[0], states[1])
    x = make_data()[0][:480].astype(np.float64)
    want = np.zeros(N_FEATURES)
    for _ in range(2):  # epochs, the global batches in order
        for start in range(0, len(x), 40):
            want = 0.9 * want + 0.1 * x[start:start + 40].mean(0)
    np.testing.assert_allclose(states[0], want, rtol=1e-4, atol=1e-6)


@needs_mpi
def test_a_failing_rank_aborts_the_job_with_a_clear_error(tmp_path):
    done = mpiexec(sys.executable, __file__, "fail-on-rank-1", tmp_path, timeout=30)
    assert done.returncode != 0
    assert "rank 1 of 2 failed: NonFiniteError" in done.stderr
    assert "aborting all 2 ranks" in done.stderr


@needs_mpi
@pytest.mark.parametrize("trainer", ["sgd", "perceptron"])
def test_mpiexec_nnumba_train_json_matches_one_process(trainer, capsys):
    args = ["train", "--json", "--trainer", trainer, "--train-size", "600"]
    args += ["--epochs", "2"] if trainer == "sgd" else []  # the perceptron: until it converges
    script = Path(sys.executable).with_name("nnumba")  # the console script, as users run it
    done = mpiexec(*([script] if script.is_file() else [sys.executable, "-m", "nnumba"]), *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout  # rank 0 alone prints the JSON
    assert done.stderr.count("data: mnist-5k") == 1  # and the progress lines
    result = json.loads(lines[0])
    assert result["mpi"]["ranks"] == RANKS

    from nnumba.cli import main
    assert main(args) == 0
    single = json.loads(capsys.readouterr().out)
    assert "mpi" not in single
    if trainer == "perceptron":  # parameter mixing is another algorithm: it converges too
        assert result["converged"] and single["converged"]
        assert result["test_accuracy"] >= 0.95
    else:  # the same global batches: the same model
        assert result["test_accuracy"] == pytest.approx(single["test_accuracy"], abs=0.002)
        assert result["train_loss"] == pytest.approx(single["train_loss"], rel=1e-3)


# ---- without MPI -------------------------------------------------------------------------------
def test_asking_for_mpi_without_mpi4py_says_how_to_install(monkeypatch, capsys):
    from nnumba.cli import main
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    assert main(["train", "--mpi", "--train-size", "100", "--epochs", "1"]) == 2
    assert 'pip install "nnumba[mpi]"' in capsys.readouterr().err


def test_single_process_path_never_imports_mpi4py():
    code = ("import sys, nnumba.distributed; from nnumba.cli import main; "
            "main(['train', '--json', '--train-size', '100', '--epochs', '1']); "
            "sys.exit('mpi4py' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT, env=mpi_env(), cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["epochs"] == 1


def test_threads_per_rank(monkeypatch):
    from nnumba.distributed import threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.threads_per_rank(local_ranks=2) == 4
    assert threads.threads_per_rank(local_ranks=16) == 1
    monkeypatch.setenv("MPI_LOCALNRANKS", "4")
    assert threads.threads_per_rank() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert threads.threads_per_rank(local_ranks=2) == 3


def test_shards_are_disjoint_contiguous_and_balanced():
    from nnumba.distributed.comm import shard_bounds
    for n in (0, 1, 5, 37, 100):
        for size in (1, 2, 3, 7):
            bounds = [shard_bounds(n, size, r) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


if __name__ == "__main__":
    worker(*sys.argv[1:])
