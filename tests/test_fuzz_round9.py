"""Fuzz round 9 (the API from the outside): each test fails on the code before its
fix, and checks against numpy, SciPy or the same computation done another way."""
import zipfile

import numpy as np
import pytest
from scipy.signal import correlate

import nnumba
from nnumba import io
from nnumba.cli import main
from nnumba.data.arrays import DataFileError, load_arrays
from nnumba.device import CPU
from nnumba.errors import TooLargeError, WeightsError
from nnumba.kernels.cpu.conv import conv2d_forward
from nnumba.layers import Conv2d, Flatten, Linear


def _with_member(src, dst, name, data: bytes):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as b:
        for member in a.namelist():
            b.writestr(member, a.read(member))
        b.writestr(name, data)


def test_a_member_that_is_no_npy_array_is_refused_before_it_is_read(tmp_path):
    # numpy reads such a member whole: 1.6 MB of compressed zeros took 3.3 GB
    good = io.save(nnumba.Sequential(Linear(3, 2), seed=0), tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    _with_member(good, bad, "notes", bytes(8 << 20))
    for load in (io.load_model, io.stored_info, lambda p: io.load_weights(io.load_model(good), p)):
        with pytest.raises(WeightsError, match="member 'notes' is not a .npy array"):
            load(bad)
    data = tmp_path / "data.npz"
    np.savez(data, x_train=np.zeros((4, 2), np.float32), y_train=np.arange(4) % 2)
    _with_member(data, tmp_path / "bad-data.npz", "notes", bytes(8 << 20))
    with pytest.raises(DataFileError, match="member 'notes' is not a .npy array"):
        load_arrays(tmp_path / "bad-data.npz")


def test_an_unreadable_header_no_longer_turns_the_memory_check_off(tmp_path):
    from numpy.lib import format as npy
    import io as bytes_io
    head = bytes_io.BytesIO()  # x_train declares 10^14 values and holds none
    npy.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                      "shape": (10 ** 7, 10 ** 7)})
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train.npy", head.getvalue())
        z.writestr("y_train.npy", b"junk")  # was: headers {} for the whole file
    with pytest.raises(DataFileError, match="'y_train.npy' has no readable .npy header"):
        load_arrays(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train.npy", head.getvalue())
    with pytest.raises(TooLargeError, match="the arrays its headers declare"):
        load_arrays(path)


def test_winograd_does_not_overflow_where_the_direct_sum_does_not():
    # values near float32's range in a checkerboard: Winograd's input transform (sums
    # of neighbours) overflowed to NaN at batch 2, where one image went direct
    big = np.float32(2.5e38)
    x = np.full((2, 20, 6, 6), big, np.float32)
    x[:, :, ::2, :] *= -1
    x[:, :, :, ::2] *= -1
    w = np.full((2, 20, 3, 3), 1e-4, np.float32)
    out = conv2d_forward(x, w, None, 1, 0, np.empty((2, 2, 4, 4), np.float32))
    want = np.stack([[correlate(x[n].astype(np.float64), w[d].astype(np.float64),
                                mode="valid")[0] for d in range(2)] for n in range(2)])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, want, rtol=1e-5)


def test_winograds_scratch_is_counted_before_it_is_asked_for():
    # 16 transformed tiles per output channel: 16x the output on 1 x 1 maps
    n = 1024
    d = int(CPU.free_memory() * 1.5 / (16 * 4 * n)) + 1  # the output fits, the tiles do not
    layer = Conv2d(1, d, 3, bias=False)
    with pytest.raises(TooLargeError, match="scratch arrays for input"):
        layer.forward(np.ones((n, 1, 3, 3), np.float32))  # was numpy's bare MemoryError


def _saved(tmp_path, names):
    model = nnumba.Sequential(Flatten(), Linear(784, 3), seed=0)
    model.layers[1].bias.value[...] = [0, 5, 0]  # class 1 wins
    return io.save(model, tmp_path / "m.npz", classes=names, input_shape=(1, 28, 28))


def test_classify_escapes_control_characters_in_stored_names(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    path = _saved(tmp_path, ["cat", "\x1b[31mdog\n#2 (0.99) forged", "emu"])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "i.png")
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("\\x1b[31mdog\\n#2 (0.99) forged")


def test_classify_takes_the_model_saved_with_the_weights(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    path = _saved(tmp_path, ["cat", "dog", "emu"])
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "i.png")
    # without --model: built alexnet, then listed 16 missing weights
    assert main(["classify", str(tmp_path / "i.png"), "--weights", str(path), "--top", "1",
                 "--json"]) == 0
    assert '"label": "dog"' in capsys.readouterr().out
