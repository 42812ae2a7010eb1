"""Fuzz round 40: hostile files against nnumba's readers (save/load, checkpoints, torch
import, the --data reader): ~4,000 mutated files; these are what escaped."""
import io
import json
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError, WeightsError
from nnumba.layers import Linear


def _saved(tmp_path, name="w.npz"):
    model = nnumba.Sequential(Linear(2, 2), seed=0)
    return model, nnumba.save(model, tmp_path / name)


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


# ---- Finding 1: a zip whose central directory says "version needed" > 6.3 -------------

def _too_new_zip(src, dst):
    data = bytearray(src.read_bytes())
    entry = data.find(b"PK\x01\x02")  # the first central-directory entry
    data[entry + 6] = 65  # version needed to extract: 6.5 (zipfile reads up to 6.3)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("reader", ["load_model", "load_weights", "stored_training",
                                    "load_torch_weights"])
def test_zip_of_a_newer_version_is_a_weights_error(tmp_path, reader):
    """zipfile.ZipFile raises NotImplementedError("zip file version 6.5") from its
    constructor; npz_headers catches BadZipFile/OSError/ValueError/EOFError only, so the
    bare NotImplementedError escapes (the CLI: "unexpected ... please report it", rc 1)."""
    from nnumba.torch_import import load_torch_weights
    _, good = _saved(tmp_path)
    bad = _too_new_zip(good, tmp_path / "v65.npz")
    fresh = nnumba.Sequential(Linear(2, 2), seed=1)
    call = {"load_model": lambda: nnumba.load_model(bad),
            "load_weights": lambda: nnumba.load_weights(fresh, bad),
            "stored_training": lambda: nnumba.stored_training(bad),
            "load_torch_weights": lambda: load_torch_weights(fresh, bad)}[reader]
    with pytest.raises(NnumbaError):
        call()


def test_data_npz_of_a_newer_zip_version_is_a_data_file_error(tmp_path):
    from nnumba.data import DataFileError, load_arrays
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 2), np.float32),
             y_train=np.arange(4) % 2)
    bad = _too_new_zip(tmp_path / "d.npz", tmp_path / "d65.npz")
    with pytest.raises(DataFileError):
        load_arrays(bad)


# ---- Finding 2: an over-long file name on the reading side ------------------------------

@pytest.mark.parametrize("reader", ["load_model", "stored_training", "read_json",
                                    "load_arrays"])
def test_reading_an_over_long_file_name_is_an_nnumba_error(tmp_path, reader):
    """Path.exists()/is_file() raise OSError(ENAMETOOLONG) (they swallow only ENOENT,
    ENOTDIR, EBADF, ELOOP): paths.regular_file lets it out bare. save() already turns the
    same name into SaveError ("File name too long")."""
    from nnumba.data import load_arrays
    from nnumba.jsonfile import read_json
    long = tmp_path / ("w" * 300 + ".npz")
    call = {"load_model": lambda: nnumba.load_model(long),
            "stored_training": lambda: nnumba.stored_training(long),
            "read_json": lambda: read_json(tmp_path / ("s" * 300 + ".json"), "model spec"),
            "load_arrays": lambda: load_arrays(long)}[reader]
    with pytest.raises(NnumbaError):
        call()


# ---- Finding 3: a state_dict mapping in name-sorted order loads into the wrong layers ----

def test_torch_import_of_a_name_sorted_state_dict_is_right_or_refused(tmp_path):
    """safetensors' own loaders return the tensors sorted by name ("0", "10", "2", ...).
    Passed as a mapping (or kept as .npz) it is taken as the state_dict's order: six
    bias-free 8x8 layers then load torch's layer 10 into nnumba's layer 2, silently."""
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    from nnumba.torch_import import load_torch_weights
    torch.manual_seed(0)
    mods, spec = [], []
    for _ in range(6):
        mods += [torch.nn.Linear(8, 8, bias=False), torch.nn.Tanh()]
        spec += [{"type": "Linear", "in_features": 8, "out_features": 8, "bias": False},
                 {"type": "Tanh"}]
    reference = torch.nn.Sequential(*mods[:-1])
    st_torch.save_file(reference.state_dict(), str(tmp_path / "deep.safetensors"))
    tensors = st_torch.load_file(str(tmp_path / "deep.safetensors"))  # sorted by name
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    model = nnumba.build(spec[:-1])
    try:
        load_torch_weights(model, tensors)
    except WeightsError:
        return  # refusing an order that contradicts the names is fine too
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-5)


# ---- Finding 4: tiny hostile files that make load_model allocate far more ---------------

def test_load_model_compares_the_file_with_its_spec_before_building_it(tmp_path):
    """A 1.4 kB file whose spec says Linear(N, N) but whose arrays are 2x2: load_model
    builds (allocates and randomly initialises) the N x N model before load_weights
    compares the headers. At N=20000 float64 that was 45 s and 15.7 GB peak RSS before
    the WeightsError. Here N=3000 (72 MB of float64 weights) and the peak is bounded."""
    _, good = _saved(tmp_path)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    meta["spec"] = [{"type": "Linear", "in_features": 3000, "out_features": 3000}]
    meta["dtype"] = "float64"
    arrays["__nnumba_spec__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "lying.npz", **arrays)
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError):
            nnumba.load_model(tmp_path / "lying.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB allocated to refuse a 2 kB file"


def test_stored_spec_longer_than_a_spec_file_may_be_is_refused(tmp_path):
    """The stored spec member's size is only compared with the free memory: a deflated
    1 MB file declaring a 1 GB spec (JSON padded with spaces) loaded in 19 s at 2.6 GB
    peak. A spec file is capped at jsonfile.MAX_TEXT_BYTES (64 MB); the same cap (in
    characters) should hold for the spec inside a weights file."""
    from nnumba.jsonfile import MAX_TEXT_BYTES
    model, good = _saved(tmp_path)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    spec = str(arrays["__nnumba_spec__"])
    n = MAX_TEXT_BYTES + (1 << 20)  # characters, all but the JSON ones spaces
    path = tmp_path / "padded.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for key in ("0.weight", "0.bias"):
            out.writestr(key + ".npy", _npy(arrays[key]))
        with out.open("__nnumba_spec__.npy", "w", force_zip64=True) as f:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": f"<U{n}", "fortran_order": False, "shape": ()})
            f.write(header.getvalue())
            f.write(np.array(spec, dtype=f"<U{len(spec)}").tobytes())
            left, chunk = (n - len(spec)) * 4, b" \0\0\0" * (1 << 18)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
    assert path.stat().st_size < 2e6
    with pytest.raises(WeightsError):
        nnumba.load_model(path)


# ---- Finding 5: duplicated members in a weights zip ---------------------------------------

def test_a_weights_file_naming_a_parameter_twice_is_refused(tmp_path):
    """A zip may hold two members of one name; zipfile then reads the last. nnumba refuses
    a key named twice in every JSON it reads (DuplicateKeyError: "json keeps the last
    silently"), but a weights file with two 0.weight arrays loads the second silently."""
    _, good = _saved(tmp_path)
    bad = tmp_path / "twice.npz"
    with zipfile.ZipFile(good) as src, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile: "Duplicate name"
        with zipfile.ZipFile(bad, "w") as out:
            for info in src.infolist():
                out.writestr(info.filename, src.read(info))
            out.writestr("0.weight.npy", _npy(np.full((2, 2), 7.0, np.float32)))
    with pytest.raises(WeightsError):
        nnumba.load_model(bad)


def test_a_name_sorted_state_dict_with_biases_loads_in_module_order(tmp_path):
    """Sorted by name, "0.bias" comes before "0.weight" and "10" before "2": such a
    mapping was refused (bias into a weight); its order is now rebuilt from the names,
    as a safetensors file's is."""
    torch = pytest.importorskip("torch")
    from nnumba.torch_import import load_torch_weights
    torch.manual_seed(1)
    mods = [torch.nn.Linear(5, 5) if i % 2 == 0 else torch.nn.Tanh() for i in range(11)]
    reference = torch.nn.Sequential(*mods)
    spec = [{"type": "Linear", "in_features": 5, "out_features": 5} if i % 2 == 0 else
            {"type": "Tanh"} for i in range(11)]
    state = reference.state_dict()
    tensors = {k: state[k].numpy() for k in sorted(state)}
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    model = load_torch_weights(nnumba.build(spec), tensors)
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-5)
