"""Review 42 of the day's change (97256ca..): a callback made train_perceptron copy the
set twice, and every MPI rank the whole set; check_all under warnings-as-errors
hid the ConformanceError behind a re-emitted warning; save refusing NaN weights left
the folders it had made."""
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.errors import NonFiniteError
from nnumba.testing import ConformanceError
from test_plugin_trial44 import _KeepsDerivedCopy


# ---- finding 1: a callback makes train_perceptron copy the set twice (every rank: whole) --

def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_perceptron_with_a_callback_holds_one_float64_copy_of_a_float32_set():
    """A float32 set has to become float64 once (the lecture's np.zeros), callback or
    not. Since 75c65bd a callback makes train_perceptron copy it as given (float32)
    *and then* convert that copy: 1.5x the memory of 97256ca (37.7 MB against 25.2 MB
    for a 12.5 MB float32 set). `nnumba train --trainer perceptron` always passes a
    callback (it prints the epoch lines), so the CLI never gets 709aaf6's saving and
    pays this instead. Reference: the float64 copy's own size, x.astype(float64).nbytes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 500)).astype(np.float32)
    y = np.where(x[:, 0] > 0, 1, -1)
    nnumba.train_perceptron(x[:10], y[:10], 1, callback=lambda row: None)  # compile
    one_copy = x.astype(np.float64).nbytes
    peak = _peak(lambda: nnumba.train_perceptron(x, y, 2, callback=lambda row: None))
    assert peak < 1.15 * one_copy, f"peak {peak / 1e6:.1f} MB for a float64 copy of {one_copy / 1e6:.1f} MB"


MPIEXEC = Path(sys.executable).with_name("mpiexec")

_MPI_SCRIPT = textwrap.dedent("""
    import sys, tracemalloc, numpy as np
    from mpi4py import MPI
    from nnumba.distributed.perceptron import train_perceptron_distributed
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 500)).astype(np.float32); y = np.where(x[:, 0] > 0, 1, -1)
    peaks = []
    for cb in (None, lambda row: None):
        train_perceptron_distributed(x[:10], y[:10], 1, callback=cb)
        tracemalloc.start(); train_perceptron_distributed(x, y, 2, callback=cb)
        peaks.append(tracemalloc.get_traced_memory()[1]); tracemalloc.stop()
    # a file a rank: the ranks' prints interleave on one pipe
    with open(f"{sys.argv[1]}/peaks-{MPI.COMM_WORLD.rank}", "w") as f:
        f.write(" ".join(map(str, peaks)))
""")


@pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec next to the interpreter")
def test_distributed_perceptron_with_a_callback_copies_no_full_set(tmp_path):
    """nnumba/distributed/perceptron.py: "This rank's rows only: the full set is never
    copied." With a callback (the CLI always gives one) train_perceptron now copies the
    whole set on every rank before sharding: at 2 ranks 25.2 MB a rank against 12.6 MB
    without a callback (and at 97256ca with one). Reference: the same run without a
    callback."""
    script = tmp_path / "w.py"
    script.write_text(_MPI_SCRIPT)
    pytest.importorskip("mpi4py")
    out = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(script), str(tmp_path)],
                         capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "NUMBA_NUM_THREADS": "1"})
    rows = [(tmp_path / f"peaks-{r}").read_text().split() for r in range(2)
            if (tmp_path / f"peaks-{r}").exists()]
    assert len(rows) == 2, out.stdout + out.stderr
    for without, with_callback in ((int(a), int(b)) for a, b in rows):
        assert with_callback < 1.15 * without, (without, with_callback)


# ---- finding 2: check_all under warnings-as-errors hides the ConformanceError -------------

class _KeepsCopyAndRefusesSecondExample(_KeepsDerivedCopy):
    """Keeps an unnamed float64 copy of its input (a kit warning), and its second
    example gives an input shape the layer refuses (a ConformanceError)."""
    examples = [({"channels": 3}, (4, 3)), ({"channels": 2}, (5, 3))]


def test_check_all_failure_is_not_replaced_by_a_warning_turned_error():
    """pytest's `filterwarnings = ["error"]` (or -W error::UserWarning) is common in
    plugin projects. check_all records warnings under "always", and re-emits them in a
    `finally`: with warnings as errors the first re-emitted one is *raised* there and
    replaces the ConformanceError (which survives only as __context__); the other
    warnings are never emitted. At 97256ca this raised a ConformanceError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(ConformanceError, match="refused the example input"):
            testing.check_all(_KeepsCopyAndRefusesSecondExample)


# ---- finding 3: save's NaN refusal leaves the folders it made -------------------------------

def test_save_that_refuses_non_finite_weights_creates_nothing(tmp_path):
    """save refuses NaN weights "nothing written to PATH", but check_save_path (which
    creates missing folders) runs first, so the folders are left behind."""
    from nnumba.layers import Linear
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    model.params()[0][1].value[0, 0] = np.nan
    target = tmp_path / "new" / "deeper" / "model.npz"
    with pytest.raises(NonFiniteError):
        nnumba.save(model, target)
    assert not (tmp_path / "new").exists()


