"""Review 28: Conv3d checks the memory of its frames and row indices before it builds
them, keeps them for the last shape only and drops the device's on a move, and folds in
ceil(kd / sd) passes; CSV integers past 2**24 are refused as .npz ones; the kit names an
example_input that returns a numpy subclass."""
import gc
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import nnumba
from nnumba import Layer, testing
from nnumba.data.arrays import DataFileError
from nnumba.errors import TooLargeError
from nnumba.layers import Conv2d, Conv3d


# ---- 1. Conv3d builds its index maps before any size check ----------------------------------
@pytest.mark.parametrize("pad", [2 ** 40, 2 ** 62])
def test_conv3d_huge_depth_padding_is_a_too_large_error_as_conv2ds(pad):
    """Reference: Conv2d with the same padding on its first axis says TooLargeError naming
    the layer.  At HEAD Conv3d's _maps (conv3d.py:95-100) asks numpy for the index arrays
    first: a bare MemoryError (2**40: 17 TB of int64) or ValueError 'Cross index must be 1
    dimensional' (2**62)."""
    with pytest.raises(TooLargeError, match="Conv2d"):
        Conv2d(1, 1, 1, padding=[pad, 0]).forward(np.ones((1, 1, 3, 3), np.float32))
    with pytest.raises(TooLargeError, match="Conv3d"):
        Conv3d(1, 1, 1, padding=[pad, 0, 0]).forward(np.ones((1, 1, 3, 3, 3), np.float32))


@pytest.mark.parametrize("make, x", [
    (lambda: Conv3d(1, 2, 3, padding=(0, 3 * 10 ** 6, 3 * 10 ** 6)), np.zeros((1, 1, 3, 4, 4))),
    (lambda: nnumba.layers.Conv1d(1, 2, 3, padding=10 ** 6, stride=10 ** 6),
     np.zeros((2 * 10 ** 5, 1, 5))),
])
def test_a_too_large_scratch_error_names_the_input_the_user_gave(make, x):
    """Conv3d and Conv1d run the 2-D kernels, whose scratch check named the 2-D problem's
    shape ((1, 3, 4, 4) for a (1, 1, 3, 4, 4) clip): the message names the input given."""
    with pytest.raises(TooLargeError, match=r"scratch arrays for input " + re.escape(str(x.shape))):
        make().forward(x.astype(np.float32))


def test_conv3d_memory_is_bounded_by_its_arrays_not_kd_times_the_input():
    """Non-overlapping depth windows (stride = kernel = 200) on 1x1 frames: the 2-D problem
    it runs (the frames) is as large as the input, 64 kB, and the output 320 B.  The
    index maps are O(kd N C T) int64 whatever the stride (the folds, conv3d.py:103-107):
    26 MB traced at HEAD, 400 x the arrays the convolution needs."""
    x = np.random.default_rng(0).standard_normal((8, 1, 2000, 1, 1)).astype(np.float32)
    layer = Conv3d(1, 1, [200, 1, 1], stride=[200, 1, 1])
    frames_bytes = 8 * 10 * 200 * 4  # N To C kd H W float32: the 2-D kernels' input
    warm = Conv3d(1, 1, [200, 1, 1], stride=[200, 1, 1])  # the kernels loaded, untraced
    warm.backward(np.ones_like(warm.forward(x[:1, :, :400])))
    tracemalloc.start()
    try:
        y = layer.forward(x)
        layer.backward(np.ones_like(y))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 50 * (x.nbytes + frames_bytes), peak


def test_conv3d_does_not_keep_index_maps_for_every_batch_size_it_saw():
    """A layer keeps its arrays for one shape (a new shape replaces the buffers); at HEAD
    _indices (conv3d.py:89-110, 159-161) keeps a set of maps per (shape, device) forever:
    predicting batches of 1..20 leaves 20 sets."""
    layer = Conv3d(2, 4, [8, 1, 1])
    layer.forward(np.ones((20, 2, 256, 1, 1), np.float32))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        layer.forward(np.ones((20, 2, 256, 1, 1), np.float32))
        one_shape = tracemalloc.get_traced_memory()[0] - base  # what the last shape holds
        for n in range(1, 20):
            layer.forward(np.ones((n, 2, 256, 1, 1), np.float32))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # the largest shape's maps are ~0.6 MB; 19 more shapes must not add ~10x that
    largest_maps = (20 * 249 * 2 * 8 + 8 * 20 * 2 * 256) * 8
    assert retained - one_shape < 2 * largest_maps, (retained, one_shape, largest_maps)


# ---- 2. CUDA index maps outlive model.to('cpu') ------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="no numba-cuda")
def test_conv3d_holds_no_device_array_after_the_model_moves_to_the_cpu():
    """Layer.set_device drops what a layer kept on the device it leaves (contract.py:340-349),
    but only top-level attributes: Conv3d's dict _indices keeps its CUDA index maps."""
    script = textwrap.dedent("""
        import numpy as np, nnumba
        from nnumba.layers import Conv3d, Flatten, Linear
        from nnumba.device import to_device, device_of
        m = nnumba.Sequential(Conv3d(1, 2, 2), Flatten(), Linear(16, 2), seed=0)
        m.to('cuda'); m.forward(to_device(np.ones((2, 1, 3, 3, 3), np.float32), 'cuda'))
        m.to('cpu')
        def arrays(v):
            if isinstance(v, dict):
                for w in v.values(): yield from arrays(w)
            elif isinstance(v, (tuple, list)):
                for w in v: yield from arrays(w)
            else:
                yield v
        left = [k for k, v in vars(m.layers[0]).items()
                for a in arrays(v) if (d := device_of(a)) is not None and d.name == 'cuda']
        print('LEFT', sorted(set(left)))
        assert not left, left
    """)
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


# ---- 3. CSV integers past 2**24 still merge silently ----------------------------------------
def test_csv_integers_beyond_float32s_exact_range_are_refused_like_npz(tmp_path):
    """Reference: the same values as an int64 .npz are refused (DataFileError naming
    2**24).  A CSV column is parsed straight to float32 (arrays.py:424), so 16777217
    becomes 16777216, silently, in load_arrays."""
    ids = [2 ** 24 + 1 if i % 2 else 2 ** 24 for i in range(20)]
    np.savez(tmp_path / "ids.npz", x_train=np.array([[v, i] for i, v in enumerate(ids)]),
             y_train=np.arange(20) % 2)
    with pytest.raises(DataFileError, match=r"2\*\*24"):
        nnumba.data.load_arrays(tmp_path / "ids.npz")
    (tmp_path / "ids.csv").write_text(
        "a,b,label\n" + "".join(f"{v},{i},{i % 2}\n" for i, v in enumerate(ids)))
    try:
        data = nnumba.data.load_arrays(tmp_path / "ids.csv")
    except DataFileError as exc:
        assert "2**24" in str(exc)
        return
    got = np.concatenate([data.x_train, data.x_test])[:, 0].astype(np.int64)
    assert set(got) == {2 ** 24, 2 ** 24 + 1}, f"the two ids merged: {sorted(set(got))}"


# ---- 4. the kit takes an ndarray subclass from example_input --------------------------------
class _Ids28(Layer):
    """Ids (N, T) as floats, rounded, to (N, T, E)."""
    examples = [({"num_embeddings": 5, "dim": 3}, (2, 4))]
    devices = ("cpu",)

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = self.add_param("weight", (num_embeddings, dim))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.normal(size=self.weight.value.shape)

    def input_shape(self):
        return (None,)

    def output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def example_input(self, shape, rng):
        return np.asmatrix(rng.integers(0, self.num_embeddings, size=shape).astype(np.float64))

    def _forward(self, x):
        ids = np.floor(np.asarray(x) + 0.5).astype(np.int64)
        if ((ids < 0) | (ids >= self.num_embeddings)).any():
            raise nnumba.errors.ShapeError(f"{self.label}: ids out of range")
        y = self._buffer("y", (*x.shape, self.dim))
        y[...] = self.weight.value[ids]
        self._x = x
        return y

    def _backward(self, dl_dy):
        ids = np.floor(np.asarray(self._x) + 0.5).astype(np.int64)
        np.add.at(self.weight.grad, ids.reshape(-1), dl_dy.reshape(-1, self.dim))
        return self._buffer("dx", self._x.shape, zero=True) if self.needs_input_grad else None


def test_an_example_input_that_is_an_ndarray_subclass_is_named_as_the_hooks_fault():
    """inputs.example_batch (inputs.py:19) checks isinstance(x, np.ndarray), which np.matrix
    passes; matrix '*' is a matrix product, and the kit fails later in check_float32 with
    'shapes (2,4) and (2,4) not aligned', naming neither example_input nor the subclass."""
    with pytest.raises(testing.ConformanceError, match="example_input"):
        testing.check_all(_Ids28)
