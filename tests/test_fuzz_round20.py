"""Fuzz round 20 (a): a named pipe given as a weights or IDX file is refused, not
waited on; an nnumba weights file is known by its content whatever its name; a run
refused before training leaves no --save folders behind."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumba
from nnumba.data import load_arrays
from nnumba.errors import NnumbaError
from nnumba.layers import Flatten, Linear, ReLU

ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "PYTHONIOENCODING": "utf-8"}


def _model():
    return nnumba.Sequential(Flatten(), Linear(4, 3), ReLU(), Linear(3, 2), seed=0)


# ---- 1. a named pipe given as a weights / IDX file hangs for ever ---------------------

READERS = {
    "load_model": "nnumba.load_model(P)",
    "stored_training": "nnumba.stored_training(P)",
    "load_weights": "nnumba.load_weights(model(), P)",
    "load_torch_weights": "from nnumba.torch_import import load_torch_weights; "
                          "load_torch_weights(model(), P)",
    "read_idx": "from nnumba.data import read_idx; read_idx(P)",
    "cli summary": "from nnumba.cli import main; sys.exit(main(['summary', P]))",
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("reader", list(READERS))
def test_a_named_pipe_is_refused_not_waited_on(tmp_path, reader):
    """load_arrays, read_json, --labels and --save all refuse a FIFO at once ("not a
    regular file"); the weights readers open it and block until a writer comes, which
    never does. Reference: load_arrays' own behaviour on the same pipe."""
    fifo = tmp_path / "w.npz"
    os.mkfifo(fifo)
    with pytest.raises(NnumbaError, match="not a regular file"):  # the reference
        load_arrays(fifo)
    code = textwrap.dedent(f"""
        import sys, nnumba
        from nnumba.layers import Flatten, Linear, ReLU
        model = lambda: nnumba.Sequential(Flatten(), Linear(4, 3), ReLU(), Linear(3, 2))
        P = {str(fifo)!r}
        try:
            {READERS[reader]}
        except nnumba.errors.NnumbaError as exc:
            print("refused:", exc)
        """)
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{reader} waited on the named pipe {fifo} for 30 s (a hang)")
    assert "refused:" in proc.stdout or "error:" in proc.stderr, proc.stdout + proc.stderr


# ---- 4. a renamed nnumba weights file is taken for a torch file ----------------------

@pytest.mark.parametrize("name", ["w.npz.bak", "w.bin", "w"])
def test_a_renamed_nnumba_weights_file_loads_by_its_content(tmp_path, name):
    """load_torch_weights (classify --weights) decides "nnumba file" by the .npz suffix:
    a backup w.npz.bak is read as a torch state_dict ("torch tensor '__nnumba_spec__' is
    <U..., not a floating point parameter (buffers such as BatchNorm's counters...)"),
    w.bin is called "a PyTorch pickle file". io.load_weights reads the same file fine
    whatever its name: that is the reference."""
    from nnumba.torch_import import load_torch_weights
    src = nnumba.save(_model(), tmp_path / "w.npz")
    renamed = tmp_path / name
    renamed.write_bytes(src.read_bytes())
    want = nnumba.load_weights(nnumba.Sequential(Flatten(), Linear(4, 3), ReLU(),
                                                 Linear(3, 2), seed=1), renamed)
    got = load_torch_weights(nnumba.Sequential(Flatten(), Linear(4, 3), ReLU(),
                                               Linear(3, 2), seed=1), renamed)
    for (n1, p1), (n2, p2) in zip(want.params(), got.params()):
        assert n1 == n2 and np.array_equal(p1.value, p2.value)


# ---- 5. a failed run leaves the --save folders it made ---------------------------------

def test_a_run_refused_before_training_leaves_no_new_folders(tmp_path):
    """check_save_path mkdirs the --save folders before the data is read: `train --data
    missing.npz --save new/sub/w.npz` fails ("does not exist") and leaves new/sub/.
    Reference: nothing was trained or saved, so nothing should appear on disk."""
    from nnumba.cli import main
    rc = main(["train", "--data", str(tmp_path / "missing.npz"), "--epochs", "1",
               "--save", str(tmp_path / "new" / "sub" / "w.npz")])
    assert rc != 0
    assert not (tmp_path / "new").exists()


