"""Fuzz round 13: a CSV quote left open, a validation batch between a forward and
its backward, blank class names, resume() with what a file without training
gives, classify for a model that flattens its image, reset_parameters' rng, and
the messages of a long JSON integer, a weight-decay divergence and bfloat16 weights."""
import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.data import DataFileError, load_arrays
from nnumba.errors import DTypeError, NoGradientError, SpecError
from nnumba.layers import Flatten, Linear, ReLU
from nnumba.losses import CrossEntropy
from nnumba.train import SGDTrainer


def _table(path, rows):
    path.write_text("\n".join(["f1,f2,label", *rows]) + "\n")
    return path


def test_a_quote_left_open_in_a_csv_is_named_not_swallowing_the_rest(tmp_path):
    # it swallowed the 1000 rows after it into one 'class name': 51 rows trained, rc 0
    good = [f"{i / 100},{i / 50},{'ab'[i % 2]}" for i in range(50)]
    path = _table(tmp_path / "t.csv", good + ['0.5,0.5,"a'] + good * 20)
    with pytest.raises(DataFileError, match=r"t\.csv: line 52: .*a quote left open"):
        load_arrays(path)


def test_a_quoted_field_over_several_lines_is_refused(tmp_path):
    path = _table(tmp_path / "t.csv", ["1,2,x", '3,4,"mul', 'ti"', "5,6,y"])
    with pytest.raises(DataFileError, match=r"line 3: a quoted field runs over several"):
        load_arrays(path)


@pytest.mark.parametrize("blank", ["", "  ", "\n"])
def test_a_blank_class_name_in_an_npz_is_refused_when_read(tmp_path, blank):
    # it trained every epoch, then save refused the name and nothing was written
    y = np.array([blank, "b", "c"])[np.arange(30) % 3]
    np.savez(tmp_path / "d.npz", x_train=np.ones((30, 2), np.float32), y_train=y)
    with pytest.raises(DataFileError, match="y_train holds an empty class name"):
        load_arrays(tmp_path / "d.npz")


def _mlp():
    return nnumba.Sequential(Linear(4, 5), ReLU(), Linear(5, 3), seed=0)


@pytest.mark.parametrize("between", ["predict", "predict-other-batch", "eval-forward"])
def test_a_validation_batch_between_forward_and_backward_is_refused(between):
    # backward paired the gradient with the validation batch: wrong gradients (up to
    # 1.87 off) at equal batch sizes, a confusing ShapeError at others
    rng = np.random.default_rng(0)
    x, x2 = rng.random((20, 4), dtype=np.float32), rng.random((20, 4), dtype=np.float32)
    model = _mlp()
    model.forward(x)
    if between == "predict":
        model.predict(x2)
    elif between == "predict-other-batch":
        model.predict(x2, batch_size=7)
    else:
        model.eval()
        model.forward(x2)
        model.train()
    with pytest.raises(NoGradientError, match="predict|another mode"):
        model.backward(np.ones((20, 3), np.float32))
    model.forward(x)  # a forward again: the backward is the plain one
    model.zero_grad()
    model.backward(np.ones((20, 3), np.float32))
    want = _mlp()
    want.forward(x)
    want.zero_grad()
    want.backward(np.ones((20, 3), np.float32))
    np.testing.assert_array_equal(model.flat_grads, want.flat_grads)


def test_a_backward_in_evaluation_mode_after_its_forward_still_runs():
    # input gradients of a model in eval mode (saliency) stay possible
    model = _mlp().eval()
    model.input_grad = True
    x = np.random.default_rng(1).random((3, 4), dtype=np.float32)
    model.forward(x)
    dx = model.backward(np.ones((3, 3), np.float32))
    assert dx.shape == (3, 4) and np.isfinite(dx).all()


def test_resume_names_a_file_saved_without_its_training(tmp_path):
    model = _mlp()
    path = nnumba.save(model, tmp_path / "m.npz")
    trainer = SGDTrainer(model, CrossEntropy(), lr=0.1)
    with pytest.raises(SpecError, match="holds no training"):
        trainer.resume(nnumba.stored_training(path))
    for wrong in ({}, str(path)):
        with pytest.raises(SpecError, match="takes what nnumba.stored_training"):
            trainer.resume(wrong)


def test_reset_parameters_names_an_rng_that_is_not_a_generator():
    with pytest.raises(DTypeError, match="rng must be a numpy Generator"):
        _mlp().reset_parameters(None)


@pytest.mark.parametrize("size", [[], ["--size", "28,28"]])
def test_classify_infers_one_channel_for_a_model_that_flattens_a_28x28_image(
        tmp_path, capsys, size):
    # it assumed 3 channels and told the user to give --size, which did not help
    Image = pytest.importorskip("PIL.Image")
    model = nnumba.Sequential(Flatten(), Linear(784, 3), seed=0)
    model.layers[1].bias.value[...] = [0, 5, 0]  # class b wins on any image
    path = nnumba.save(model, tmp_path / "m.npz", classes=["a", "b", "c"])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "i.png")
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path), "--top", "1",
                 *size]) == 0
    assert capsys.readouterr().out.split()[-1] == "b"


def test_a_json_integer_of_too_many_digits_gives_no_python_advice():
    from nnumba.jsonfile import parse_json
    from nnumba.errors import JSONFileError
    with pytest.raises(JSONFileError) as err:
        parse_json('[{"type": "Linear", "in_features": ' + "9" * 5000 + "}]", "spec.json")
    assert "digits" in str(err.value) and "set_int_max_str_digits" not in str(err.value)


def test_a_run_diverging_from_its_weight_decay_names_the_weight_decay():
    # it blamed the learning rate alone
    from nnumba.train import TrainingDiverged
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 4), dtype=np.float32), rng.integers(0, 3, 40)
    trainer = SGDTrainer(_mlp(), CrossEntropy(), lr=0.1, weight_decay=1e6, batch_size=10)
    with pytest.raises(TrainingDiverged, match=r"or the weight decay \(now 1000000"):
        trainer.fit(x, y, epochs=50)


def test_bfloat16_safetensors_get_a_hint_to_convert(tmp_path):
    pytest.importorskip("safetensors")
    import json
    import struct
    from nnumba.errors import WeightsError
    from nnumba.torch_import import read_state_dict
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(WeightsError, match="save the weights as float32"):
        read_state_dict(path)


def test_classify_refuses_a_labels_file_naming_more_classes_than_the_model_has(tmp_path):
    # the names past the outputs were never shown: another model's labels file, silently
    Image = pytest.importorskip("PIL.Image")
    model = nnumba.Sequential(Flatten(), Linear(784, 3), seed=0)
    path = nnumba.save(model, tmp_path / "m.npz", input_shape=(1, 28, 28))
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "i.png")
    (tmp_path / "labels.txt").write_text("\n".join(f"n{i}" for i in range(10)))
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path),
                 "--labels", str(tmp_path / "labels.txt")]) == 2
    (tmp_path / "labels.txt").write_text("a\nb\n")  # fewer: a partial file, as before
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path),
                 "--labels", str(tmp_path / "labels.txt")]) == 0
