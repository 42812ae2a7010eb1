"""Peer oracle 25: the lecture's experiments against the lecture's own listings,
scikit-learn, scipy and closed forms (no wrong number found); these are printed
claims the runs contradicted or left out."""
import re

import numpy as np
import pytest


def test_cnn_mnist_fast_does_not_claim_the_4000_images_it_did_not_train_on():
    """--fast trains lenet on the first 2,000 embedded images, and its row says so; the
    'here, mnist-5k' line must not say the run had 4,000 (15 times fewer than 60,000)."""
    from nnumba.experiments import cnn
    result = cnn.run(fast=True, datasets=("mnist-5k",))
    trained = result.numbers["runs"]["mnist-5k"]["train"]
    assert trained == 2000
    line = next(l for l in result.table.splitlines() if l.startswith("here, mnist-5k"))
    counts = {int(c.replace(",", "")) for c in re.findall(r"\d[\d,]{2,}(?= training images)", line)}
    assert counts <= {trained}, line          # a count that is stated must be this run's
    ratio = re.search(r"(\d+) times fewer than MNIST's 60,000", line)
    if ratio:
        assert int(ratio.group(1)) == round(60000 / trained), line


def test_conv1d_operators_says_its_x_is_a_cross_correlation():
    """The lecture's (0,0,0,0,1,2,3,4,4,4,4) (x) (-1, 1) = (0,0,0,1,1,1,1,0,0,0) holds for the
    cross-correlation only (scipy.signal.correlate); the true convolution (np.convolve)
    gives its negative. The experiment's printed output should say which one it computes."""
    scipy_signal = pytest.importorskip("scipy.signal")
    from nnumba.experiments import conv1d
    ramp, kernel = conv1d.RAMP, conv1d.DIFFERENCE
    assert np.array_equal(scipy_signal.correlate(ramp, kernel, mode="valid"),
                          conv1d.RAMP_DIFFERENCE)
    assert np.array_equal(np.convolve(ramp, kernel, mode="valid"), -conv1d.RAMP_DIFFERENCE)
    result = conv1d.run()
    assert np.array_equal(result.numbers["ramp_output"], conv1d.RAMP_DIFFERENCE)
    printed = (result.table + "\n" + "\n".join(result.notes)).lower()
    assert "correlation" in printed, printed


def test_universal_approximation_table_names_the_momentum_it_trains_with():
    """universal.train runs GDTrainer(..., momentum=0.9); the table says '4000
    gradient-descent steps', which reads as the lecture's plain w <- w - eta grad L."""
    from nnumba.experiments import universal
    import inspect
    assert "momentum=0.9" in inspect.getsource(universal.train)
    result = universal.run(fast=True)
    assert "momentum" in result.table.lower(), result.table
