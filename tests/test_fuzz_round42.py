"""Fuzz round 42: ~5,500 hostile hyperparameters, data and command lines for the
scikit-learn estimators, the trainers and the CLI (no crash, hang or wrong result);
an out-of-range random_state gave numpy's message, and summary / classify --model
refused the inline JSON spec that build and nnumba train take."""
import json

import numpy as np
import pytest


# ---- 1. random_state outside numpy's seed range: numpy's bare message --------------------
@pytest.mark.parametrize("estimator", ["NNClassifier", "NNRegressor"])
@pytest.mark.parametrize("seed", [-1, 2**32, 2**63, np.int8(-1)], ids=["-1", "2**32", "2**63", "int8(-1)"])
def test_random_state_out_of_range_is_refused_naming_the_parameter(estimator, seed):
    pytest.importorskip("sklearn")
    from sklearn.neural_network import MLPClassifier
    import nnumba.sklearn as sk
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.arange(12) % 2
    # reference: scikit-learn's own network names the parameter and its range
    with pytest.raises(ValueError, match="random_state"):
        MLPClassifier(random_state=seed, max_iter=1).fit(X, y)
    est = getattr(sk, estimator)(random_state=seed, epochs=1, model_options={"hidden": [3]})
    with pytest.raises(ValueError) as info:  # SpecError is a ValueError too
        est.fit(X, y if estimator == "NNClassifier" else X[:, 0])
    # was numpy's "Seed must be between 0 and 2**32 - 1", raised inside numpy's MT19937
    assert "random_state" in str(info.value), str(info.value)
    assert not hasattr(est, "model_")


# ---- 2. summary / classify --model refuse the inline JSON spec that train takes -------------
SPEC = [{"type": "Flatten"}, {"type": "Linear", "in_features": 16, "out_features": 3}]


def _cli(argv, capsys):
    from nnumba.cli import main
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_summary_takes_an_inline_json_spec_as_train_and_build_do(tmp_path, capsys):
    import nnumba
    text = json.dumps(SPEC)
    nnumba.build(text)  # the API takes JSON text (is_model_name: it starts with "[")
    path = tmp_path / "spec.json"
    path.write_text(text)
    rc_file, out_file, _ = _cli(["summary", str(path), "--input-shape", "1,4,4", "--json"], capsys)
    assert rc_file == 0
    rc, out, err = _cli(["summary", text, "--input-shape", "1,4,4", "--json"], capsys)
    # was: rc 2, "unknown model '[{...}]': nothing loaded registers under '[{"type"' (a
    # plugin's entry-point name ...): install the distribution that registers it"
    assert rc == 0, err
    inline, from_file = json.loads(out), json.loads(out_file)
    assert inline.pop("name") == "model"  # what it is called: the file's path, or nothing
    from_file.pop("name")
    assert inline == from_file


def test_classify_takes_an_inline_json_spec_as_train_does(tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image")
    import nnumba
    model = nnumba.build(SPEC)
    weights = tmp_path / "w.npz"
    nnumba.save(model, str(weights))
    image = tmp_path / "img.png"
    pil.fromarray((np.arange(16).reshape(4, 4) * 16).astype(np.uint8)).save(image)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    rc_file, out_file, err_file = _cli(["classify", str(image), "--weights", str(weights),
                                        "--model", str(path), "--json"], capsys)
    assert rc_file == 0, err_file
    rc, out, err = _cli(["classify", str(image), "--weights", str(weights),
                         "--model", json.dumps(SPEC), "--json"], capsys)
    assert rc == 0, err
    assert json.loads(out)["top"] == json.loads(out_file)["top"]
