"""Plugin trial 38 (a data scientist's workflows from the docs alone): SIGTERM during
`nnumba train --save` keeps the weights as Ctrl-C does, an interrupted run's --json
object has the keys README lists, and a regressor diverging on large targets says so."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nnumba.errors import Terminated, stop_status


def _start(tmp_path, *extra, background=False):
    """`nnumba train` on the embedded data, long enough to be stopped, once it trains;
    ``background``: with SIGINT ignored, as a job a script starts with `&` has it."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    p = subprocess.Popen([sys.executable, "-m", "nnumba", "train", "--epochs", "400",
                          "--save", str(tmp_path / "w.npz"), *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                         preexec_fn=ignore)
    stream = p.stdout if "--json" not in extra else p.stderr  # where the epoch lines go
    deadline = time.time() + 120
    while time.time() < deadline:
        line = stream.readline()
        if line.startswith("epoch 3/") or not line:
            break
    assert line.startswith("epoch 3/"), f"training did not start: {line!r}"
    return p


@pytest.mark.parametrize("background", [False, True])
def test_sigterm_during_train_saves_the_weights_as_ctrl_c_does(tmp_path, background):
    # timeout(1), Slurm, docker stop and systemd end a job with SIGTERM: the run was lost;
    # a job a script starts with & (SIGINT ignored) lost it still (docs walk 35)
    p = _start(tmp_path, background=background)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "terminated in epoch" in err and "weights saved to" in err, err
    import nnumba
    model = nnumba.load_model(tmp_path / "w.npz")  # the last complete update's weights
    assert model.num_params() > 0


def test_an_interrupted_runs_json_has_the_keys_of_a_finished_one(tmp_path):
    p = _start(tmp_path, "--json")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    d = json.loads(out)
    assert d["interrupted"] is True and d["epochs"] >= 3
    last = d["history"][-1]
    assert (d["train_loss"], d["test_accuracy"]) == (last["train_loss"], last["test_accuracy"])
    assert d["seconds"] > 0 and d["saved"]


def test_stop_status_is_the_shells_for_each_signal():
    assert stop_status(KeyboardInterrupt()) == ("interrupted", 130)
    assert stop_status(Terminated(signal.SIGTERM)) == ("terminated", 143)


def test_a_diverged_regression_on_large_targets_says_to_scale_them():
    # scikit-learn's diabetes targets (up to 346) diverged at NNRegressor's default step
    # with "lower the learning rate" alone; the inputs were standardised, the targets not
    import nnumba
    from nnumba.losses import MSE
    from nnumba.train import SGDTrainer, TrainingDiverged
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5)).astype(np.float32)
    y = (150 + 80 * x[:, :1] + 40 * rng.standard_normal((200, 1))).astype(np.float32)
    spec = [{"type": "Linear", "in_features": 5, "out_features": 16}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 16, "out_features": 1}]
    trainer = SGDTrainer(nnumba.build(spec, seed=0), MSE(), lr=0.05, momentum=0.9,
                         batch_size=20, seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as caught:
        trainer.fit(x, y, epochs=20)
    largest = float(np.abs(y).max())
    assert f"scale the targets: the largest is {largest:.3g}" in str(caught.value)
    assert "scale the inputs" not in str(caught.value)
    # standardised, the same targets train at the same step
    z = (y - y.mean()) / y.std()
    SGDTrainer(nnumba.build(spec, seed=0), MSE(), lr=0.05, momentum=0.9, batch_size=20,
               seed=0).fit(x, z, epochs=20)


def test_nnregressor_on_raw_diabetes_targets_trains_or_names_the_targets():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_diabetes
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nnumba.sklearn import NNRegressor
    from nnumba.train import TrainingDiverged
    x, y = load_diabetes(return_X_y=True)  # targets 25 to 346
    try:
        fitted = make_pipeline(StandardScaler(), NNRegressor(random_state=0)).fit(x, y)
    except TrainingDiverged as exc:
        assert "scale the targets: the largest is 346" in str(exc)
    else:  # (a default that trains these targets would do as well: MLPRegressor's R^2 0.4)
        assert fitted.score(x, y) > 0.3


def test_saving_a_fitted_estimator_points_to_its_network(tmp_path):
    pytest.importorskip("sklearn")
    import nnumba
    from nnumba.errors import DTypeError
    from nnumba.sklearn import NNClassifier
    x = np.random.default_rng(0).standard_normal((40, 4))
    est = NNClassifier(epochs=1, random_state=0).fit(x, np.arange(40) % 2)
    with pytest.raises(DTypeError, match=r"its fitted network, \.model_"):
        nnumba.save(est, tmp_path / "e.npz")
    path = nnumba.save(est.model_, tmp_path / "e.npz")
    np.testing.assert_array_equal(nnumba.load_model(path).predict(x.astype(np.float32)),
                                  est.model_.predict(x.astype(np.float32)))
