"""A saved model keeps its training (nnumba.checkpoint): training on from the file
takes the steps one longer run takes, with the saved run's settings, momentum
buffer and batch order; a malformed record is refused, naming the file."""
import json
import zipfile

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.checkpoint import stored_training
from nnumba.cli import main
from nnumba.errors import NonFiniteError, SaveError, WeightsError
from nnumba.losses import MSE, CrossEntropy
from nnumba.train import GDTrainer, SGDTrainer

# 300 samples in batches of 60: 5 updates an epoch, settings unlike nnumba's fallback
FIRST = ["train", "--train-size", "300", "--test-size", "50", "--no-progress",
         "--lr", "0.07", "--momentum", "0.8", "--batch-size", "60", "--weight-decay", "0.001"]


def _weights(path):
    return io.load_model(path).flat_params


def test_training_on_from_the_file_is_one_longer_run(tmp_path, capsys):
    whole, half, rest = tmp_path / "whole.npz", tmp_path / "half.npz", tmp_path / "rest.npz"
    assert main(FIRST + ["--epochs", "2", "--save", str(whole)]) == 0
    assert main(FIRST + ["--epochs", "1", "--save", str(half)]) == 0
    capsys.readouterr()
    assert main(["train", "--model", str(half), "--epochs", "1", "--train-size", "300",
                 "--test-size", "50", "--no-progress", "--save", str(rest)]) == 0
    out = capsys.readouterr().out
    assert "lr 0.07, momentum 0.8, batch_size 60" in out and f"({half}'s last run)" in out
    assert f"from {half}: its momentum buffer and batch order" in out
    np.testing.assert_array_equal(_weights(rest), _weights(whole))  # bit for bit
    assert stored_training(rest)["lr"] == 0.07  # and it keeps them for the next time


def test_seed_restarts_the_batch_order_and_options_given_win(tmp_path, capsys):
    half, rest = tmp_path / "half.npz", tmp_path / "rest.npz"
    assert main(FIRST + ["--epochs", "1", "--save", str(half)]) == 0
    capsys.readouterr()
    assert main(["train", "--model", str(half), "--epochs", "1", "--train-size", "300",
                 "--test-size", "50", "--no-progress", "--seed", "5", "--lr", "0.02",
                 "--save", str(rest)]) == 0
    out = capsys.readouterr().out
    assert "lr 0.02" in out and f"from {half}: its momentum buffer, to go on" in out
    # the same epoch by hand: the saved momentum buffer, the batch order of seed 5
    model = io.load_model(half)
    data = nnumba.data.load_dataset("mnist-5k")
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.02, momentum=0.8, weight_decay=0.001,
                         batch_size=60, seed=5)
    with pytest.warns(RuntimeWarning, match='lr 0.07 -> 0.02'):  # settings changed: said
        trainer.resume(stored_training(half), rng=False)
    trainer.fit(data.x_train[:300], data.y_train[:300], epochs=1)
    np.testing.assert_array_equal(_weights(rest), model.flat_params)


def test_a_file_without_training_trains_on_with_the_fallback_settings(tmp_path, capsys):
    plain = io.save(nnumba.build("mlp", seed=0), tmp_path / "plain.npz")
    assert stored_training(plain) is None
    assert main(["train", "--model", str(plain), "--epochs", "1", "--train-size", "100",
                 "--test-size", "50", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "lr 0.05" in out and "(nnumba's fallback)" in out and "momentum buffer" not in out


@pytest.mark.parametrize("trainer_class", [SGDTrainer, GDTrainer])
def test_the_library_saves_and_resumes_a_trainer(tmp_path, trainer_class):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 2))).astype(np.float32)

    def trainer_for(model):
        return trainer_class(model, MSE(), lr=0.05, momentum=0.9, batch_size=20, seed=1)
    whole = nnumba.build("mlp", inputs=5, hidden=[4], classes=2, seed=2)
    trainer_for(whole).fit(x, y, epochs=3)
    first = nnumba.build("mlp", inputs=5, hidden=[4], classes=2, seed=2)
    trainer = trainer_for(first)
    trainer.fit(x, y, epochs=2)
    path = io.save(first, tmp_path / "m.npz", training=trainer)
    stored = stored_training(path)
    assert stored["trainer"] == trainer_class.kind and stored["loss"] == "MSE"
    np.testing.assert_array_equal(stored["velocity"], trainer.optimizer.velocity)
    model = io.load_model(path)
    again = trainer_for(model)
    again.resume(stored)
    again.fit(x, y, epochs=1)
    np.testing.assert_array_equal(model.flat_params, whole.flat_params)


def test_a_trainer_before_its_first_step_keeps_no_momentum_buffer(tmp_path):
    model = nnumba.build("logreg", seed=0)
    path = io.save(model, tmp_path / "m.npz", training=SGDTrainer(model, CrossEntropy()))
    assert stored_training(path)["velocity"] is None


def test_save_refuses_what_is_not_this_models_trainer(tmp_path):
    model = nnumba.build("logreg", seed=0)
    other = SGDTrainer(nnumba.build("mlp", seed=0), CrossEntropy())
    for wrong in ("sgd", other):
        with pytest.raises(SaveError, match="training= takes the trainer"):
            io.save(model, tmp_path / "m.npz", training=wrong)
    assert not list(tmp_path.iterdir())


def _edited(path, change):
    """``path`` with its stored training changed by ``change(meta, arrays)``."""
    with zipfile.ZipFile(path) as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    change(meta, arrays)
    arrays["__nnumba_spec__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


EDITS = {
    "trainer": lambda m, a: m["training"].update(trainer="adam"),
    "lr": lambda m, a: m["training"].update(lr=-1),
    "momentum": lambda m, a: m["training"].update(momentum=1.5),
    "batch_size": lambda m, a: m["training"].update(batch_size=2.5),
    "loss": lambda m, a: m["training"].pop("loss"),
    "a record": lambda m, a: m.update(training=[1, 2]),
    "generator state": lambda m, a: m["training"].update(rng={"bit_generator": "PCG64"}),
    "one float per trainable parameter": lambda m, a: a.update(
        __nnumba_velocity__=np.zeros((3, 3), np.float32)),
    "NaN": lambda m, a: a["__nnumba_velocity__"].__setitem__(0, np.nan),
    "no stored training": lambda m, a: m.pop("training"),
    "lr is an integer of about 401 digits": lambda m, a: m["training"].update(lr=10**400),
    "no rng": lambda m, a: m["training"].pop("rng"),
    "layers is": lambda m, a: m["training"].update(layers=[1]),
}


@pytest.mark.parametrize("what", EDITS)
def test_a_malformed_stored_training_is_refused_naming_the_file(tmp_path, what):
    model = nnumba.build("logreg", seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), batch_size=10)
    data = nnumba.data.load_dataset("mnist-5k")
    trainer.fit(data.x_train[:20], data.y_train[:20], epochs=1)
    path = _edited(io.save(model, tmp_path / "m.npz", training=trainer), EDITS[what])
    # (NaN: as NaN weights are, NonFiniteError)
    with pytest.raises(NonFiniteError if what == "NaN" else WeightsError, match=what) as caught:
        stored_training(path)
    assert str(path) in str(caught.value)
    np.testing.assert_array_equal(io.load_model(path).flat_params, model.flat_params)


def test_the_cli_refuses_a_malformed_stored_training_in_one_line(tmp_path, capsys):
    model = nnumba.build("logreg", seed=0)
    path = _edited(io.save(model, tmp_path / "m.npz", training=SGDTrainer(model, CrossEntropy())),
                   EDITS["trainer"])
    assert main(["train", "--model", str(path), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "stored training: trainer is 'adam'" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_keeps_the_momentum_buffer_of_the_last_complete_update(tmp_path, monkeypatch,
                                                                      capsys):
    from nnumba.train.base import Trainer
    epoch = tmp_path / "epoch.npz"
    assert main(FIRST + ["--epochs", "1", "--save", str(epoch)]) == 0  # 5 updates
    step = Trainer._step

    def interrupted_step(self):  # Ctrl-C as the first update of epoch 2 begins
        if self.updates == 5:
            raise KeyboardInterrupt
        step(self)
    monkeypatch.setattr(Trainer, "_step", interrupted_step)
    stopped = tmp_path / "stopped.npz"
    assert main(FIRST + ["--epochs", "3", "--save", str(stopped)]) == 130
    np.testing.assert_array_equal(stored_training(stopped)["velocity"],
                                  stored_training(epoch)["velocity"])


def test_a_stored_momentum_buffer_of_another_size_is_refused_by_resume(tmp_path):
    model = nnumba.build("logreg", seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), batch_size=10)
    data = nnumba.data.load_dataset("mnist-5k")
    trainer.fit(data.x_train[:20], data.y_train[:20], epochs=1)
    path = _edited(io.save(model, tmp_path / "m.npz", training=trainer),
                   lambda m, a: a.update(__nnumba_velocity__=np.zeros(3, np.float32)))
    with pytest.raises(nnumba.SpecError, match=r"momentum buffer has 3 values of shape \(3,\), the model 7850"):
        SGDTrainer(io.load_model(path), CrossEntropy()).resume(stored_training(path))


def _dropout_mlp():
    return nnumba.Sequential(nnumba.get_layer("Flatten")(), nnumba.get_layer("Linear")(784, 32),
                             nnumba.get_layer("ReLU")(), nnumba.get_layer("Dropout")(0.5),
                             nnumba.get_layer("Linear")(32, 10), seed=4)


def test_dropouts_draws_go_on_as_one_run_and_a_seed_makes_them_repeat(tmp_path):
    # its generator was not kept: a resumed run drew fresh masks, even with --seed
    data = nnumba.data.load_dataset("mnist-5k")
    x, y = data.x_train[:300], data.y_train[:300]

    def trainer_for(model, seed=1):
        return SGDTrainer(model, CrossEntropy(), lr=0.05, momentum=0.9, batch_size=60, seed=seed)
    whole = _dropout_mlp()
    trainer_for(whole).fit(x, y, epochs=2)
    half = _dropout_mlp()
    first = trainer_for(half)
    first.fit(x, y, epochs=1)
    path = io.save(half, tmp_path / "m.npz", training=first)
    assert list(stored_training(path)["layers"]) == ["3"]
    model = io.load_model(path)
    again = trainer_for(model)
    again.resume(stored_training(path))
    again.fit(x, y, epochs=1)
    np.testing.assert_array_equal(model.flat_params, whole.flat_params)
    runs = []
    for _ in range(2):  # --seed: the batch order and the masks of that seed, each time
        model = io.load_model(path)
        seeded = trainer_for(model, seed=7)
        seeded.resume(stored_training(path), rng=False)
        seeded.fit(x, y, epochs=1)
        runs.append(model.flat_params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_a_hinge_penalty_leaves_state_alone():
    # Hinge's lam took every parameter named "...weight", state included (fuzz round 12)
    from nnumba.layers import Layer
    from nnumba.losses import Hinge

    class Averaged(Layer):
        def __init__(self):
            super().__init__()
            self.avg_weight = self.add_param("avg_weight", (3,), trainable=False)

        def _forward(self, x):
            return x

        def _backward(self, g):
            return g
    model = nnumba.Sequential(nnumba.get_layer("Linear")(3, 1), Averaged(), seed=0)
    model.layers[1].avg_weight.value[...] = 100
    w = model.layers[0].weight.value
    assert Hinge(lam=0.5).penalty(model.params()) == pytest.approx(0.5 * float((w * w).sum()))


def test_a_trainer_training_in_another_thread_is_not_saved_midway(tmp_path):
    import threading

    from nnumba.errors import ContractError
    data = nnumba.data.load_dataset("mnist-5k")
    model = nnumba.build("logreg", seed=0)
    errors = []

    def save_from_here(trainer, row):  # another thread saves while this fit holds the model
        t = threading.Thread(target=lambda: errors.append(_refused(trainer)))
        t.start()
        t.join()

    def _refused(trainer):
        try:
            io.save(model, tmp_path / "m.npz", training=trainer)
        except ContractError as exc:
            return str(exc)
    SGDTrainer(model, CrossEntropy(), batch_size=50, precompile=False,
               callbacks=[save_from_here]).fit(data.x_train[:100], data.y_train[:100])
    assert errors and "being trained by fit() in another thread" in errors[0]


def test_a_stored_loss_no_plugin_registers_is_blamed_on_the_saved_run(tmp_path, capsys):
    model = nnumba.build("logreg", seed=0)
    path = _edited(io.save(model, tmp_path / "m.npz", training=SGDTrainer(model, CrossEntropy())),
                   lambda m, a: m["training"].update(loss="Gone"))
    assert main(["train", "--model", str(path), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{path}'s last run used unknown loss 'Gone'" in err and "train_defaults" not in err
