"""Review 40 of 1417e8e..e2c6c2a (the CUDA set's checks, resume's layout, CSV headers,
save's clean-up).  Each test failed at e2c6c2a.  The CUDA test runs the simulator in
a subprocess of its own."""
import os
import shutil
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError

f32 = np.float32


# --- Finding 1: a headerless CSV whose first sample is alone in its class -----------
def test_headerless_csv_keeps_a_first_sample_alone_in_its_class(tmp_path):
    """At 1417e8e this file loaded 6 samples of 3 classes; _label_alone now reads the
    first sample as a header: one sample and one class vanish without a word, and there
    is no way to say 'no header'.  Fixed: all 6 rows are kept, or the guess is at least
    announced (a warning naming the header) so that the user can notice."""
    from nnumba.data import load_arrays
    path = tmp_path / "iris_part.csv"
    path.write_text("5.1,3.5,setosa\n4.9,3.0,versicolor\n6.3,3.3,virginica\n"
                    "5.8,2.7,versicolor\n6.4,3.2,virginica\n5.5,2.4,versicolor\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_arrays(path, test_fraction=0.2)
    rows = len(data.x_train) + len(data.x_test)
    announced = any("header" in str(w.message).lower() for w in caught)
    assert (rows == 6 and "setosa" in list(data.classes)) or announced, \
        (rows, list(data.classes), [str(w.message) for w in caught])


# --- Finding 2: save deletes a user's zip backup named like an old temporary --------
def test_save_keeps_a_users_backup_copy_named_like_an_old_temporary(tmp_path):
    """remove_stale's own docstring names "w.npz_backup1.tmp" as a user's file that
    matches the old mkstemp pattern; the narrowing spares it only when it is not a zip,
    and a backup copy of an .npz is a zip: a second save deletes it."""
    from nnumba.layers import Linear
    model = nnumba.Sequential(Linear(2, 1), seed=0)
    path = tmp_path / "w.npz"
    nnumba.save(model, path)
    backup = tmp_path / "w.npz_backup1.tmp"
    shutil.copy(path, backup)                      # the user's copy of their weights
    old = time.time() - 3600
    os.utime(backup, (old, old))
    nnumba.save(model, path)
    assert backup.exists(), "save deleted the user's backup copy of the weights"


# --- Finding 3: loss kernels take ranks their check lets through --------------------
@pytest.mark.parametrize("kernel,args", [
    ("logistic", lambda: (np.ones((3, 2), f32), np.ones((3, 2), f32), f32(1),
                          np.zeros(3, f32), np.zeros((3, 2), f32))),
    ("hinge", lambda: (np.ones((3, 2), f32), np.ones((3, 2), f32), f32(1), f32(1),
                       np.zeros(3, f32), np.zeros((3, 2), f32))),
    ("softmax_cross_entropy", lambda: (np.ones(3, f32), np.zeros(3, np.int64), f32(1),
                                       np.zeros(3, f32), np.zeros(3, f32))),
    ("squared_error", lambda: (np.ones(3, f32), np.zeros(3, f32), f32(1), np.zeros(3, f32),
                               np.zeros(3, f32))),
])
def test_cpu_loss_kernel_refuses_a_rank_it_cannot_take_with_an_nnumba_error(kernel, args):
    """check_loss accepts (N,) or (N, K) for every loss kernel, but logistic and hinge
    take (N,) only and the other two (N, K) only: numba's TypingError came out (on the
    CUDA set, silent NaN losses for logistic/hinge, see the next test)."""
    from nnumba.kernels import cpu
    with pytest.raises(NnumbaError):
        getattr(cpu, kernel)(*args())


def test_cuda_logistic_refuses_2d_predictions_instead_of_nan_losses():
    """In the CUDA simulator the CUDA logistic kernel, given (N, 2) predictions and
    targets, passes the shared check and returns NaN losses and a zero gradient."""
    pytest.importorskip("numba_cuda")
    code = textwrap.dedent("""
        import numpy as np
        import nnumba.kernels.cuda as gpu
        from nnumba.device import to_device, to_host
        from nnumba.errors import NnumbaError
        f32 = np.float32
        losses, grad = to_device(np.zeros(3, f32)), to_device(np.zeros((3, 2), f32))
        try:
            gpu.logistic(to_device(np.ones((3, 2), f32)), to_device(np.ones((3, 2), f32)),
                         f32(1), losses, grad)
        except NnumbaError as e:
            print("REFUSED", type(e).__name__)
        else:
            print("RAN", to_host(losses).tolist())
    """)
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600)
    assert "REFUSED" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


# --- Finding 4: read-only loss outputs ---------------------------------------------
def test_loss_kernel_refuses_a_read_only_output_with_an_nnumba_error():
    """check_flat_floats refuses a read-only output for the activations and sgd_step
    (fuzz round 46: numba's own error named no argument); check_loss does not, and
    numba's TypingError comes out of the loss kernels."""
    from nnumba.kernels import cpu
    losses = np.zeros(3, f32)
    losses.flags.writeable = False
    with pytest.raises(NnumbaError):
        cpu.softmax_cross_entropy(np.ones((3, 2), f32), np.zeros(3, np.int64), f32(1), losses,
                                  np.zeros((3, 2), f32))


# --- Finding 5: the loss kernels' targets in another numeric dtype ---------------------
def test_squared_error_kernel_takes_float64_targets_for_float32_predictions():
    """It computed them correctly at 1417e8e; the shared check refused them."""
    from nnumba.kernels import cpu
    yhat, y = np.array([[1.0, 2.0]], f32), np.array([[0.5, 4.0]])
    losses, grad = np.zeros(1, f32), np.zeros((1, 2), f32)
    cpu.squared_error(yhat, y, f32(1), losses, grad)
    np.testing.assert_allclose(losses, [0.25 + 4.0])
    np.testing.assert_allclose(grad, [[1.0, -4.0]])  # d/dyhat (yhat - y)^2


# --- Finding 8: a label column named twice, the label found as the last column --------
def test_csv_header_naming_the_default_label_column_twice_is_refused(tmp_path):
    from nnumba.data import DataFileError, load_arrays
    path = tmp_path / "dup.csv"
    path.write_text("label,f,label\n" + "".join(f"{i % 2},{i},{i % 2}\n" for i in range(8)))
    with pytest.raises(DataFileError, match="names 2 columns 'label'"):
        load_arrays(path)  # the first 'label' a feature: the label leaked into the inputs
