"""Kit checks added in the nineteenth sitting: check_dataset warns about a class that
has no training sample (a model trained on the set never learns it, silently)."""
import warnings

import numpy as np
import pytest

from nnumba import testing
from nnumba.data.datasets import Dataset


def _three_classes(y_train):
    def loader(root=None, download=False):
        if root is not None:
            raise ValueError("generated: takes no folder")
        rng = np.random.default_rng(0)
        return Dataset("three", rng.normal(size=(len(y_train), 2)).astype(np.float32),
                       np.asarray(y_train, np.int64), rng.normal(size=(3, 2)).astype(np.float32),
                       np.arange(3, dtype=np.int64), ["a", "b", "c"], "three classes")
    return loader


def test_check_dataset_warns_about_a_class_without_training_samples():
    with pytest.warns(UserWarning, match="no training sample of class 'c'"):
        testing.check_dataset(_three_classes([0, 1, 0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class present: no warning
        testing.check_dataset(_three_classes([0, 1, 2, 1]))
