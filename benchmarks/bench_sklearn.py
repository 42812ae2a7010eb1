"""NNClassifier beside scikit-learn's MLPClassifier on digits (sklearn.datasets):
the same network (64-100-10, ReLU) and the same training (SGD, momentum 0.9,
lr 0.1, batch 100, 20 epochs, no penalty), each timed for a whole ``fit``, the
peer in a fresh process of its own taking turns with nnumba (conftest.py).
Test accuracies are compared too: nnumba's within 1 point of the peer's.
Run: pytest benchmarks/bench_sklearn.py (the ratio table prints at the end)."""
import numpy as np
import pytest
from conftest import turns

pytest.importorskip("sklearn", reason="scikit-learn is not installed")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from nnumba.sklearn import NNClassifier  # noqa: E402

HIDDEN, LR, MOMENTUM, BATCH, EPOCHS = 100, 0.1, 0.9, 100, 20


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), y_train, scaler.transform(x_test), y_test


def test_digits_fit(benchmark, peers, files, digits, quick):
    x, y, x_test, y_test = digits
    clf = NNClassifier(model_options={"hidden": [HIDDEN]}, lr=LR, momentum=MOMENTUM,
                       batch_size=BATCH, epochs=EPOCHS, random_state=0)
    clf.fit(x, y)  # compile outside the timing
    peer = peers("sklearn", {"kind": "sklearn-mlp", "params": {
        "hidden_layer_sizes": [HIDDEN], "solver": "sgd", "learning_rate_init": LR,
        "momentum": MOMENTUM, "nesterovs_momentum": False, "batch_size": BATCH,
        "max_iter": EPOCHS, "n_iter_no_change": EPOCHS, "alpha": 0.0, "random_state": 0},
        **files(x=x, y=y, x_test=x_test, y_test=y_test)})
    turns(benchmark, "digits-fit", lambda: clf.fit(x, y), peer, rounds=1 if quick else 15,
          samples=len(x), epochs=EPOCHS)
    ours, theirs = clf.score(x_test, y_test), peer.result["test_accuracy"]
    benchmark.extra_info.update(test_accuracy=ours, peer_test_accuracy=theirs)
    assert ours >= theirs - 0.01, (ours, theirs)
    assert np.isfinite(clf.history_[-1]["train_loss"])
