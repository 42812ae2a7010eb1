"""Fuzz round 6 (the Python API from the outside): each test fails on the code
before its fix, and checks against numpy, a closed form or the same computation
done another way."""
import numpy as np
import pytest

import nnumba
from nnumba.data import load_arrays
from nnumba.errors import SpecError
from nnumba.layers import Linear
from nnumba.losses import MSE, CrossEntropy, Hinge


def test_a_csv_header_of_numbered_columns_is_a_header(tmp_path):
    # pandas' DataFrame(x).assign(label=y).to_csv(index=False): 0,1,2,label
    path = tmp_path / "p.csv"
    rows = [(i % 3 + 0.5, 1.0, 2.0, i % 2) for i in range(40)]
    path.write_text("0,1,2,label\n" + "".join(f"{a},{b},{c},{y}\n" for a, b, c, y in rows))
    data = load_arrays(path)
    assert data.classes == ["0", "1"]
    x = np.concatenate([data.x_train, data.x_test])
    assert len(x) == 40
    assert sorted(map(tuple, x.tolist())) == sorted((a, b, c) for a, b, c, _ in rows)


@pytest.mark.parametrize("loss,y", [(CrossEntropy(), [0]), (MSE(), [[1.0, -1.0]])])
def test_a_loss_gradient_outlives_the_next_forward(loss, y):
    first = np.array([[2.0, 0.0]], np.float32)
    loss.forward(first, y)
    g1, g1_half = loss.backward(), loss.backward(0.5)
    kept = g1.copy()
    loss.forward(np.array([[0.0, 2.0]], np.float32), y)
    g2 = loss.backward()
    np.testing.assert_array_equal(g1, kept)
    np.testing.assert_allclose(g1_half, 0.5 * kept, rtol=1e-6)
    assert not np.allclose(g2, kept)


def test_gradients_added_before_backward_are_kept():
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    x, y = np.ones((2, 3), np.float32), np.array([1, -1])
    loss = Hinge(lam=0.5)

    def grads(penalty_first):
        model.zero_grad()
        if penalty_first:
            loss.penalty_backward(model.params())
        loss.forward(model(x), y)
        model.backward(loss.backward())
        if not penalty_first:
            loss.penalty_backward(model.params())
        return [p.grad.copy() for _, p in model.params()]

    for a, b in zip(grads(True), grads(False)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    model.zero_grad()
    weight = model.params()[0][1]
    weight.grad[...] = 100
    loss.forward(model(x), y)
    model.backward(loss.backward())
    alone = grads(False)[0] - 2 * 0.5 * weight.value  # the data term: penalty taken off
    model.zero_grad()
    weight.grad[...] = 100
    loss.forward(model(x), y)
    model.backward(loss.backward())
    np.testing.assert_allclose(weight.grad, 100 + alone, rtol=1e-6)


def test_model_options_nested_too_deep_are_text_and_a_clear_error(capsys):
    from nnumba.cli import main
    deep = "[" * 3000 + "]" * 3000
    assert main(["summary", "mlp", "--model-option", f"hidden={deep}"]) == 2
    err = capsys.readouterr().err
    assert "hidden" in err and "Traceback" not in err and "unexpected" not in err


@pytest.mark.parametrize("bad", [None, 0, -3, 2.5, "8"])
def test_precompile_batch_size_is_checked(bad):
    from nnumba.precompile import precompile
    model = nnumba.build("mlp", seed=0)
    with pytest.raises(SpecError, match="batch_size"):
        precompile(model, CrossEntropy(), np.zeros((4, 784), np.float32), np.zeros(4, int),
                   batch_size=bad)


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh"])
def test_an_activation_does_not_depend_on_where_a_value_sits(name):
    layer = nnumba.get_layer(name)()
    values = np.random.default_rng(0).normal(0, 4, 40).astype(np.float32)
    alone = np.array([layer.forward(np.array([[v]]))[0, 0] for v in values])
    for n in (7, 8, 16, 40):
        np.testing.assert_array_equal(layer.forward(values[None, :n])[0], alone[:n])
    assert layer.forward(np.zeros((1, 7), np.float32)).tolist() == [[0.5] * 7] \
        or name == "Tanh"


def test_predict_refuses_outputs_that_overflow():
    pytest.importorskip("sklearn")
    from nnumba.errors import NonFiniteError
    from nnumba.sklearn import NNClassifier
    X = 1e30 * np.arange(1, 11.0)[:, None] * np.ones((1, 2))  # finite in float32
    clf = NNClassifier(epochs=1, random_state=0).fit(X, [0, 1] * 5)
    assert not np.isfinite(clf.model_.predict(np.ones((1, 2), np.float32))).all()
    for method in (clf.predict, clf.predict_proba, clf.predict_log_proba):
        with pytest.raises(NonFiniteError, match="overflow float32.*diverged"):
            method(np.ones((1, 2)))


@pytest.mark.parametrize("value", [0.0, 0.3, 77 / 255, 172 / 255, 1.0])
def test_a_flat_image_normalises_to_one_half(value):
    from nnumba.commands.classify import normalise
    img = np.full((1, 1, 224, 224), value, np.float32)
    np.testing.assert_array_equal(normalise(img), np.full_like(img, 0.5))
    assert normalise(np.full((1, 1, 1, 1), value, np.float32)).item() == 0.5
    ramp = np.linspace(0, 1, 50, dtype=np.float32).reshape(1, 1, 5, 10)
    want = 0.5 + 0.5 * (ramp - ramp.mean()) / ramp.std(ddof=1)
    np.testing.assert_allclose(normalise(ramp), want, rtol=1e-6)


def test_a_label_that_cannot_be_printed_is_refused_naming_the_file(tmp_path):
    from nnumba.commands.classify import load_labels
    from nnumba.errors import FileFormatError
    path = tmp_path / "labels.json"
    path.write_text('["cat", "\\ud800"]')
    with pytest.raises(FileFormatError, match=r"labels\.json: entry 1: .*printable"):
        load_labels(path)


@pytest.mark.parametrize("value", [True, 1.0, "1", None])
def test_a_weights_format_that_is_no_number_is_refused(tmp_path, value):
    import json

    from nnumba.errors import WeightsError
    path = nnumba.save(nnumba.build("mlp", hidden=[4], seed=0), tmp_path / "m.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    meta["format"] = value
    arrays["__nnumba_spec__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(WeightsError, match="is not a format number"):
        nnumba.load_model(tmp_path / "odd.npz")


def test_an_experiment_named_twice_runs_once(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from nnumba.cli import main
    assert main(["experiment", "run", "xor", "xor", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("== xor:") == 1
