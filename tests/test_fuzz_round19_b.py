"""Fuzz round 19 (b): a label column text that is both a header name and another
column's index, PyTorch's device indices, a test set of the wrong shape, an experiment's
feature layer with plugin autoload off, and check_device's tolerances."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnumba
from nnumba.cli import main


def _ambiguous_csv(tmp_path):
    """Header `x,2,1`: column 1 holds 0/1 labels, the column named "1" (column 2) 7/8/9."""
    rows = ["x,2,1"] + [f"{i * 0.1:.1f},{i % 2},{7 + i % 3}" for i in range(40)]
    path = tmp_path / "amb.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_label_column_that_is_both_a_name_and_an_index_is_refused(tmp_path, capsys):
    """`--label-column 1` where a column is named "1" and column 1 is another: either
    documented reading ("by header name or 0-based index") may be meant, so the run is
    refused with the two unambiguous spellings (negative indices) instead of silently
    training on the named column."""
    path = _ambiguous_csv(tmp_path)
    status = main(["train", "--data", str(path), "--label-column", "1", "--epochs", "1",
                   "--no-progress"])
    said = capsys.readouterr().err
    assert status != 0
    assert "ambiguous" in said and "-1 for the column named '1'" in said, said
    assert "-2 for column 1" in said, said


@pytest.mark.parametrize("column, labels", [("-1", {7, 8, 9}), ("-2", {0, 1})])
def test_the_suggested_spellings_pick_the_column_meant(tmp_path, column, labels):
    """The negative indices the refusal suggests read the column each names."""
    from nnumba.data import load_arrays
    data = load_arrays(_ambiguous_csv(tmp_path), label_column=column)
    assert set(np.unique(np.concatenate([data.y_train, data.y_test]))) <= labels


def test_a_label_column_name_that_is_also_its_own_index_still_works(tmp_path):
    """A name that is also the index of the same column is not ambiguous."""
    from nnumba.data import load_arrays
    rows = ["a,1,b"] + [f"{i * 0.1:.1f},{i % 2},{i * 0.2:.1f}" for i in range(20)]
    path = tmp_path / "same.csv"
    path.write_text("\n".join(rows) + "\n")
    data = load_arrays(path, label_column="1")
    assert data.x_train.shape[1] == 2


@pytest.mark.parametrize("name", ["cuda:0", "cpu:0"])
def test_a_device_index_is_not_answered_with_install_advice(name):
    """model.to('cuda:0'), PyTorch's spelling, says that nnumba devices take no index
    and names the device to use, not "install the distribution that registers it"
    (the text before ':' read as a plugin's prefix) for a device that is built in."""
    base = name.split(":")[0]
    assert base in nnumba.get_registry().entries("device")   # a built-in device
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 2,
                                          "out_features": 2}])
    with pytest.raises(nnumba.NnumbaError) as info:
        model.to(name)
    message = str(info.value)
    assert "install" not in message and "take no index" in message, message
    assert repr(base) in message
    assert ("CUDA_VISIBLE_DEVICES" in message) == (base == "cuda")


@pytest.mark.parametrize("trainer", ["SGDTrainer", "GDTrainer"])
def test_a_test_set_of_the_wrong_shape_is_named(trainer):
    """fit(x, y, x_test=x_of_3_features) names the test inputs, where a wrong training
    set keeps the layers' own words ("Linear #0 expects per-sample input (4) ...")."""
    from nnumba.losses import CrossEntropy
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    model = nnumba.Sequential.from_spec([{"type": "Linear", "in_features": 4,
                                          "out_features": 3}], seed=0)
    fit = getattr(nnumba, trainer)(model, CrossEntropy(), lr=0.1).fit
    with pytest.raises(nnumba.errors.ShapeError) as info:
        fit(x, y, epochs=1, x_test=x[:, :3], y_test=y)
    assert str(info.value).startswith("test inputs: Linear #0"), str(info.value)
    with pytest.raises(nnumba.errors.ShapeError) as info:
        fit(x[:, :3], y, epochs=1)
    assert str(info.value).startswith("Linear #0 expects"), str(info.value)


def test_experiment_needing_a_feature_layer_says_autoload_is_off(tmp_path):
    """With NNUMBA_DISABLE_PLUGIN_AUTOLOAD=1, `nnumba experiment run xor` says, as the
    registry's own unknown-name message does, that installed plugins are not loaded,
    not only to install nnumba-features (which is installed)."""
    import importlib.metadata as md
    try:
        md.distribution("nnumba-features")
    except md.PackageNotFoundError:
        pytest.skip("nnumba-features is not installed")
    out = subprocess.run([sys.executable, "-m", "nnumba", "experiment", "run", "xor", "--fast"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "NUMBA_NUM_THREADS": "1",
                              "NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert out.returncode != 0
    assert "NNUMBA_DISABLE_PLUGIN_AUTOLOAD is set" in out.stderr, out.stderr


@pytest.mark.parametrize("kw", [{"rtol": "1e-6"}, {"rtol": None}, {"atol": "0"},
                                {"atol": float("nan")}, {"rtol": -1e-6}, {"rtol": True}])
def test_check_device_refuses_a_tolerance_that_is_not_a_number(kw):
    """check_device(ReLU, 'cpu', rtol='1e-6') (a tolerance read from a config file) is
    refused up front as a ConformanceError naming the argument, as check_layer refuses
    a bad seed, not numpy's TypeError from inside the comparison read as the layer's
    failure; a NaN or negative tolerance is refused too."""
    from nnumba.layers import ReLU
    from nnumba.testing import ConformanceError, check_device
    with pytest.raises(ConformanceError) as info:
        check_device(ReLU, "cpu", **kw)
    assert f"check_device: {next(iter(kw))} must be" in str(info.value)


def test_check_device_takes_numpy_tolerances():
    """Numbers of numpy's own types, and zero, are tolerances."""
    from nnumba.layers import ReLU
    from nnumba.testing import check_device
    assert check_device(ReLU, "cpu", rtol=np.float32(1e-6), atol=0) is True
