"""Dataset.subset on a hand-made Dataset whose labels lie past its class names: the
one-class refusal names the label (it was a bare IndexError looking up its name)."""
import numpy as np
import pytest

from nnumba.data.datasets import Dataset
from nnumba.errors import LabelError


def test_subset_of_one_class_names_a_label_past_the_classes():
    x = np.zeros((6, 2), np.float32)
    data = Dataset("hand", x, np.array([7, 7, 7, 0, 1, 1]), x, np.array([0, 1, 0, 1, 0, 1]),
                   classes=["a", "b"], description="")
    with pytest.raises(LabelError, match=r"one class only \(7\)"):
        data.subset(train=3)
    assert data.subset(train=4).y_train.tolist() == [7, 7, 7, 0]  # (two classes: kept)
