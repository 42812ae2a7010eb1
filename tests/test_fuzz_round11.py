"""Fuzz round 11: what a model's layers kept from its forward is checked before its
backward pairs it with a gradient, a model or loss that a fit() in another thread
is training refuses a forward here, and the loose ends of the round."""
import threading

import numpy as np
import pytest

import nnumba
from nnumba.errors import ContractError, NoGradientError
from nnumba.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from nnumba.losses import CrossEntropy


def _convnet():
    return nnumba.Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Conv2d(4, 2, 3), Flatten(),
                             seed=0)


@pytest.mark.parametrize("layer_index", [0, 1, 2, 3])
@pytest.mark.parametrize("batch", [2, 7])
def test_a_layer_run_on_its_own_between_forward_and_backward_cannot_corrupt_it(layer_index,
                                                                               batch):
    # it paired the model's gradient with the other batch's input: a segfault at large
    # batches, NaN or a silently wrong gradient at equal ones (F1).  The model runs
    # Conv2d #0 + ReLU #1 + MaxPool2d #2 as one fused step, which keeps its own input:
    # a run of those layers alone leaves it whole; Conv2d #3 is its own step.
    rng = np.random.default_rng(0)
    model = _convnet()
    x = rng.random((2, 1, 12, 12), dtype=np.float32)
    y = model.forward(x)
    model.backward(np.ones_like(y))
    right = model.flat_grads.copy()
    model.zero_grad()
    model.forward(x)
    h = rng.random((batch, 1, 12, 12), dtype=np.float32)
    for layer in model.layers[:layer_index]:  # the layer's own input, of another batch
        h = layer.forward(h)
    model.layers[layer_index].forward(h)
    if layer_index == 3:
        with pytest.raises(NoGradientError, match="Conv2d #3 ran forward again since the "
                                                  "model's forward"):
            model.backward(np.ones_like(y))
        model.forward(x)  # a new forward: backward is fine again
    model.backward(np.ones_like(y))
    np.testing.assert_array_equal(model.flat_grads, right)


def _data():
    rng = np.random.default_rng(0)
    return rng.random((600, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 600)


def _in_another_thread_during_fit(model, loss, job):
    """Run job() in a second thread while fit() trains model with loss; (the errors
    job raised, whether fit raised)."""
    x, y = _data()
    started, errors = threading.Event(), []

    def callback(trainer, row):
        if row["epoch"] == 1:
            started.set()
            other.join()  # the job runs while fit holds the model

    def run():
        started.wait()
        try:
            job()
        except ContractError as exc:
            errors.append(str(exc))
    other = threading.Thread(target=run)
    other.start()
    nnumba.SGDTrainer(model, loss, batch_size=100, seed=0, precompile=False,
                      callbacks=[callback]).fit(x, y, epochs=2)
    return errors


def test_predict_from_another_thread_during_fit_is_refused():
    model = nnumba.build("mlp", seed=0)
    x, _ = _data()
    errors = _in_another_thread_during_fit(model, CrossEntropy(), lambda: model.predict(x[:37]))
    assert errors and "this model is being trained by fit() in another thread" in errors[0]
    model.predict(x[:37])  # after fit: free again


def test_a_loss_shared_with_a_fit_in_another_thread_is_refused():
    loss = CrossEntropy()
    other = nnumba.build("logreg", seed=0)
    x, y = _data()

    def job():
        loss.forward(other.forward(x[:10]), y[:10])
    errors = _in_another_thread_during_fit(nnumba.build("mlp", seed=0), loss, job)
    assert errors and "this CrossEntropy loss is being trained by fit()" in errors[0]


def test_a_model_in_one_thread_and_its_copy_in_another_train_alone():
    x, y = _data()
    model = nnumba.build("mlp", seed=0)
    twin = model.copy()
    alone = model.copy()
    nnumba.SGDTrainer(alone, CrossEntropy(), batch_size=100, seed=0, precompile=False).fit(
        x, y, epochs=1)
    threads = [threading.Thread(target=lambda m=m: nnumba.SGDTrainer(
        m, CrossEntropy(), batch_size=100, seed=0, precompile=False).fit(x, y, epochs=1))
        for m in (model, twin)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(model.flat_params, alone.flat_params)
    np.testing.assert_array_equal(twin.flat_params, alone.flat_params)


def test_linear_then_its_layer_alone_then_backward():
    model = nnumba.Sequential(Linear(4, 3), ReLU(), Linear(3, 2), seed=0)
    y = model.forward(np.ones((5, 4), np.float32))
    model.layers[2].forward(np.ones((37, 3), np.float32))
    with pytest.raises(NoGradientError, match="Linear #2 ran forward again"):
        model.backward(np.ones_like(y))


@pytest.mark.parametrize("level", [0, 40, 100, 255])
def test_a_16_bit_image_reads_as_its_8_bit_twin_without_normalising(tmp_path, level):
    # a saved nnumba model sees [0, 1] pixels: a 16-bit image was stretched to its own
    # range (a faint digit became a bold one) and a flat one read as black (F4)
    Image = pytest.importorskip("PIL.Image")
    from nnumba.commands.classify import load_image
    digit = np.zeros((8, 8), np.uint8)
    digit[2:6, 3:5] = level  # a faint stroke; level 0: a flat black image
    flat = np.full((8, 8), level, np.uint8)
    for name, pixels in (("digit", digit), ("flat", flat)):
        Image.fromarray(pixels).save(tmp_path / f"{name}8.png")
        Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / f"{name}16.png")
        want = load_image(tmp_path / f"{name}8.png", 1, (8, 8))
        np.testing.assert_allclose(load_image(tmp_path / f"{name}16.png", 1, (8, 8)), want,
                                   atol=1e-6)
        np.testing.assert_allclose(want[0, 0], pixels / 255, atol=1e-6)


def test_conv_checks_its_scratch_again_for_a_wider_dtype(monkeypatch):
    # the check was kept per shape: float64, twice the bytes, skipped it (F6)
    from nnumba.layers import conv as conv_module
    checked = []
    real = conv_module.check_memory
    monkeypatch.setattr(conv_module, "check_memory",
                        lambda what, size: (checked.append(size), real(what, size)))
    model = nnumba.Sequential(Conv2d(2, 4, 3), seed=0)
    x = np.ones((2, 2, 9, 9), np.float32)
    model.forward(x)
    model.astype(np.float64).forward(x.astype(np.float64))
    assert len(checked) == 2 and checked[1] == 2 * checked[0]


def test_a_broken_threading_layer_is_not_blamed_on_the_targets(monkeypatch):
    # "training targets: device 'cpu': its kernel_set ... does not import" (F7)
    from nnumba.device import DeviceError
    from nnumba.train.base import check_with_loss

    class Broken(CrossEntropy):
        def forward(self, y_hat, y):
            raise DeviceError("device 'cpu': its kernel_set does not import")
    with pytest.raises(DeviceError) as caught:
        check_with_loss(nnumba.build("logreg"), Broken(), np.zeros(3, np.int64), (784,),
                        "training targets")
    assert not str(caught.value).startswith("training targets")
    with pytest.raises(nnumba.LabelError, match="^training targets: "):
        check_with_loss(nnumba.build("logreg"), CrossEntropy(), np.full(3, 10), (784,),
                        "training targets")


def test_float16_regression_targets_give_no_overflow_warning():
    pytest.importorskip("sklearn")
    import warnings

    from nnumba.sklearn import NNRegressor
    x = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NNRegressor(epochs=1).fit(x, x[:, 0].astype(np.float16))


def test_a_hinge_lam_beyond_the_models_dtype_is_named():
    # it read "the weights became NaN ... lower the learning rate" (F5)
    from nnumba.losses import Hinge
    x = np.random.default_rng(0).random((10, 3)).astype(np.float32)
    y = np.where(x[:, 0] > 0.5, 1, -1)
    model = nnumba.Sequential(Linear(3, 1), seed=0)
    with pytest.raises(nnumba.SpecError, match="Hinge: lam 1e.39 does not fit the model's "
                                               "float32"):
        nnumba.SGDTrainer(model, Hinge(lam=1e39), precompile=False).fit(x, y, epochs=1)
    nnumba.SGDTrainer(model.astype(np.float64), Hinge(lam=1e39), lr=0.0,
                      precompile=False).fit(x.astype(np.float64), y, epochs=1)  # fits there


def test_a_copy_made_during_fit_serves_any_thread():
    # the mark of a model being trained stays with that model, not with its copies
    x, y = _data()
    copies = []
    nnumba.SGDTrainer(nnumba.build("mlp", seed=0), CrossEntropy(), batch_size=100,
                      precompile=False, callbacks=[lambda t, row: copies.append(
                          t.model.copy())]).fit(x, y, epochs=1)
    out = []
    worker = threading.Thread(target=lambda: out.append(copies[0].predict(x[:5])))
    worker.start()
    worker.join()
    assert out and out[0].shape == (5, 10)


def test_summary_names_a_folder_or_other_file_and_says_a_missing_spec_once(tmp_path, capsys,
                                                                         monkeypatch):
    from nnumba.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    for given, said in ((str(tmp_path), "is a folder, not a model"),
                        ("notes.txt", "is a file, not a model")):
        assert main(["summary", given]) == 2
        err = capsys.readouterr().err
        assert said in err and "unknown model" not in err
    assert main(["summary", "./missing.json"]) == 2
    assert capsys.readouterr().err.count("model spec") == 1


def test_two_fits_started_together_on_one_model_let_exactly_one_train(monkeypatch):
    """Each fit checked that no other thread trained the model, then marked it: two
    fits whose checks both ran before either mark both went on, and the first to end
    unmarked the model under the other (a thread switch held between the two steps)."""
    from nnumba.layers import fitting
    check, gate = fitting.check_not_fitting, threading.Barrier(2, timeout=5)

    def check_then_switch(obj, what):
        check(obj, what)
        try:
            gate.wait(0.5)   # both threads past the check, where the lock lets them
        except threading.BrokenBarrierError:
            pass
    model, loss, held, refused = nnumba.build("logreg", seed=0), CrossEntropy(), [], []
    monkeypatch.setattr(fitting, "check_not_fitting", check_then_switch)
    done = threading.Barrier(2, timeout=5)   # both alive to the end: no reused thread id

    def hold():
        try:
            mine = []
            fitting.hold_for_fit(model, loss, mine)
            held.append(mine)
        except ContractError as exc:
            refused.append(str(exc))
        done.wait()
    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(held) == 1 and len(refused) == 1, (held, refused)
    assert "being trained by fit() in another thread" in refused[0]
    fitting.release_after_fit(held[0])
    monkeypatch.undo()
    again = []
    fitting.hold_for_fit(model, loss, again)   # free again
    fitting.release_after_fit(again)
