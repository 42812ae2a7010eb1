"""Weights round-trip through .npz without pickle; misfits are refused clearly."""
import numpy as np
import pytest

import nnumba
from nnumba.errors import WeightsError


def test_round_trip_rebuilds_model_and_outputs(tmp_path):
    model = nnumba.build("mlp", seed=1, hidden=[16, 8])
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    path = nnumba.save(model, tmp_path / "w")
    assert path.suffix == ".npz"
    twin = nnumba.load_model(path)
    assert twin.spec() == model.spec()
    np.testing.assert_array_equal(twin.forward(x), model.forward(x))
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert "0" not in data.files and "1.weight" in data.files


def test_float64_models_stay_float64(tmp_path):
    model = nnumba.build("logreg").astype(np.float64)
    assert nnumba.load_model(nnumba.save(model, tmp_path / "m.npz")).dtype == np.float64


def test_misfit_file_is_refused_and_model_untouched(tmp_path):
    path = nnumba.save(nnumba.build("mlp", hidden=16), tmp_path / "small.npz")
    model = nnumba.build("mlp", hidden=32)
    before = model.flat_params.copy()
    with pytest.raises(WeightsError, match=r"1\.weight has shape \(16, 784\) in the file, \(32, 784\)"):
        nnumba.load_weights(model, path)
    assert np.array_equal(model.flat_params, before)
    with pytest.raises(WeightsError, match="missing"):
        nnumba.load_weights(nnumba.build("mlp", hidden=[16, 16]), path)


def test_garbage_and_pickled_files_are_refused(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(WeightsError, match="not a readable"):
        nnumba.load_model(junk)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **{"1.weight": np.array([object()], dtype=object)})
    with pytest.raises(WeightsError):
        nnumba.load_model(evil)


def test_a_member_that_is_not_npy_data_is_refused(tmp_path):
    """numpy hands over such a member as bytes; it used to fail with AttributeError."""
    import zipfile
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    nnumba.save(nnumba.Sequential(nnumba.get_layer("Linear")(3, 2), seed=0), good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"not an npy" if name.startswith("0.weight") else src.read(name))
    for load in (nnumba.load_model, lambda p: nnumba.load_weights(nnumba.load_model(good), p)):
        with pytest.raises(WeightsError, match="member '0.weight.npy' has no readable .npy header"):
            load(bad)
