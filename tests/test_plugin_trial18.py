"""Plugin trial 18: the layer kit refuses a layer wrong only past its examples' batch
size (output in evaluation mode, input gradient) and a float32 path computed in half
precision; the data set kit takes a folder and names the loader in what it raises.
Each layer test first shows, against an independent reference (an explicit index loop
for PixelShuffle, the float64 result for precision), that the mutant really is wrong."""
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnumba import Layer, ShapeError
from nnumba import testing
from nnumba.data import load_arrays
from nnumba.layers.validation import integer


def reference_shuffle(x, r):
    """y[n, c, h*r+i, w*r+j] = x[n, c*r*r + i*r + j, h, w] (torch.nn.PixelShuffle), by loops."""
    n, c, h, w = x.shape
    co = c // (r * r)
    y = np.empty((n, co, h * r, w * r), x.dtype)
    for a in range(n):
        for k in range(co):
            for i in range(r):
                for j in range(r):
                    y[a, k, i::r, j::r] = x[a, k * r * r + i * r + j]
    return y


class Shuffle(Layer):
    """A correct, CPU-only (numpy) pixel shuffle."""
    examples = [({"upscale_factor": 2}, (3, 8, 2, 3)), ({"upscale_factor": 3}, (2, 9, 1, 2))]
    devices = ("cpu",)

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = integer(type(self).__name__, "upscale_factor", upscale_factor)

    def input_shape(self):
        return (None, None, None)

    def output_shape(self, input_shape):
        c, h, w = input_shape
        r = self.upscale_factor
        if c % (r * r):
            raise ShapeError(f"{type(self).__name__}: channels {c} not a multiple of {r * r}")
        return (c // (r * r), h * r, w * r)

    def flops(self, input_shape):
        return 0, 0, 0

    def _forward(self, x):
        n, c, h, w = x.shape
        r = self.upscale_factor
        y = self._buffer("y", (n,) + self.output_shape((c, h, w)))
        y[...] = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(y.shape)
        return y

    def _backward(self, dl_dy):
        if not self.needs_input_grad:
            return None
        n, co, ho, wo = dl_dy.shape
        r = self.upscale_factor
        dx = self._buffer("dx", (n, co * r * r, ho // r, wo // r))
        dx[...] = dl_dy.reshape(n, co, ho // r, r, wo // r, r).transpose(
            0, 1, 3, 5, 2, 4).reshape(dx.shape)
        return dx


class ShuffleForwardBrokenPast16(Shuffle):
    """Computes only the first 16 samples of a batch (a chunking bug): right at every
    size the examples have, wrong in predict (batches of up to 1000)."""

    def _forward(self, x):
        y = super()._forward(x)
        y[16:] = 0
        return y


class ShuffleBackwardBrokenPast16(Shuffle):
    """Input gradient right for the first 16 samples only."""

    def _backward(self, dl_dy):
        dx = super()._backward(dl_dy)
        if dx is not None:
            dx[16:] = 0
        return dx


class ShuffleHalfPrecision(Shuffle):
    """In float32, rounds its output through float16 (2^-11 relative, ~2000 float32 ulps)."""

    def _forward(self, x):
        y = super()._forward(x)
        if y.dtype == np.float32:
            y[...] = y.astype(np.float16)
        return y


def _rng_input(n, c=8, h=2, w=3):
    return np.random.default_rng(0).normal(size=(n, c, h, w))


def test_control_correct_layer_passes_and_matches_reference():
    testing.check_all(Shuffle)
    x = _rng_input(40)
    np.testing.assert_array_equal(Shuffle(2).astype("float64").forward(x), reference_shuffle(x, 2))


def test_check_all_checks_the_eval_output_at_a_large_batch():
    """In evaluation mode a forward of many copies of the example gives copies of the
    example's output: a layer right only for its first 16 samples (a chunking bug that
    predict's batches of up to 1000 reach) is refused, naming the first wrong sample."""
    layer = ShuffleForwardBrokenPast16(2).astype("float64").eval()
    x = _rng_input(40)
    assert not np.allclose(layer.forward(x), reference_shuffle(x, 2))   # really broken
    with pytest.raises(testing.ConformanceError, match="evaluation mode.*sample 16"):
        testing.check_all(ShuffleForwardBrokenPast16)


def test_check_all_checks_the_input_gradient_at_a_large_batch():
    """At a large batch of copies the input gradient is copies of the example's: it can
    be a sum within a sample (nearest upsampling, overlapping pools), which a parallel
    kernel can race on, and finite differences run at the example's size only."""
    layer = ShuffleBackwardBrokenPast16(2).astype("float64")
    x = _rng_input(40)
    g = np.random.default_rng(1).normal(size=(40, 2, 4, 6))
    layer.forward(x)
    dx = layer.backward(g)
    # y is a permutation of x, so the exact input gradient of sum(y * g) is g permuted
    # back: the dx with reference_shuffle(dx) == g (checked on the correct layer first)
    good = Shuffle(2).astype("float64")
    good.forward(x)
    np.testing.assert_array_equal(reference_shuffle(good.backward(g), 2), g)
    assert not np.allclose(reference_shuffle(dx, 2), g)                 # really broken
    with pytest.raises(testing.ConformanceError, match="input gradient.*sample 16"):
        testing.check_all(ShuffleBackwardBrokenPast16)


def test_check_float32_holds_float32_to_float32_accuracy():
    """A float32 copy agrees with the float64 layer to float32 accuracy: a layer that
    rounds its float32 output through float16 (~2000 float32 ulps) is refused."""
    x = _rng_input(3)
    y64 = Shuffle(2).astype("float64").forward(x.astype(np.float32).astype(np.float64))
    y32 = ShuffleHalfPrecision(2).forward(x.astype(np.float32))
    rel = np.abs(y32 - y64).max() / np.abs(y64).max()
    assert rel > 100 * np.finfo(np.float32).eps                          # not float32 accuracy
    with pytest.raises(testing.ConformanceError, match="in float32, the output differs"):
        testing.check_all(ShuffleHalfPrecision)


def _digits(root=None, download=False):
    """A data set kept in a file: ROOT/digits.npz (the user's cache folder is not used)."""
    if download:
        raise ValueError("digits: no download; write the file with np.savez")
    path = Path(root if root is not None else "/nonexistent-nnumba-cache") / "digits.npz"
    if not path.is_file():
        raise FileNotFoundError(f"digits: {path} does not exist")
    return load_arrays(path)


def test_check_dataset_reads_a_data_set_kept_in_files_from_the_root_it_is_given(tmp_path):
    """check_dataset(loader, root) passes root to the loader, as --data-dir does."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "digits.npz", x_train=rng.normal(size=(40, 3)),
             y_train=np.arange(40) % 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the folder that does not exist is refused: no warning
        data = testing.check_dataset(_digits, root=tmp_path)
    assert data.x_train.shape[1:] == (3,)


def test_check_dataset_wraps_what_the_loader_raises_naming_the_loader(tmp_path):
    """A loader's own exception (a missing file) is a ConformanceError naming the loader,
    the call and the exception, chained to it."""
    with pytest.raises(testing.ConformanceError,
                       match=r"_digits.*root=.*raised FileNotFoundError: digits: .*does not"
                       ) as info:
        testing.check_dataset(_digits, root=tmp_path)
    assert isinstance(info.value.__cause__, FileNotFoundError)
