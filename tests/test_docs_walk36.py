"""Docs walk 36 (every slide of the lecture): the lecture's own calls and a data folder
mixed up with another of the same format."""
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba.data.datasets import FASHION_TEST_LABELS, _fingerprint


def test_train_perceptron_takes_the_epoch_limit_as_the_lecture_passes_it():
    """The lecture calls train_perceptron(x, y, nb_epochs_max): max_epochs was
    keyword-only, and the positional call a TypeError."""
    x = np.array([[2.0, 1.0], [1.0, 3.0], [-1.0, -2.0], [-2.0, -1.0]])
    y = np.array([1, 1, -1, -1])
    positional = nnumba.train_perceptron(x, y, 7)
    keyword = nnumba.train_perceptron(x, y, max_epochs=7)
    assert positional.converged and np.array_equal(positional.w, keyword.w)
    assert np.all(np.sign(x @ positional.w + positional.b) == y)  # it separates them


def test_fashion_mnist_files_loaded_as_mnist_are_named():
    """A folder of Fashion-MNIST loaded as MNIST (same file names and format) trained
    silently and was reported as 'MNIST 0 vs 1'."""
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not folder.is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    from nnumba.data.datasets import load_mnist
    with pytest.warns(UserWarning, match="holds Fashion-MNIST"):
        data = load_mnist(folder)
    assert _fingerprint(data.y_test) == FASHION_TEST_LABELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nnumba.data.load_dataset("fashion-mnist", root=str(folder))  # no warning as itself


def test_the_fingerprint_is_of_the_labels_values():
    labels = np.arange(10) % 3
    assert _fingerprint(labels) == _fingerprint(labels.astype(np.int64)) != \
        _fingerprint(labels[::-1])
