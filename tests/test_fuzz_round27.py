"""Fuzz round 27: a rollback to a trainer's own checkpoint numbered its epochs twice;
classify named class 0 for every one-output model saved without two names; Ctrl-C under
a warnings-as-errors filter lost the epochs kept; a saved epoch count the loader refused;
the missing-MNIST hint named an option experiment run lacks.
"""
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import nnumba
from nnumba.checkpoint import stored_training
from nnumba.train.sgd import SGDTrainer
from nnumba.train.gd import GDTrainer

NNUMBA = str(Path(sys.executable).with_name("nnumba"))
ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
SPEC = [{"type": "Linear", "in_features": 4, "out_features": 3}]


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 4)).astype(np.float32), np.arange(20) % 3


def _trainer(kind, model):
    return kind(model, nnumba.get_loss("CrossEntropy")(), lr=0.1, batch_size=5, seed=0)


# ---- 1. resume() on a trainer that has fitted: epochs counted twice ----------------------
@pytest.mark.parametrize("kind", [SGDTrainer, GDTrainer])
def test_rollback_resume_on_the_same_trainer_numbers_epochs_from_the_checkpoint(kind, tmp_path):
    """Roll back to a checkpoint on the trainer that made it (load_weights + resume):
    the checkpoint holds 2 epochs, so the next epoch is 3 and a save after it keeps 3.
    Before, resume set epochs_before = 2 but the trainer's own history rows (5) are
    still added (base.py:221, :356): epoch 8, and 8 saved. A refusal is accepted too."""
    x, y = _data()
    m = nnumba.build(SPEC, seed=0)
    t = _trainer(kind, m)
    t.fit(x, y, epochs=2)
    nnumba.save(m, tmp_path / "best.npz", training=t)
    t.fit(x, y, epochs=3)  # overfits: go back to the best
    nnumba.load_weights(m, tmp_path / "best.npz")
    stored = stored_training(tmp_path / "best.npz")
    try:
        t.resume(stored)
    except nnumba.errors.NnumbaError:
        return  # refusing a trainer that already trained is fine too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = t.fit(x, y, epochs=1)
    assert h.epochs[-1]["epoch"] == stored["epochs"] + 1
    nnumba.save(m, tmp_path / "after.npz", training=t)
    assert stored_training(tmp_path / "after.npz")["epochs"] == stored["epochs"] + 1


# ---- 2. an epoch count save writes but loading refuses -----------------------------------
def test_a_saved_epoch_count_is_one_the_loader_reads_back(tmp_path):
    """A hand-edited count at the loader's bound (2**63 - 1) resumes, one more epoch is
    trained and saved: save writes 2**63, which stored_training refuses (checkpoint.py:64
    caps at < 2**63, stored.py:73 and base.py:356 have no bound). Save must refuse the
    count up front, or the loader must read what save writes."""
    x, y = _data()
    m = nnumba.build(SPEC, seed=0)
    t = _trainer(SGDTrainer, m)
    t.fit(x, y, epochs=1)
    nnumba.save(m, tmp_path / "a.npz", training=t)
    stored = stored_training(tmp_path / "a.npz")
    stored["epochs"] = 2**63 - 1  # the largest the loader accepts
    m2 = nnumba.load_model(tmp_path / "a.npz")
    t2 = _trainer(SGDTrainer, m2)
    try:
        t2.resume(stored)
        t2.fit(x, y, epochs=1)
        nnumba.save(m2, tmp_path / "b.npz", training=t2)
    except nnumba.errors.NnumbaError:
        return  # refused before a file it cannot read is written
    back = stored_training(tmp_path / "b.npz")  # WeightsError before
    assert back["epochs"] == 2**63


# ---- 3. classify: a one-output model without two class names ------------------------------
def _sign_model(tmp_path, bias, classes):
    Image = pytest.importorskip("PIL.Image", reason="classify reads images with Pillow")
    m = nnumba.build([{"type": "Flatten"}, {"type": "Linear", "in_features": 4, "out_features": 1}],
                     seed=0)
    rng = np.random.default_rng(1)
    for _, p in m.params():
        p.value[...] = rng.standard_normal(p.value.shape) if p.value.ndim > 1 else bias
    img = rng.integers(0, 256, (2, 2), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "i.png")
    nnumba.save(m, tmp_path / "s.npz", classes=classes, input_shape=(1, 2, 2))
    w = next(p.value for _, p in m.params() if p.value.ndim > 1).astype(np.float64)
    score = float((w @ (img.astype(np.float64).ravel() / 255))[0] + bias)  # [0, 1] pixels
    r = subprocess.run([NNUMBA, "classify", str(tmp_path / "i.png"), "--weights",
                        str(tmp_path / "s.npz"), "--json"], capture_output=True, text=True,
                       env=ENV)
    return score, r


def test_sign_model_without_class_names_reports_the_class_its_sign_chooses(tmp_path):
    """A one-output model saved without class names: classify reports index 0 ("class 0")
    whatever the score's sign (classify.py:343 sets signs only for labels {0, 1}; line 352
    then uses the output index, always 0). With --labels the sign chooses; so must it here.
    Reference: the score's sign computed with numpy from the weights."""
    for bias in (5.0, -5.0):  # (a negative score's index 0 is right before by chance)
        score, r = _sign_model(tmp_path, bias, None)
        assert r.returncode == 0, r.stderr
        top = json.loads(r.stdout)["top"][0]
        assert np.isclose(top["score"], score, atol=1e-4)
        assert top["index"] == int(score >= 0), (bias, top)
        assert top["label"] == f"class {int(score >= 0)}", (bias, top)


def test_sign_model_with_one_stored_name_does_not_name_it_for_both_signs(tmp_path):
    """classes=["seven"] saved with a one-output model (save accepts one name): classify
    names "seven" for a negative score as for a positive one (classify.py:344 finds one
    name for one output consistent, then line 352 takes labels.get(0)). It should refuse
    the file's names, or name the class by the sign (never "seven" for both)."""
    labels = set()
    for bias in (5.0, -5.0):
        score, r = _sign_model(tmp_path, bias, ["seven"])
        if r.returncode != 0:
            assert "Traceback" not in r.stderr and "unexpected" not in r.stderr
            return
        labels.add(json.loads(r.stdout)["top"][0]["label"])
    assert len(labels) == 2, f"one name for both signs: {labels}"


# ---- 4. Ctrl-C in an estimator's fit under a warnings-as-errors filter ----------------------
def test_ctrl_c_under_warnings_as_errors_keeps_the_epochs_completed(monkeypatch):
    """With warnings turned into errors (pytest -W error, filterwarnings = error), Ctrl-C in
    epoch 3 of a first fit leaves the estimator unfitted: the 'training interrupted' warning
    (sklearn.py:208) is raised inside as_before_on_error (sklearn.py:96), which restores the
    estimator as before. Reference: the same run without the filter keeps 2 epochs."""
    pytest.importorskip("sklearn", reason="scikit-learn is an optional part")
    from nnumba.sklearn import NNClassifier
    orig = SGDTrainer._epoch

    def epoch(self, n, bar, e):
        if e == 3:
            signal.raise_signal(signal.SIGINT)
        return orig(self, n, bar, e)
    monkeypatch.setattr(SGDTrainer, "_epoch", epoch)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), np.arange(40) % 3
    kw = dict(model_options={"hidden": [4]}, epochs=5, batch_size=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NNClassifier(**kw).fit(X, y)
    assert ref.n_iter_ == 2  # the reference: two epochs completed and kept
    e = NNClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            e.fit(X, y)
        except (UserWarning, KeyboardInterrupt):
            pass
    assert hasattr(e, "model_") and e.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(e.predict(X), ref.predict(X))


# ---- 5. experiment: the missing-data message names an option experiment run lacks --------
def test_experiment_missing_data_message_names_only_options_it_takes(tmp_path):
    """`nnumba experiment run cnn-mnist --data-dir EMPTY` says "download=True (--download)
    fetches them" (datasets.py:179), but `experiment run` has no --download: following the
    advice gives "unrecognized arguments". Reference: the parser's own answer."""
    (tmp_path / "empty").mkdir()
    r = subprocess.run([NNUMBA, "experiment", "run", "cnn-mnist", "--fast", "--data-dir",
                        str(tmp_path / "empty")], capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert r.returncode != 0 and "missing" in r.stderr
    # the option named is the command that has it, not experiment run's own
    for at in [i for i in range(len(r.stderr)) if r.stderr.startswith("--download", i)]:
        assert r.stderr[:at].rstrip().endswith("nnumba train"), r.stderr