"""Fuzz round 32: the scikit-learn perceptron refuses scores that overflow and keeps the
epochs run when Ctrl-C stops its fit; a Ctrl-C that Python wraps in another error is
reported as an interruption, not as a bug."""
import itertools
import warnings

import numpy as np
import pytest

from nnumba.errors import NnumbaError


@pytest.fixture
def sk():
    """PerceptronClassifier and its module (scikit-learn is optional)."""
    pytest.importorskip("sklearn")
    import nnumba.sklearn_perceptron as module
    return module.PerceptronClassifier, module


def test_perceptron_predict_with_overflowing_scores_is_refused(sk):
    """Finite inputs whose sums w . x overflow float64 give NaN scores, and predict
    silently answers classes_[0] (NNClassifier refuses the same with NonFiniteError).
    Reference: the exact sign, computed on the inputs scaled by 2**-64 (exact: a power
    of two) where nothing overflows."""
    PerceptronClassifier, _ = sk
    X = np.array([[1., 1, 1, 1, 1], [-1, -1, -1, -1, -1], [2, 1, 0, 1, 1], [-1, -2, -1, 0, -1]])
    y = np.array([0, 1, 0, 1])
    est = PerceptronClassifier().fit(X, y)
    w, b = est.coef_[0], est.intercept_[0]
    rows = np.array([np.array(p) * 1.5e308 / w
                     for p in sorted(set(itertools.permutations([-1, -1, 1, 1, 0.5])))])
    assert np.isfinite(rows).all()
    scale = 2.0 ** -64
    exact = (rows * scale) @ w + b * scale  # no overflow: the true sign of w . x + b
    expected = est.classes_[(exact >= 0).astype(int)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (scikit-learn's finiteness check)
        with pytest.raises(NnumbaError, match="overflow float64"):
            est.predict(rows)
    finite = rows * scale  # the same directions, small: predicted as the exact signs say
    np.testing.assert_array_equal(est.predict(finite), expected)


def test_ctrl_c_in_perceptron_classifier_fit_keeps_the_epochs_run(monkeypatch, sk):
    """A KeyboardInterrupt in PerceptronClassifier.fit leaves the estimator unfitted,
    although train_perceptron hands the weights so far over (stop.result) and
    NNClassifier/NNRegressor keep theirs (a warning, fitted). Reference: the weights
    of train_perceptron run for the epochs completed before the interrupt."""
    PerceptronClassifier, sklearn_perceptron = sk
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = rng.integers(0, 2, 40)
    stop_after = 3
    real = sklearn_perceptron.train_perceptron

    def interrupted(*args, **kwargs):
        def callback(row):
            if row["epoch"] == stop_after - 1:
                raise KeyboardInterrupt
        return real(*args, callback=callback, **kwargs)

    monkeypatch.setattr(sklearn_perceptron, "train_perceptron", interrupted)
    est = PerceptronClassifier(max_epochs=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            est.fit(X, y)
        except KeyboardInterrupt:
            pass  # propagating it is fine; losing the epochs is not
    reference = real(X, np.where(y == 1, 1, -1), max_epochs=stop_after)
    assert reference.converged is False  # (the data are not separable in 3 epochs)
    assert hasattr(est, "coef_"), "the epochs run were thrown away: estimator unfitted"
    np.testing.assert_array_equal(est.coef_[0], reference.w)
    assert est.intercept_[0] == reference.b
    assert est.converged_ is False


def test_ctrl_c_wrapped_by_python_is_reported_as_interrupted(monkeypatch, capsys):
    """Ctrl-C while a class body runs (here: as matplotlib is first imported by
    `experiment run`, seen live at HEAD) reaches nnumba, on Python 3.11, as
    RuntimeError('Error calling __set_name__ ...') caused by KeyboardInterrupt; cli._run
    then reports an internal bug ("unexpected ... please report it", status 1) instead
    of "interrupted", status 130. Reference: the status main gives a bare Ctrl-C."""
    import argparse
    from nnumba import cli

    class Interrupting:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    def run_wrapped(args):
        class Axes:  # noqa: F841 - what matplotlib's import does, at the wrong moment
            method = Interrupting()

    def run_bare(args):
        raise KeyboardInterrupt

    statuses = {}
    for name, run in (("bare", run_bare), ("wrapped", run_wrapped)):
        class Parser:
            def parse_known_args(self, argv, run=run):
                return argparse.Namespace(command="experiment", run=run), []
        monkeypatch.setattr(cli, "build_parser", Parser)
        statuses[name] = cli.main([])
        statuses[name + " stderr"] = capsys.readouterr().err
    assert statuses["bare"] == 130
    assert "please report it" not in statuses["wrapped stderr"], statuses["wrapped stderr"]
    assert statuses["wrapped"] == statuses["bare"]


def test_ctrl_c_in_the_second_of_three_perceptrons_keeps_the_first_and_warns(monkeypatch, sk):
    PerceptronClassifier, sklearn_perceptron = sk
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    real = sklearn_perceptron.train_perceptron
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real(*args, **kwargs)

        def callback(row):
            if row["epoch"] == 1:
                raise KeyboardInterrupt
        return real(*args, callback=callback, **kwargs)

    monkeypatch.setattr(sklearn_perceptron, "train_perceptron", interrupted)
    with pytest.warns(UserWarning, match=r"interrupted by user in perceptron 2 of 3, after 2 "
                                         r"epochs.*the 1 after it keep zero weights"):
        est = PerceptronClassifier(max_epochs=50).fit(X, y)
    first = real(X, np.where(y == 0, 1, -1), max_epochs=50)
    second = real(X, np.where(y == 1, 1, -1), max_epochs=2)
    np.testing.assert_array_equal(est.coef_[0], first.w)
    np.testing.assert_array_equal(est.coef_[1], second.w)
    assert not est.coef_[2].any() and est.intercept_[2] == 0 and est.converged_ is False


def test_train_json_stopped_by_ctrl_c_still_prints_the_epochs_run(tmp_path, monkeypatch, capsys):
    """`nnumba train --json` stopped by Ctrl-C printed nothing on stdout: a script lost the
    history of the epochs run. The JSON object names the run as interrupted."""
    import json
    from nnumba.cli import main
    from nnumba.train.base import Trainer
    step = Trainer._step

    def interrupted_step(self):
        if self.updates + 1 == 5:  # the second update of epoch 2
            raise KeyboardInterrupt
        step(self)
    monkeypatch.setattr(Trainer, "_step", interrupted_step)
    saved = tmp_path / "m.npz"
    args = ["train", "--train-size", "300", "--test-size", "50", "--batch-size", "100",
            "--seed", "3", "--no-progress", "--epochs", "4", "--json", "--save", str(saved)]
    assert main(args) == 130
    result = json.loads(capsys.readouterr().out)
    assert result["interrupted"] is True and result["updates"] == 4 and result["epochs"] == 1
    assert [row["epoch"] for row in result["history"]] == [1]
    assert result["saved"] == str(saved) and saved.exists()


def test_load_torch_weights_given_a_module_says_to_pass_its_state_dict():
    torch = pytest.importorskip("torch")
    import nnumba
    from nnumba.errors import WeightsError
    from nnumba.torch_import import load_torch_weights
    with pytest.raises(WeightsError, match=r"pass module\.state_dict\(\)"):
        load_torch_weights(nnumba.build("logreg"), torch.nn.Linear(784, 10))


@pytest.mark.parametrize("text, line, column", [
    ("1,2,0\n3,4,1_0\n", 2, "2 \\(from 0\\)"),   # a label: read as class 10
    ("a,b,label\n1_5,2,0\n3,4,1\n", 2, "'a'"),   # a feature: read as 15
])
def test_a_csv_number_with_an_underscore_is_refused(tmp_path, text, line, column):
    """Python's float() and numpy read "1_0" as 10: a label "1_0" made a class 10, a feature
    "1_5" the value 15, silently (fuzz round 29's note)."""
    from nnumba.data import DataFileError, load_arrays
    assert float("1_0") == 10.0  # why: the reference the check guards against
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match=rf"line {line}, column {column} holds '1_[05]', "
                                            rf"which Python reads as 1[05]"):
        load_arrays(path)


def test_a_csv_number_in_other_digits_with_an_underscore_is_refused(tmp_path):
    """float() reads fullwidth digits too: "\uff11_\uff15" is 15 to it; the file's byte
    search looked for ASCII digits around the underscore only."""
    from nnumba.data import DataFileError, load_arrays
    field = "\uff11_\uff15"
    assert float(field) == 15.0
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,label\n{field},2,0\n3,4,1\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 2, column 'a' holds .*which Python reads as 15"):
        load_arrays(path)
    names = ["b_1", "\u00e9_\u00e8"]
    path.write_text("a,b,label\n" + "".join(f"{i},2,{names[i % 2]}\n" for i in range(10)),
                    encoding="utf-8")
    assert sorted(load_arrays(path).classes) == names   # names stay


def test_underscores_in_names_are_no_numbers_and_stay_allowed(tmp_path):
    from nnumba.data import load_arrays
    path = tmp_path / "t.csv"
    path.write_text("px_1,px_2,class_name\n" + "".join(f"{i},{i + 1},cat_{i % 2}\n"
                                                      for i in range(10)))
    data = load_arrays(path)
    assert sorted(data.classes) == ["cat_0", "cat_1"]
