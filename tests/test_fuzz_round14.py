"""Fuzz round 14 (on the round before's changes): resume() checks every stored value
before it changes anything, the kit names a NaN gradient, classify feeds a model
whose first layer is a Linear flat pixels, and the messages of a sign model's
labels, a blank class name and an unreadable CSV row."""
import numpy as np
import pytest

import nnumba
from nnumba import testing
from nnumba.cli import main
from nnumba.data import DataFileError, load_arrays
from nnumba.errors import SpecError
from nnumba.layers import Dropout, Linear, ReLU
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer
from scale_layer import _Scale, _variant


def _trained(tmp_path):
    model = nnumba.Sequential(Linear(4, 5), ReLU(), Dropout(0.2), Linear(5, 3), seed=0)
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.1, momentum=0.9, batch_size=10, seed=0)
    rng = np.random.default_rng(0)
    trainer.fit(rng.random((40, 4), dtype=np.float32), rng.integers(0, 3, 40), epochs=1)
    path = nnumba.save(model, tmp_path / "m.npz", training=trainer)
    return trainer, nnumba.stored_training(path)


@pytest.mark.parametrize("field,value,says", [
    ("rng", {"state": 3}, "not a generator state"),
    ("rng", "garbage", "not a generator state"),
    ("velocity", "abc", "not a float array"),
    ("velocity", [0.0] * 43, "not a float array"),
    ("velocity", np.full(43, np.nan), "holds NaN or inf"),
    ("velocity", np.zeros((1, 43)), "has 43 values of shape (1, 43), the model 43"),
    ("layers", {"2": "garbage"}, "not a generator state"),
])
def test_resume_refuses_a_bad_stored_value_and_changes_nothing(tmp_path, field, value, says):
    # a bad rng gave numpy's raw TypeError after the momentum buffer was already replaced
    trainer, stored = _trained(tmp_path)
    before = trainer.optimizer.velocity.copy()
    order = trainer.rng.bit_generator.state
    with pytest.raises(SpecError, match=f"resume: .*{says}" if "(" not in says else None) as err:
        trainer.resume({**stored, field: value})
    assert says in str(err.value)
    np.testing.assert_array_equal(trainer.optimizer.velocity, before)
    assert trainer.rng.bit_generator.state == order


def test_resume_still_continues_from_a_good_record(tmp_path):
    trainer, stored = _trained(tmp_path)
    trainer.optimizer.velocity[...] = 0
    trainer.resume(stored)
    np.testing.assert_array_equal(trainer.optimizer.velocity, stored["velocity"])


def _nan_backward(self, dl_dy):
    dx = _Scale._backward(self, dl_dy)
    dx[...] = np.nan
    return dx


def test_the_kit_names_a_nan_gradient():
    # it read "gradient differs ... nan against nan"
    with pytest.raises(testing.ConformanceError, match="the input gradient holds NaN or inf "
                                                       "for a finite input"):
        testing.check_all(_variant("NanGrad", _backward=_nan_backward))


def test_classify_feeds_a_linear_first_model_its_pixels_in_a_row(tmp_path, capsys):
    # a model without Flatten was given (1, 1, 28, 28) and told to pass --size
    Image = pytest.importorskip("PIL.Image")
    model = nnumba.Sequential(Linear(784, 3), seed=0)
    model.layers[0].bias.value[...] = [0, 0, 5]  # class c wins on any image
    path = nnumba.save(model, tmp_path / "m.npz", classes=["a", "b", "c"])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "i.png")
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path), "--top", "1"]) == 0
    assert capsys.readouterr().out.split()[-1] == "c"


def test_classify_says_how_a_sign_model_reads_labels(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    path = nnumba.save(nnumba.Sequential(nnumba.layers.Flatten(), Linear(784, 1), seed=0),
                       tmp_path / "m.npz", input_shape=(1, 28, 28))
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "i.png")
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path),
                 "--labels", str(tmp_path / "labels.txt")]) == 2
    assert "one output, whose sign chooses between classes 0 and 1" in capsys.readouterr().err


def test_a_blank_class_name_is_shown_as_text(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.ones((4, 2), np.float32),
             y_train=np.array(["", "b", "c", "b"]))
    with pytest.raises(DataFileError, match=r"empty class name \(''") as err:
        load_arrays(tmp_path / "d.npz")
    assert "np.str_" not in str(err.value)


def test_a_csv_field_too_long_is_not_blamed_on_a_quote(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2,a\n3," + "4" * 200_000 + ",b\n")
    with pytest.raises(DataFileError) as err:
        load_arrays(path)
    assert "line 2" in str(err.value) and "quote" not in str(err.value)
