"""Review 39 (of this sitting's own change, 43d6ab0..c6c3a3e): the regressions it found.

Each failed at c6c3a3e: nnumba.cli.main in a host program took over its SIGTERM handler;
a save error during a Ctrl-C was reported as the Ctrl-C; a refused fit reset the other
thread's model; a mixin's wrong layer attribute passed."""
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import nnumba
from nnumba.errors import ContractError

MLP = [{"type": "Linear", "in_features": 6, "out_features": 8}, {"type": "ReLU"},
       {"type": "Linear", "in_features": 8, "out_features": 3}]


# ---- 1. deferred_interrupt takes over a host application's own SIGTERM handler -------
def test_cli_main_in_a_library_process_leaves_the_hosts_sigterm_handler_alone(tmp_path):
    """cli.main() called from a process that is not the command (command == False) installs
    no SIGTERM handler, but deferred_interrupt (around the save) replaces *any* callable
    SIGTERM handler with its own and then raises Terminated: the host's handler never runs
    and main returns 143.  On 43d6ab0 the host's handler ran and main returned 0."""
    script = textwrap.dedent(f"""
        import os, signal
        import nnumba.io
        from nnumba import cli
        got = []
        signal.signal(signal.SIGTERM, lambda s, f: got.append(s))  # the host's own handler
        real = nnumba.io.save
        def save(*a, **k):
            os.kill(os.getpid(), signal.SIGTERM)  # lands while the weights are saved
            return real(*a, **k)
        nnumba.io.save = save
        rc = cli.main(["train", "--epochs", "1", "--train-size", "100", "--test-size", "50",
                       "--save", {str(tmp_path / 'w.npz')!r}])
        print("RESULT", rc, got)
    """)
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=300)
    assert f"RESULT 0 [{int(signal.SIGTERM)}]" in out.stdout, out.stdout + out.stderr


# ---- 2. write_whole turns an error raised while a Ctrl-C is being handled into it -----
def test_a_save_error_while_handling_ctrl_c_is_not_reported_as_the_ctrl_c(tmp_path, monkeypatch):
    """`nnumba train` saves the weights inside `except KeyboardInterrupt:`; any exception
    raised directly in np.savez there has that Ctrl-C as __context__, and write_whole now
    re-raises the Ctrl-C instead (the run then says only "interrupted", not that the save
    failed).  errors.caused_by_interrupt documents the opposite rule (not __context__)."""
    import numpy.lib.format as npformat
    model = nnumba.Sequential.from_spec(MLP, seed=0)

    def fail(*a, **k):
        raise MemoryError("no memory for the array's bytes")
    monkeypatch.setattr(npformat, "write_array", fail)
    raised = None
    try:
        raise KeyboardInterrupt  # the training's Ctrl-C, being handled
    except KeyboardInterrupt:
        try:
            nnumba.save(model, tmp_path / "w.npz")
        except BaseException as exc:  # noqa: BLE001 - HEAD: the KeyboardInterrupt
            raised = exc
    assert isinstance(raised, MemoryError), repr(raised)
    assert os.listdir(tmp_path) == []


# ---- 3. a refused fit now runs fit's clean-up on the other thread's model --------------
def test_a_fit_refused_for_another_threads_training_raises_one_error(tmp_path):
    """hold_for_fit moved inside fit's try: when it refuses (another thread trains the
    model), the finally now calls _reuse(model, ...) on that model, which raises a second
    ContractError chained to the first ("During handling of the above exception, another
    exception occurred") and touches a model another thread owns."""
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    r = np.random.default_rng(0)
    x, y = r.standard_normal((30, 6)).astype(np.float32), r.integers(0, 3, 30)
    model = nnumba.Sequential.from_spec(MLP, seed=0)
    a = SGDTrainer(model, CrossEntropy(), lr=0.05, batch_size=10, seed=0)
    inside, go = threading.Event(), threading.Event()
    real = a._epoch

    def epoch(*args):
        inside.set()
        go.wait(30)
        return real(*args)
    a._epoch = epoch
    th = threading.Thread(target=lambda: a.fit(x, y, epochs=1))
    th.start()
    try:
        assert inside.wait(30)
        b = SGDTrainer(model, CrossEntropy(), lr=0.05, batch_size=10, seed=0)
        with pytest.raises(ContractError, match="being trained by fit") as caught:
            b.fit(x, y, epochs=1)
    finally:
        go.set()
        th.join(60)
    assert caught.value.__context__ is None  # HEAD: a second ContractError from _reuse


# ---- 4. class-attribute check skips what a layer inherits from a mixin ----------------
def test_a_wrong_devices_inherited_from_a_mixin_is_refused_as_the_class_is_defined():
    """check_class_attributes reads cls.__dict__ only: devices = "cuda" (read as the
    letters c, u, d, a) from a plain mixin class passes, the case the commit fixes."""
    from nnumba import Layer

    class CudaOnly:
        devices = "cuda"

    with pytest.raises(ContractError, match="devices must be None or a tuple"):
        type("Softsign", (CudaOnly, Layer), {})
