"""Training refuses bad input with one clear nnumba error, before any step, and never
ends with non-finite weights: hyper-parameters past the model's dtype, divergence in
the last step, weights past the model's dtype, perceptron sums that would overflow,
targets no kernel can read, bad backward weights, bad hyper-parameters."""
import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.data import load_arrays
from nnumba.errors import (DTypeError, LabelError, NnumbaError, NoGradientError, NonFiniteError,
                           ShapeError, SpecError, WeightsError)
from nnumba.layers import Linear
from nnumba.losses import MSE, CrossEntropy, Hinge, Logistic
from nnumba.optim import SGD
from nnumba.train import GDTrainer, SGDTrainer, TrainingDiverged, evaluate, train_perceptron

F32_MAX = float(np.finfo(np.float32).max)
rng = np.random.default_rng(7)


def one_line(exc_info):
    assert isinstance(exc_info.value, NnumbaError)
    assert "\n" not in str(exc_info.value)
    return str(exc_info.value)


def linear(d_in=3, d_out=1, dtype=np.float32):
    return nnumba.Sequential(Linear(d_in, d_out), seed=0).astype(dtype)


def classes(n=12, d=3, k=3):
    return rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % k


# ---- 1. hyper-parameters past the model's dtype; divergence in the last step -------------

@pytest.mark.parametrize("name", ["lr", "weight_decay"])  # momentum must be < 1 anyway
@pytest.mark.parametrize("value", [1e39, 1e300])
def test_values_past_float32_are_refused_where_the_optimizer_is_built(name, value):
    with np.errstate(over="ignore"):
        assert np.isinf(np.float32(value))  # finite as a Python float, inf as a float32
    with pytest.raises(SpecError) as exc:
        SGD(linear(), **{name: value})
    message = one_line(exc)
    assert name in message and "float32" in message and f"{F32_MAX:.4g}" in message
    with pytest.raises(SpecError, match=name):
        SGDTrainer(linear(), MSE(), **{name: value})
    assert SGD(linear(dtype=np.float64), **{name: value}).config()[name] == value


def _train_cli(tmp_path, capsys, trainer, lr):
    """(exit code, stderr lines, the --save path) of one CLI run on a small data file."""
    data = tmp_path / "d.npz"
    x, y = classes(40, 4)
    np.savez(data, x_train=x, y_train=y)
    out = tmp_path / "w.npz"
    code = main(["train", "--data", str(data), "--model", "mlp", "--epochs", "1", "--lr",
                 lr, "--trainer", trainer, "--save", str(out), "--no-progress"])
    return code, capsys.readouterr().err.strip().splitlines(), out


@pytest.mark.parametrize("trainer", ["sgd", "gd"])
def test_cli_refuses_an_lr_past_float32_and_saves_nothing(tmp_path, capsys, trainer):
    code, err, out = _train_cli(tmp_path, capsys, trainer, "1e39")
    assert code == 2 and not out.exists()
    assert err[-1].startswith("nnumba train: error: SGD: lr 1e+39") and "float32" in err[-1]


@pytest.mark.parametrize("trainer", [SGDTrainer, GDTrainer])
def test_divergence_in_the_last_step_is_caught(trainer):
    # One batch, one update: the loss before it is finite, the weights after it are not.
    x = (rng.normal(size=(8, 3)) * 100).astype(np.float32)
    y = (rng.normal(size=(8, 1)) * 100).astype(np.float32)
    model = linear()
    with pytest.raises(TrainingDiverged, match="weights became NaN or infinite in epoch 1"):
        trainer(model, MSE(), lr=1e36, batch_size=8).fit(x, y, epochs=1)
    assert not np.isfinite(model.flat_params).all()  # the check is not a false alarm


@pytest.mark.parametrize("trainer", ["sgd", "gd"])
def test_cli_saves_nothing_after_divergence(tmp_path, capsys, trainer):
    code, err, out = _train_cli(tmp_path, capsys, trainer, "1e37")
    assert code == 2 and not out.exists()
    assert "lower the learning rate" in err[-1]


# ---- 2. weights past the model's dtype --------------------------------------------------

@pytest.mark.parametrize("value", [1e300, -1e39, 4e38])
def test_weights_past_float32_are_refused_by_load_weights(tmp_path, value):
    big = linear(2, 1, np.float64)
    big.flat_params[:] = value
    path = nnumba.save(big, tmp_path / "w64.npz")
    model = linear(2, 1)
    before = model.flat_params.copy()
    with pytest.raises(WeightsError) as exc:
        nnumba.load_weights(model, path)
    message = one_line(exc)
    assert str(path) in message and "0.weight" in message and "float32" in message
    np.testing.assert_array_equal(model.flat_params, before)  # left untouched


def test_weights_within_float32_still_load_as_float32_casts(tmp_path):
    big = linear(2, 1, np.float64)
    big.flat_params[:] = [3e38, -1e-3, 2.5]
    path = nnumba.save(big, tmp_path / "w64.npz")
    model = nnumba.load_weights(linear(2, 1), path)
    np.testing.assert_array_equal(model.flat_params,
                                  np.array([3e38, -1e-3, 2.5]).astype(np.float32))


# ---- 3. the perceptron on inputs near the float maximum ---------------------------------

def lecture_perceptron(x, y, max_epochs=100):
    """The lecture's algorithm in plain Python, as the reference."""
    xs = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xs.shape[1])
    for _ in range(max_epochs):
        changes = 0
        for xn, yn in zip(xs, y):
            if yn * (w @ xn) <= 0:
                w = w + yn * xn
                changes += 1
        if not changes:
            break
    return w


@pytest.mark.parametrize("scale", [1e307, 1e200, 1e160])
def test_perceptron_refuses_inputs_whose_sums_overflow(scale):
    x = rng.normal(size=(20, 3))
    y = np.where(x[:, 0] > 0, 1, -1)
    with pytest.raises(NonFiniteError) as exc:
        train_perceptron(x * scale, y)
    assert "scale the inputs" in one_line(exc)


@pytest.mark.parametrize("scale", [1e307, 1e160])
def test_the_sklearn_perceptron_refuses_inputs_whose_sums_overflow(scale):
    pytest.importorskip("sklearn")
    from nnumba.sklearn import PerceptronClassifier
    x = rng.normal(size=(20, 3))
    y = np.where(x[:, 0] > 0, 1, -1)
    with pytest.raises(NonFiniteError, match="scale the inputs"):
        PerceptronClassifier().fit(x * scale, y)


@pytest.mark.parametrize("scale", [1.0, 2.0 ** 300])
def test_perceptron_on_large_but_safe_inputs_is_the_lectures(scale):
    x = rng.normal(size=(20, 3)) * scale
    y = np.where(x[:, 0] > 0, 1, -1)
    result = train_perceptron(x, y)
    w = lecture_perceptron(x, y)
    np.testing.assert_allclose(result.w, w[:-1], rtol=1e-12)
    assert result.b == w[-1] and result.converged


# ---- 4. targets no kernel can read --------------------------------------------------------

Y = np.arange(12) % 3
BAD_TARGETS = [
    # (loss, outputs, targets, error, fragment)
    (CrossEntropy(), 3, Y.astype(object), LabelError, "dtype object"),
    (CrossEntropy(), 3, Y.astype(str), LabelError, "class names"),
    (CrossEntropy(), 3, Y.astype(complex), LabelError, "imaginary part"),
    (CrossEntropy(), 3, Y.astype(np.float16), LabelError, "float16"),
    (CrossEntropy(), 3, Y.astype(bool), LabelError, "bool"),
    (MSE(), 1, np.where(Y == 1, np.nan, 1.0)[:, None], NonFiniteError, "4 NaN or infinite"),
    (MSE(), 1, np.full((12, 1), np.inf), NonFiniteError, "12 NaN or infinite"),
    (MSE(), 1, np.full((12, 1), 1e300), NonFiniteError, "do not fit the predictions' float32"),
    (MSE(), 1, np.ones((12, 1), complex), LabelError, "imaginary part"),
    (MSE(), 1, np.full((12, 1), None), LabelError, "dtype object"),
    (Logistic(), 1, np.where(Y == 1, np.nan, 1.0), NonFiniteError, "NaN or infinite"),
    (Hinge(), 1, np.where(Y == 1, -1, 1).astype(complex), LabelError, "imaginary part"),
]


@pytest.mark.parametrize("loss, outputs, y, error, fragment", BAD_TARGETS)
def test_bad_targets_are_refused_by_the_loss(loss, outputs, y, error, fragment):
    with pytest.raises(error) as exc:
        loss.forward(np.zeros((12, outputs), np.float32), y)
    assert fragment in one_line(exc)


@pytest.mark.parametrize("loss, outputs, y, error, fragment", BAD_TARGETS)
def test_bad_targets_are_refused_by_fit_before_any_step(loss, outputs, y, error, fragment):
    x = rng.normal(size=(12, 3)).astype(np.float32)
    model = linear(3, outputs)
    before = model.flat_params.copy()
    with pytest.raises(error) as exc:
        SGDTrainer(model, loss, batch_size=4).fit(x, y)
    assert "training targets" in one_line(exc) and fragment in str(exc.value)
    np.testing.assert_array_equal(model.flat_params, before)


@pytest.mark.parametrize("x_test, y_test, error, fragment", [
    (None, Y.astype(bool), LabelError, "test targets: CrossEntropy loss: expected integer"),
    (None, Y + 3, LabelError, r"test targets: CrossEntropy loss: labels must lie in [0, 3)"),
    (None, Y.astype(np.float16), LabelError, "test targets"),
    (np.full((12, 3), np.nan, np.float32), Y, NonFiniteError, "test inputs hold 36 NaN"),
])
def test_the_test_set_is_checked_before_training(x_test, y_test, error, fragment):
    x, y = classes()
    model = linear(3, 3)
    before = model.flat_params.copy()
    x_test = x if x_test is None else x_test
    with pytest.raises(error) as exc:
        SGDTrainer(model, CrossEntropy(), batch_size=4).fit(x, y, epochs=3, x_test=x_test,
                                                            y_test=y_test)
    assert fragment in one_line(exc)
    np.testing.assert_array_equal(model.flat_params, before)  # not one step taken


def test_float16_regression_targets_train_as_their_float32_values():
    x = rng.normal(size=(12, 3)).astype(np.float32)
    y = rng.normal(size=(12, 1)).astype(np.float16)
    a, b = linear(), linear()
    SGDTrainer(a, MSE(), lr=0.1, batch_size=4, seed=1).fit(x, y, epochs=2)
    SGDTrainer(b, MSE(), lr=0.1, batch_size=4, seed=1).fit(x, y.astype(np.float32), epochs=2)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)


# ---- 5. backward(weight) -------------------------------------------------------------------

def reference_ce_gradient(z, y):
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return p / len(y)


@pytest.mark.parametrize("weight", [None, "abc", np.array([1.0, 2.0]), np.nan, np.inf, True])
def test_backward_refuses_a_weight_that_is_not_a_finite_number(weight):
    loss = CrossEntropy()
    loss.forward(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(SpecError) as exc:
        loss.backward(weight)
    assert "weight" in one_line(exc)


@pytest.mark.parametrize("weight", [0.5, 2, np.float32(2.0), np.int64(3), 1.0])
def test_backward_scales_by_any_real_number(weight):
    z, y = rng.normal(size=(4, 3)), np.array([0, 2, 1, 2])
    loss = CrossEntropy()
    loss.forward(z, y)
    np.testing.assert_allclose(loss.backward(weight), float(weight) * reference_ce_gradient(z, y),
                               rtol=1e-12)


def test_backward_before_forward_is_a_no_gradient_error():
    with pytest.raises(NoGradientError) as exc:
        MSE().backward()
    assert isinstance(exc.value, RuntimeError) and "before forward" in one_line(exc)


# ---- 6. hyper-parameters -------------------------------------------------------------------

def npz(tmp_path):
    path = tmp_path / "d.npz"
    x, y = classes(20)
    np.savez(path, x_train=x, y_train=y)
    return path


BAD_SETTINGS = [
    (lambda: SGD(linear(), lr=-1), SpecError, "lr"),
    (lambda: SGD(linear(), lr="0.1"), SpecError, "lr"),
    (lambda: SGD(linear(), lr=None), SpecError, "lr"),
    (lambda: SGD(linear(), momentum=1), SpecError, "momentum"),
    (lambda: SGD(linear(), weight_decay=np.nan), SpecError, "weight_decay"),
    (lambda: SGDTrainer(linear(), MSE(), batch_size=0), SpecError, "batch_size"),
    (lambda: SGDTrainer(linear(), MSE(), batch_size=2.0), SpecError, "batch_size"),
    (lambda: GDTrainer(linear(), MSE(), batch_size=True), SpecError, "batch_size"),
    (lambda: SGDTrainer(linear(), MSE(), seed=-1), SpecError, "seed"),
    (lambda: GDTrainer(linear(), MSE(), seed=1.5), SpecError, "seed"),
    (lambda: SGDTrainer(linear(), MSE(), shuffle="no"), SpecError, "shuffle"),
    (lambda: SGDTrainer(linear(), MSE(), callbacks=[5]), DTypeError, "callbacks"),
    (lambda: SGDTrainer(linear(), MSE(), optimizer="sgd"), DTypeError, "optimizer"),
    (lambda: SGDTrainer(Linear(3, 1), MSE()), DTypeError, "model must be"),
    (lambda: SGDTrainer(linear(), "MSE"), DTypeError, "loss must be"),
    (lambda: GDTrainer(linear(), MSE), DTypeError, "a class: add ()"),
    (lambda: SGDTrainer(linear(), MSE()).fit(*classes(12, 3, 1), epochs=-1), SpecError, "epochs"),
    (lambda: SGDTrainer(linear(), MSE()).fit(*classes(12, 3, 1), epochs=2.0), SpecError, "epochs"),
    (lambda: SGDTrainer(linear(), MSE()).fit(*classes(12, 3, 1), epochs=None), SpecError,
     "epochs"),
    (lambda: train_perceptron(np.ones((2, 1)), [1, -1], max_epochs=0), SpecError, "max_epochs"),
    (lambda: train_perceptron(np.ones((2, 1)), [1, -1], max_epochs=1.5), SpecError,
     "max_epochs"),
    (lambda: CrossEntropy(reduction="max"), SpecError, "reduction"),
    (lambda: MSE(reduction=None), SpecError, "reduction"),
    (lambda: MSE(reduction=["mean"]), SpecError, "reduction"),
    (lambda: Hinge(lam=-1), SpecError, "lam"),
    (lambda: Hinge(lam=np.nan), SpecError, "lam"),
    (lambda: Hinge(lam="x"), SpecError, "lam"),
    (lambda: evaluate(linear(3, 3), CrossEntropy(), *classes(), batch_size=1.5), SpecError,
     "batch_size"),
]


@pytest.mark.parametrize("make, error, name", BAD_SETTINGS)
def test_bad_settings_are_one_line_nnumba_errors_naming_the_option(make, error, name):
    with pytest.raises(error) as exc:
        make()
    assert name in one_line(exc)
    # old callers' except clauses still catch them
    assert isinstance(exc.value, TypeError if error is DTypeError else ValueError)


@pytest.mark.parametrize("seed", [-1, 1.5, "a"])
def test_bad_seeds_for_load_arrays_name_the_option(tmp_path, seed):
    with pytest.raises(SpecError) as exc:
        load_arrays(npz(tmp_path), seed=seed)
    assert "load_arrays: seed" in one_line(exc)


def test_numpy_scalars_are_taken_as_python_numbers(tmp_path):
    assert Hinge(lam=np.float32(0.1)).lam == float(np.float32(0.1))
    assert Hinge(lam=np.int64(2)).lam == 2.0
    x, y = classes()
    a, b = linear(3, 3), linear(3, 3)
    SGDTrainer(a, CrossEntropy(), lr=np.float32(0.5), momentum=np.float64(0.5),
               batch_size=np.int64(4), seed=np.int64(3)).fit(x, y, epochs=np.int64(2))
    SGDTrainer(b, CrossEntropy(), lr=float(np.float32(0.5)), momentum=0.5, batch_size=4,
               seed=3).fit(x, y, epochs=2)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    xp = rng.normal(size=(10, 2))
    yp = np.where(xp[:, 0] > 0, 1, -1)
    assert train_perceptron(xp, yp, max_epochs=np.int64(3)).updates == \
        train_perceptron(xp, yp, max_epochs=3).updates
    path = npz(tmp_path)
    np.testing.assert_array_equal(load_arrays(path, seed=np.int64(4)).y_test,
                                  load_arrays(path, seed=4).y_test)


@pytest.mark.parametrize("x", [[[1.0, 2.0, 3.0]], np.ones((2, 2)), np.array(["a", "b"])])
def test_perceptron_predict_refuses_inputs_that_do_not_fit(x):
    xp = rng.normal(size=(10, 3))
    result = train_perceptron(xp, np.where(xp[:, 0] > 0, 1, -1))
    if isinstance(x, list):  # a list of samples is taken as an array
        assert result.predict(x).shape == (1,)
        return
    with pytest.raises((ShapeError, DTypeError)) as exc:
        result.predict(x)
    one_line(exc)


@pytest.mark.parametrize("trainer", [SGDTrainer, GDTrainer])
@pytest.mark.parametrize("given", [{"lr": 0.5}, {"momentum": 0.9}, {"weight_decay": 0.1}])
def test_settings_an_optimizer_would_ignore_are_refused(trainer, given):
    """An optimizer carries its own lr, momentum and weight decay: the trainer's were
    silently dropped; the two together are now refused, and each alone works."""
    model = linear()
    with pytest.raises(SpecError) as exc:
        trainer(model, MSE(), optimizer=SGD(model, lr=0.01), **given)
    assert next(iter(given)) in one_line(exc)
    built = trainer(model, MSE(), **given).optimizer
    assert getattr(built, next(iter(given))) == next(iter(given.values()))
    assert trainer(model, MSE(), optimizer=SGD(model, lr=0.02)).optimizer.lr == 0.02
