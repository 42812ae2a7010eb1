"""Regression tests for the causes found by the second fuzzing pass: each bad input
meets one of nnumba's named errors with a clear message (or the right answer)."""
import numpy as np
import pytest

import nnumba
import nnumba.summary
from nnumba.errors import NnumbaError


# ---- paths: a NUL byte, a non-path, a missing file ------------------------------------

@pytest.mark.parametrize("call", [
    lambda p: nnumba.load_model(p),
    lambda p: nnumba.save(nnumba.build("logreg"), p),
    lambda p: nnumba.data.read_idx(p),
    lambda p: nnumba.data.load_arrays(p),
    lambda p: __import__("nnumba.torch_import").torch_import.read_state_dict(p),
    lambda p: __import__("nnumba.jsonfile").jsonfile.read_json(p, "model spec"),
])
def test_a_path_with_a_nul_byte_is_named(call):
    with pytest.raises(NnumbaError, match="NUL byte"):
        call("model\0.npz")


def test_a_non_path_is_named_by_read_idx_and_read_json():
    from nnumba.errors import IDXError, JSONFileError
    from nnumba.jsonfile import read_json
    with pytest.raises(IDXError, match="expected a path"):
        nnumba.data.read_idx(None)
    with pytest.raises(JSONFileError, match="expected a path"):
        read_json(3, "model spec")


def test_missing_files_are_named_and_still_file_not_found(tmp_path):
    from nnumba.errors import MissingFileError
    from nnumba.torch_import import read_state_dict
    for call in (lambda: nnumba.load_model(tmp_path / "none.npz"),
                 lambda: nnumba.data.read_idx(tmp_path / "none.idx"),
                 lambda: nnumba.data.load_arrays(tmp_path / "none.npz"),
                 lambda: read_state_dict(tmp_path / "none.npz"),
                 lambda: nnumba.data.load_dataset("mnist", root=tmp_path / "none")):
        with pytest.raises(MissingFileError, match="none") as info:
            call()
        assert isinstance(info.value, FileNotFoundError)


def test_bad_mnist_files_and_loader_options_are_named(tmp_path):
    from nnumba.errors import IDXError, SpecError
    with pytest.raises(SpecError, match="embedded"):
        nnumba.data.load_dataset("mnist-5k", root=tmp_path)
    with pytest.raises(IDXError, match="IDX cannot store dtype float16"):
        nnumba.data.write_idx(tmp_path / "x.idx", np.zeros(2, np.float16))
    with pytest.raises(IDXError, match="non-empty dimensions"):
        nnumba.data.write_idx(tmp_path / "x.idx", np.zeros(0, np.uint8))


# ---- objects of the wrong kind where a model, a layer or a device is expected --------

def test_wrong_objects_get_named_errors_not_bare_type_errors():
    from nnumba.device import DeviceError
    from nnumba.errors import DTypeError, SpecError
    from nnumba.layers import Linear, ReLU
    from nnumba.optim import SGD
    with pytest.raises(DTypeError, match="item #0 is a NoneType, not a Layer"):
        nnumba.Sequential(None)
    with pytest.raises(DTypeError, match=r"a class: add \(\)"):
        nnumba.Sequential(ReLU)
    with pytest.raises(SpecError, match="apply to named models only"):
        nnumba.build([{"type": "ReLU"}], hidden=3)
    with pytest.raises(SpecError, match="apply to named models only"):
        nnumba.summary.summarize([{"type": "ReLU"}], hidden=3)
    # a layer has params() too: save gave "too many values to unpack"
    with pytest.raises(DTypeError, match="save: expected a model"):
        nnumba.save(Linear(2, 2), "unused.npz")
    with pytest.raises(DTypeError, match="load_weights: expected a model"):
        nnumba.load_weights(Linear(2, 2), "unused.npz")
    with pytest.raises(DeviceError, match="a device is a name"):
        nnumba.build("logreg").to(None)
    for model in (None, Linear(2, 2)):  # AttributeError at once, or at step()
        with pytest.raises(DTypeError, match="SGD: model must be an nnumba Sequential"):
            SGD(model)


# ---- targets that form no array ---------------------------------------------------------

@pytest.mark.parametrize("loss", ["CrossEntropy", "MSE", "Logistic", "Hinge", "Perceptron"])
def test_ragged_targets_are_a_label_error(loss):
    from nnumba.errors import LabelError
    with pytest.raises(LabelError, match="targets must form an array"):
        nnumba.get_loss(loss)().forward(np.zeros((2, 1), np.float32), [[1], [1, 2]])


# ---- a data file of one class -----------------------------------------------------------

def test_a_data_file_of_one_class_is_refused(tmp_path):
    from nnumba.data.arrays import DataFileError
    path = tmp_path / "one.npz"
    np.savez(path, x_train=np.ones((10, 3), np.float32), y_train=np.full(10, 4))
    with pytest.raises(DataFileError, match="one class only"):
        nnumba.data.load_arrays(path)
    csv = tmp_path / "one.csv"
    csv.write_text("a,label\n1,cat\n2,cat\n3,cat\n")
    with pytest.raises(DataFileError, match=r"one class only \(cat\)"):
        nnumba.data.load_arrays(csv)


def test_the_cli_refuses_a_data_file_of_one_class_in_one_line(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "one.npz"
    np.savez(path, x_train=np.ones((10, 3), np.float32), y_train=np.zeros(10, int))
    run = subprocess.run([sys.executable, "-m", "nnumba", "train", "--data", str(path),
                          "--epochs", "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "one class only" in run.stderr


# ---- classify: images wider than 8 bits ---------------------------------------------------

def test_classify_reads_16_bit_and_float_images_as_their_8_bit_twin(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from nnumba.commands.classify import load_image, normalise
    gray = np.random.default_rng(0).integers(0, 256, (6, 5)).astype(np.uint8)
    gray[0, 0], gray[0, 1] = 0, 255  # the full range: stretching it changes nothing
    Image.fromarray(gray).save(tmp_path / "g8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray(gray.astype(np.float32) / 255).save(tmp_path / "f32.tiff")
    for channels in (1, 3):
        want = normalise(load_image(tmp_path / "g8.png", channels, (4, 4)))
        for name in ("g16.png", "f32.tiff"):  # were one flat white / black plane
            got = normalise(load_image(tmp_path / name, channels, (4, 4)))
            assert got.shape == (1, channels, 4, 4)
            np.testing.assert_allclose(got, want, atol=0.02)


def test_classify_names_nan_pixels_of_a_float_image(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from nnumba.commands.classify import load_image
    from nnumba.errors import ImageError
    Image.fromarray(np.full((4, 4), np.nan, np.float32)).save(tmp_path / "nan.tiff")
    with pytest.raises(ImageError, match="16 pixel.s. are NaN or infinite"):
        load_image(tmp_path / "nan.tiff", 3, (4, 4))


# ---- odd sizes and shapes given to the Python API ---------------------------------------

@pytest.mark.parametrize("shape", [None, 4, "ab", (2.0, 2), (-1, 4), (True, 4)])
def test_output_shape_names_what_is_not_a_shape(shape):
    from nnumba.errors import ShapeError
    model = nnumba.build([{"type": "Flatten"}, {"type": "Linear", "in_features": 4,
                                               "out_features": 2}])
    with pytest.raises(ShapeError, match="a per-sample shape is a tuple of sizes"):
        model.output_shape(shape)
    assert model.output_shape([2, 2]) == (2,)


def test_batches_of_more_examples_than_memory_holds_are_too_large():
    from nnumba.data.batching import batches
    from nnumba.errors import TooLargeError
    for n in (10**12, 10**19):  # np.arange: an 8 TB array, or numpy's bare ValueError
        with pytest.raises(TooLargeError, match="the indices of"):
            batches(n, 10)


def test_nn_regressor_names_targets_that_are_not_numbers_or_do_not_fit():
    pytest.importorskip("sklearn")
    from nnumba.errors import LabelError, NonFiniteError
    from nnumba.sklearn import NNRegressor
    X = np.random.default_rng(0).standard_normal((8, 3))
    with pytest.raises(LabelError, match="y must hold numbers, got dtype <U1"):
        NNRegressor(epochs=1).fit(X, np.array(list("abababab")))
    with pytest.raises(NonFiniteError, match="beyond float32's range"):
        NNRegressor(epochs=1).fit(X, np.full(8, 1e300))


# ---- the torch import: what is not a model, what is not a state_dict ----------------------

def test_torch_import_names_what_is_not_a_model_or_a_state_dict():
    from nnumba.errors import DTypeError, WeightsError
    from nnumba.layers import Linear
    from nnumba.torch_import import load_torch_weights, match_state_dict
    model = nnumba.build([{"type": "Linear", "in_features": 4, "out_features": 2}])
    state = {"0.weight": np.zeros((2, 4), np.float32), "0.bias": np.zeros(2, np.float32)}
    for tensors in (None, [1, 2], "abc"):  # AttributeError: no .items()
        with pytest.raises(WeightsError, match="a state_dict is a mapping"):
            match_state_dict(model, tensors)
    with pytest.raises(DTypeError, match="match_state_dict: expected a model"):
        match_state_dict(None, state)
    with pytest.raises(DTypeError, match="load_torch_weights: expected a model"):
        load_torch_weights(Linear(4, 2), state)  # was "too many values to unpack"
    torch = pytest.importorskip("torch")
    with pytest.raises(WeightsError, match=r"pass module.state_dict\(\)"):
        match_state_dict(model, torch.nn.Linear(4, 2))
    load_torch_weights(model, state)


def test_accuracy_names_predictions_and_targets_that_do_not_pair_up():
    from nnumba.errors import LabelError, ShapeError
    from nnumba.train.metrics import accuracy
    with pytest.raises(LabelError, match="do not pair up"):
        accuracy(np.zeros((2, 2)), np.array([0, 1, 1]))  # numpy: could not be broadcast
    with pytest.raises(ShapeError, match="no samples"):
        accuracy(np.zeros((0, 2)), np.zeros(0, int))  # NaN and a RuntimeWarning
    assert accuracy(np.array([[0, 1], [1, 0]]), np.array([1, 1])) == 0.5


# ---- the command: numba's warnings about its environment, before main() runs -------------

@pytest.mark.parametrize("variable", ["NUMBA_NUM_THREADS=abc", "NUMBA_OPT=bogus"])
def test_the_cli_shows_numbas_environment_warnings_in_one_line(variable):
    import os
    import subprocess
    import sys
    name, value = variable.split("=")
    env = {**os.environ, name: value}
    run = subprocess.run([sys.executable, "-m", "nnumba", "plugins"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 0
    assert "Traceback" not in run.stderr  # numba's warning ends with a traceback's text
    warned = [line for line in run.stderr.splitlines() if name in line]
    assert warned and all(line.startswith("nnumba: warning: ") for line in warned)
    assert all(line.startswith("nnumba: warning: ") for line in run.stderr.splitlines())


# ---- max pooling: planes past the int32 argmax -------------------------------------------

def test_max_pool_refuses_planes_its_int32_argmax_cannot_index():
    from nnumba.errors import TooLargeError
    from nnumba.layers import AvgPool1d, MaxPool1d, MaxPool2d
    wide = (1, 2**31 + 2)  # a flat index past 2**31 - 1 would wrap: backward would write
    with pytest.raises(TooLargeError, match="more than max pooling can index"):  # out of
        MaxPool1d(2).output_shape(wide)                                        # bounds
    with pytest.raises(TooLargeError, match="int32"):
        MaxPool2d(2).output_shape((1, 2**16, 2**15 + 2))
    model = nnumba.Sequential(nnumba.layers.ReLU(), MaxPool1d(2))  # the fused layer too
    with pytest.raises(TooLargeError, match="more than max pooling can index"):
        model.output_shape(wide)
    assert AvgPool1d(2).output_shape(wide) == (1, 2**30 + 1)  # no argmax
    assert MaxPool1d(2).output_shape((1, 2**31 - 1)) == (1, 2**30 - 1)


@pytest.mark.parametrize("layer", ["Conv2d", "Conv1d", "Conv3d", "MaxPool2d", "AvgPool1d",
                                   "ReLUMaxPool1d", "AdaptiveAvgPool2d"])
def test_a_layers_output_shape_names_a_per_sample_shape_of_the_wrong_rank(layer):
    from nnumba.errors import ShapeError
    cls = nnumba.get_layer(layer)
    built = cls(**cls.examples[0][0])
    for shape in ((), (1,), (1, 2, 3, 4, 5)):  # min() of an empty tuple, an IndexError
        with pytest.raises(ShapeError, match="expects per-sample input"):
            built.output_shape(shape)
    assert built.output_shape(cls.examples[0][1][1:])


def test_load_dataset_takes_download_as_a_flag_only():
    from nnumba.errors import SpecError
    for value in ("no", "yes", 1, None):  # "no" is truthy: it went to the network
        with pytest.raises(SpecError, match="download must be true or false"):
            nnumba.data.load_dataset("mnist", download=value)


def test_write_idx_takes_compress_as_a_flag(tmp_path):
    from nnumba.errors import SpecError
    with pytest.raises(SpecError, match="compress must be true or false"):
        nnumba.data.write_idx(tmp_path / "x.idx", np.arange(3, dtype=np.uint8), compress="no")
    path = nnumba.data.write_idx(tmp_path / "x.idx", np.arange(3, dtype=np.uint8), compress=False)
    assert path.read_bytes()[:4] == b"\0\0\x08\x01"  # "no" had gzipped it


def test_reuse_buffers_takes_a_flag():
    from nnumba.errors import SpecError
    model = nnumba.build("logreg")
    with pytest.raises(SpecError, match="on must be true or false"):
        model.reuse_buffers("no")  # truthy: an output would be overwritten by the next
    x = np.zeros((2, 784), np.float32)
    first = model.forward(x).copy()
    kept = model.forward(x)
    model.forward(x + 1)
    assert np.array_equal(kept, first)  # off by default: outputs are fresh arrays


def test_estimators_take_a_spec_as_json_text_as_build_does():
    pytest.importorskip("sklearn")
    from nnumba.errors import SpecError
    from nnumba.sklearn import NNClassifier
    X = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
    y = np.arange(12) % 3
    text = '[{"type": "Linear", "in_features": 4, "out_features": 3}]'
    fitted = NNClassifier(model=text, epochs=1, random_state=0).fit(X, y)  # "unknown model"
    assert fitted.predict(X).shape == (12,)
    with pytest.raises(SpecError, match="model options apply to named models"):
        NNClassifier(model=text, model_options={"hidden": [4]}, epochs=1).fit(X, y)


# ---- backward after the model changed since its forward ----------------------------------

def _small_model():
    from nnumba.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
    return nnumba.Sequential(Conv2d(1, 2, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(2, 3),
                             seed=0)


def test_backward_after_astype_is_refused():
    from nnumba.errors import NoGradientError
    model = _small_model()
    y = model.forward(np.ones((2, 1, 4, 4), np.float32))
    model.astype("float64")  # the layers kept float32 inputs: mixed-dtype kernels
    with pytest.raises(NoGradientError, match="converted, moved"):
        model.backward(np.ones(y.shape))


def test_backward_after_setting_input_grad_is_refused_not_none():
    from nnumba.errors import NoGradientError
    model = _small_model()
    x = np.ones((2, 1, 4, 4), np.float32)
    y = model.forward(x)
    model.input_grad = True  # after the forward: backward returned None
    with pytest.raises(NoGradientError, match="input_grad was set after the last forward"):
        model.backward(np.ones(y.shape, np.float32))
    y = model.forward(x)
    assert model.backward(np.ones(y.shape, np.float32)).shape == x.shape


def test_a_view_whose_contiguous_copy_cannot_fit_is_too_large_not_a_shape_error():
    from nnumba.errors import TooLargeError
    from nnumba.layers import ReLU
    x = np.broadcast_to(np.float32(1), (10**5, 10**6))  # 373 GiB once copied
    with pytest.raises(TooLargeError, match="does not fit in memory"):
        ReLU().forward(x)


def test_classify_labels_file_that_is_no_path_is_named():
    from nnumba.commands.classify import load_labels
    from nnumba.errors import FileFormatError
    with pytest.raises(FileFormatError, match="NUL byte"):
        load_labels("labels\0.txt")  # read_text: a bare ValueError
    with pytest.raises(FileFormatError, match="expected a path"):
        load_labels(None)


# ---- weights files: the .npy headers are checked before the data is read ----------------

def _npz_with_member(path, name, shape, body: bytes, spec_model=None):
    import io
    import json
    import zipfile
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        if spec_model is not None:
            meta = json.dumps({"spec": spec_model.spec(), "dtype": "float32"})
            spec = io.BytesIO()
            np.save(spec, np.array(meta))
            z.writestr("__nnumba_spec__.npy", spec.getvalue())
        z.writestr(name + ".npy", buf.getvalue() + body)
    return path


def test_a_weights_header_declaring_more_than_memory_is_refused_before_reading(tmp_path):
    from nnumba.errors import TooLargeError
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2}])
    path = _npz_with_member(tmp_path / "huge.npz", "0.weight", (2**40,), b"\0" * 64, model)
    with pytest.raises(TooLargeError, match="the arrays its headers declare"):
        nnumba.load_model(path)


def test_a_misfit_is_refused_from_the_headers_without_inflating_the_data(tmp_path,
                                                                         monkeypatch):
    from nnumba.errors import WeightsError
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2}])
    # 64 MB of zeros, deflated to a few kB: a misfit that np.load would inflate first
    path = _npz_with_member(tmp_path / "bomb.npz", "0.weight", (2**24,), bytes(2**26), model)
    bias = __import__("io").BytesIO()
    np.save(bias, np.zeros(2, np.float32))
    with __import__("zipfile").ZipFile(path, "a") as z:
        z.writestr("0.bias.npy", bias.getvalue())  # the model's names: shapes are compared
    def no_data(*args, **kwargs):
        raise AssertionError("np.load read the data before the headers were compared")
    monkeypatch.setattr(np, "load", no_data)
    with pytest.raises(WeightsError, match=r"0\.weight has shape \(16777216,\) in the file, "
                                           r"\(2, 3\) in the model"):
        nnumba.load_weights(model, path)


def test_data_and_torch_npz_headers_declaring_more_than_memory_are_too_large(tmp_path):
    import io
    import zipfile
    from nnumba.data.arrays import DataFileError
    from nnumba.errors import TooLargeError
    from nnumba.torch_import import read_state_dict

    def archive(shape):
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                    "shape": shape})
        labels = io.BytesIO()
        np.save(labels, np.zeros(3, int))
        path = tmp_path / f"{shape[0]}.npz"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("x_train.npy", head.getvalue() + bytes(64))
            z.writestr("y_train.npy", labels.getvalue())
        return path
    huge = archive((2**40,))  # numpy's bare MemoryError: "Unable to allocate 4.00 TiB"
    for call in (nnumba.data.load_arrays, read_state_dict):
        with pytest.raises(TooLargeError, match="the arrays its headers declare"):
            call(huge)
    with pytest.raises(DataFileError, match="x_train is damaged"):  # was "without pickle"
        nnumba.data.load_arrays(archive((2**10,)))


def test_a_layer_switched_to_another_dtype_has_no_backward_from_the_old_forward():
    from nnumba.errors import NoGradientError
    from nnumba.layers import Linear
    layer = Linear(3, 2)
    layer.forward(np.ones((4, 3), np.float32))
    layer.astype(np.float64)
    with pytest.raises(NoGradientError, match="before forward"):
        layer.backward(np.ones((4, 2)))  # would pair float64 kernels with float32 inputs


def test_check_finite_is_a_flag():
    from nnumba.errors import SpecError
    from nnumba.layers import ReLU
    with pytest.raises(SpecError, match="check_finite must be true or false"):
        ReLU().forward(np.ones((2, 3), np.float32), check_finite="no")  # "no" is truthy


def test_masked_values_are_refused_not_read_as_data():
    # numpy hands a kernel the values under the mask as if they were data
    from nnumba.errors import DTypeError
    from nnumba.layers import Linear
    from nnumba.losses import MSE
    model = nnumba.Sequential([Linear(3, 2)])
    x = np.ma.masked_array(np.ones((2, 3), np.float32), mask=[[0, 1, 0], [0, 0, 0]])
    with pytest.raises(DTypeError, match="masked array with 1 masked value"):
        model.forward(x)
    clean = np.ma.masked_array(np.ones((2, 3), np.float32))  # nothing masked: its data
    assert np.allclose(model.forward(clean), model.forward(np.ones((2, 3), np.float32)))
    y = np.ma.masked_array(np.zeros((2, 2), np.float32), mask=[[1, 0], [0, 0]])
    with pytest.raises(DTypeError, match="targets is a masked array"):
        MSE().forward(np.zeros((2, 2), np.float32), y)
