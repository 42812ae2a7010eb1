"""Review 43 of 3814422..c01510b: a rank failing a command that never starts MPI ends
alone (starting MPI to abort waited for ranks that had ended); a host numpy loss runs
on cuda; identical losses whose options hold objects agree over the ranks; resuming
with another plugin's loss of the saved name does not take the saved options (the
file now records the loss's plugin); a positional-only required loss option is a
clear error; summary's input-shape guess follows the input_shape() contract."""
import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import Loss
from nnumba.cli import main
from nnumba.device import to_host
from nnumba.errors import NnumbaError
from nnumba.registry import get_registry
from test_plugin_trial46 import Pin46 as Pin  # a plugin's quantile loss
from test_plugin_trial46 import _npz, _plugin, _stored_training as _training
from test_mpi import MPIEXEC, REPO, needs_mpi



def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "MPI_LOCAL", "PMIX_", "NUMBA_ENABLE_CUDASIM"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    env.setdefault("NUMBA_NUM_THREADS", "1")
    env.update(extra)
    return env


def _mpiexec(args, timeout=60, cwd=None):
    """(returncode or None where it hung, stdout + stderr)."""
    proc = subprocess.Popen([MPIEXEC, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(),
                            cwd=cwd or "/tmp", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()


# --- 1 (high): a rank that fails a command which never joins MPI hangs the job -----------
@needs_mpi
def test_one_rank_failing_a_non_mpi_command_ends_the_job():
    """`mpiexec -n 2 nnumba summary ...` where rank 1's model is unknown (its own file
    missing, a typo on one line of an MPMD launch): rank 0 succeeds and exits without
    MPI_Init; rank 1's new _abort_mpi_job imports mpi4py, whose MPI_Init then waits for
    rank 0 for ever (busy-spinning).  3814422 ended with status 2 in under a second."""
    rc, out = _mpiexec(["-n", "1", sys.executable, "-m", "nnumba", "summary", "mlp", ":",
                        "-n", "1", sys.executable, "-m", "nnumba", "summary", "nosuchmodel"],
                       timeout=45)
    assert rc is not None, "the job hung (rank 1 waits in MPI_Init for a rank that left)"
    assert rc == 2, out


# --- 2 (high) -----------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason='numba-cuda is not installed (pip install "nnumba[cuda]")')
def test_documented_host_numpy_loss_runs_on_cuda(tmp_path):
    """docs/plugins.md's SmoothedCrossEntropy returns its per-sample losses as a host
    numpy array ("the loss then works on every device"); HEAD's new check
    `device.owns(losses)` refuses it on CUDA with a ContractError.  The CUDA simulator
    runs in a subprocess of its own."""
    doc = (REPO / "docs" / "plugins.md").read_text()
    code = re.search(r"```python\n# src/nnumba_spirals/losses.py\n(.*?)```", doc, re.S).group(1)
    (tmp_path / "smoothed.py").write_text(code)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        from smoothed import SmoothedCrossEntropy
        from nnumba.device import to_device
        z = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
        y = np.array([0, 1, 2, 3, 0])
        print(SmoothedCrossEntropy()(z, y), SmoothedCrossEntropy()(to_device(z), y))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=_env(NUMBA_ENABLE_CUDASIM="1"), timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    cpu, cuda = map(float, run.stdout.split())
    assert cuda == pytest.approx(cpu, rel=1e-6)


# --- 3 (medium): the distributed fit refuses identical losses -----------------------------
@needs_mpi
def test_distributed_fit_accepts_identical_losses_with_an_option_object(tmp_path):
    """_check_agreement hashes json.dumps(loss.config(), default=repr): an option whose
    repr holds its address (an object, a function) differs on every rank, and a correct
    job aborts with 'the loss (its type and options) differ between the MPI ranks'.
    Reference: the same script trains on one rank."""
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent("""
        import numpy as np, nnumba
        from nnumba.losses import MSE
        from nnumba.distributed import setup, DistributedSGDTrainer
        comm = setup()
        class Scheme:
            pass
        class Weighted(MSE):
            def __init__(self, scheme=None, reduction="mean"):
                super().__init__(reduction)
                self.scheme = Scheme() if scheme is None else scheme
            def config(self):
                return {"scheme": self.scheme, **super().config()}
        x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
        y = x @ np.ones((3, 2), np.float32)
        model = nnumba.Sequential.from_spec(
            [{"type": "Linear", "in_features": 3, "out_features": 2}], seed=0)
        DistributedSGDTrainer(model, Weighted(), lr=0.01, batch_size=4, comm=comm).fit(
            x, y, epochs=1)
        if comm.is_root:
            print("TRAINED")
    """))
    rc, out = _mpiexec(["-n", "2", sys.executable, str(worker)], timeout=120)
    assert rc == 0 and "TRAINED" in out, out[-2000:]


# --- plugin losses on the command line ---------------------------------------------------
class OtherPin(Loss):
    """Another plugin's, unrelated loss of the same name, which also has an option q."""

    def __init__(self, q: float = 0.1, reduction: str = "mean"):
        super().__init__(reduction)
        self.q = float(q)

    def config(self):
        return {"q": self.q, **super().config()}

    def _compute(self, y_hat, y, scale):
        d = to_host(y_hat).astype(np.float64)
        return self.q * (d ** 2).sum(1), self.device.to_device(
            (scale * self.q * 2 * d).astype(y_hat.dtype))


class PosOnly(Loss):
    def __init__(self, w, /, reduction: str = "mean"):
        super().__init__(reduction)
        self.w = w

    def _compute(self, y_hat, y, scale):  # never reached
        raise AssertionError


# --- 4 (medium) -------------------------------------------------------------------------
def _resume_after_a_clash(tmp_path, *loss):
    """(status, stderr) of `nnumba train --model pin.npz [--loss ...]`: pin.npz trained
    with plugin rva's 'Pin' (q=0.9), then plugin rvb installed, claiming 'Pin' too."""
    nnumba.register_plugin(_plugin(losses={"Pin": Pin}), "rva")
    registry = get_registry()
    try:
        x = np.random.default_rng(1).normal(size=(45, 4)).astype(np.float32)
        model = nnumba.build("mlp", inputs=4, classes=3, hidden=[8], seed=0)
        trainer = nnumba.SGDTrainer(model, Pin(q=0.9), lr=0.01, batch_size=15, seed=0)
        trainer.fit(x, np.eye(3, dtype=np.float32)[np.arange(45) % 3], epochs=1)
        saved = nnumba.save(model, tmp_path / "pin.npz", classes=["0", "1", "2"],
                            training=trainer)
        assert _training(saved)["loss_plugin"] == "rva"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            registry.pm.register(_plugin(losses={"Pin": OtherPin}), name="rvb")
            registry._dists["rvb"] = "nnumba-rvb 1.0"
            registry._cache.clear()
            try:
                return main(["train", "--model", str(saved), "--data", str(_npz(tmp_path)),
                             "--epochs", "1", *loss, "--no-progress",
                             "--save", str(tmp_path / "on.npz")])
            finally:
                registry.pm.unregister(name="rvb")
                registry._dists.pop("rvb", None)
                registry._cache.clear()
    finally:
        nnumba.unregister_plugin("rva")


def test_resume_with_another_plugins_loss_does_not_take_the_saved_options(tmp_path, capsys):
    """With --loss rvb:Pin, the saved run's options went to plugin rvb's unrelated 'Pin'
    (loss_options compared bare names), as 'its loss's options (q=0.9) ... to go on as
    one run'."""
    rc = _resume_after_a_clash(tmp_path, "--loss", "rvb:Pin")
    err = capsys.readouterr().err
    if rc == 0:  # trained: with B's own defaults, not A's saved options
        assert _training(tmp_path / "on.npz")["loss_options"]["q"] == 0.1, err
    else:       # or refused, clearly
        assert rc == 2 and "please report" not in err, err


def test_a_bare_resume_after_a_clash_goes_on_with_the_saved_plugins_loss(tmp_path, capsys):
    """The file records the plugin of its loss: `--model pin.npz` alone goes on with
    plugin rva's 'Pin' and its saved q=0.9 (the bare name was refused as ambiguous, and
    the qualified one dropped q silently: trial 46)."""
    rc = _resume_after_a_clash(tmp_path)
    err = capsys.readouterr().err
    assert rc == 0, err
    training = _training(tmp_path / "on.npz")
    assert training["loss_plugin"] == "rva" and training["loss_options"]["q"] == 0.9, err


# --- 5 (low) -----------------------------------------------------------------------------
def test_loss_with_a_positional_only_required_option_is_a_clear_error(tmp_path, capsys):
    """build_loss's new check lists required POSITIONAL_OR_KEYWORD and KEYWORD_ONLY
    parameters but not POSITIONAL_ONLY ones: `def __init__(self, w, /)` still ends in
    'TypeError: ... missing 1 required positional argument ... please report it', status 1."""
    nnumba.register_plugin(_plugin(losses={"PosOnly": PosOnly}), "rvpo")
    try:
        rc = main(["train", "--data", str(_npz(tmp_path)), "--loss", "PosOnly",
                   "--epochs", "1", "--no-progress"])
    finally:
        nnumba.unregister_plugin("rvpo")
    err = capsys.readouterr().err
    assert "please report it" not in err and "TypeError" not in err, err
    assert rc == 2 and "PosOnly" in err, err


# --- 6 (low): summary's guess and the input_shape contract disagree -----------------------
class NpWide(nnumba.Layer):
    def __init__(self, n: int = 3):
        super().__init__()
        self.n = np.int64(n)  # a numpy int: input_shape's contract (_check_declared) takes it

    def input_shape(self):
        return (self.n,)

    def config(self):
        return {"n": int(self.n)}

    def _forward(self, x):
        return x


class IntShape(nnumba.Layer):
    def input_shape(self):
        return 3  # breaks the contract: not a tuple

    def _forward(self, x):
        return x


@pytest.fixture
def shape_layers():
    nnumba.register_plugin(_plugin(layers={"NpWide": NpWide, "IntShape": IntShape}), "rvsh")
    yield
    nnumba.unregister_plugin("rvsh")


def test_summary_guesses_a_first_layers_numpy_int_input_shape(shape_layers):
    """_guess_input_shape accepts only Python ints, where check_fits/_check_declared take
    np.integer sizes too: 'cannot tell the input shape ... e.g. --input-shape 1,28,28'
    (an example the layer refuses) for a layer that fixes (3,)."""
    from nnumba.summary import summarize
    assert summarize([{"type": "NpWide"}]).input_shape == (3,)


def test_summary_of_a_layer_whose_input_shape_breaks_the_contract(shape_layers):
    """input_shape() returning an int: the new guess iterates it, a bare TypeError
    ('int' object is not iterable) instead of nnumba's ContractError (pre-existing in
    _example_shape, now reached first)."""
    from nnumba.summary import summarize
    with pytest.raises(NnumbaError):
        summarize([{"type": "IntShape"}])


def test_the_command_leaves_a_host_programs_sigint_handler_as_it_found_it(capsys):
    """main() called in a host program (a test, a notebook) after a failure: a variable
    renamed in the MPI abort's change put the command's own Ctrl-C handler (which ends
    the process with os._exit(130)) in place of Python's."""
    import signal
    before = signal.getsignal(signal.SIGINT)
    assert main(["summary", "no-such-spec.json"]) == 2
    assert main(["summary", "mlp"]) == 0
    assert signal.getsignal(signal.SIGINT) is before
