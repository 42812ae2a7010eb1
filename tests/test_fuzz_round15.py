"""Fuzz round 15: average pooling's backward at a stride near 2**63 (its window
arithmetic wrapped past int64 and summed windows that do not hold a pixel), a
safetensors file whose eight or more same-shaped named layers were loaded in a
guessed order, class names that cannot be printed, trainer attributes set after
construction, a write-protected weights file replaced, a spec with a key twice."""
import json
import os
import stat

import numpy as np
import pytest

import nnumba
from nnumba.errors import NnumbaError, SaveError, SpecError, WeightsError
from nnumba.layers import AvgPool1d, AvgPool2d, Flatten, Linear
from nnumba.losses import CrossEntropy


@pytest.mark.parametrize("layer, shape", [(AvgPool2d, (1, 1, 5, 7)), (AvgPool1d, (1, 2, 17))])
@pytest.mark.parametrize("stride", [2**63 - 1, 2**62 + 1, 3, 2])
def test_average_pooling_backward_is_the_transpose_of_its_forward_at_any_stride(layer, shape,
                                                                               stride):
    """<dy, forward(x)> = <backward(dy), x> for the linear map avg-pool, wherever the
    stride puts the windows (dx used to collect windows that do not hold the pixel)."""
    rng = np.random.default_rng(stride % 1000)
    x = rng.standard_normal(shape)
    model = nnumba.Sequential(layer(kernel_size=2, stride=stride)).astype(np.float64)
    model.input_grad = True
    y = model.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy)
    assert np.isclose(np.vdot(dy, y), np.vdot(dx, x), rtol=1e-12, atol=1e-12)
    # every pixel outside the windows gets nothing; each inside one gets dy / window
    window = 4 if layer is AvgPool2d else 2
    assert np.isclose(dx.sum(), dy.sum(), rtol=1e-12) and (dx != 0).sum() == y.size * window


def _named_chain(torch, widths, bias):
    from collections import OrderedDict
    names = "hgfedcba"[:len(widths) - 1]  # module order is not the sorted one
    return torch.nn.Sequential(OrderedDict(
        (n, torch.nn.Linear(a, b, bias=bias)) for n, a, b in zip(names, widths, widths[1:])))


@pytest.mark.parametrize("bias", [False, True])
def test_eight_same_shaped_named_modules_in_a_safetensors_file_are_refused(tmp_path, bias):
    """8! orders are too many to try: the alphabetical one was loaded, and with equal
    shapes it fits, silently wrong (or, with biases, blamed a shape)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from nnumba.torch_import import load_torch_weights
    torch.manual_seed(0)
    net = _named_chain(torch, [6] * 9, bias)
    path = tmp_path / "named.safetensors"
    save_file(net.state_dict(), str(path))
    model = nnumba.Sequential(*[Linear(6, 6, bias=bias) for _ in range(8)])
    before = model.flat_params.copy()
    with pytest.raises(WeightsError, match="order"):
        load_torch_weights(model, path)
    np.testing.assert_array_equal(model.flat_params, before)


def test_eight_named_modules_of_distinct_shapes_out_of_sorted_order_say_to_use_npz(tmp_path):
    """Their order is not tried (8! of them): the shape the sorted order misfits is
    named, and so is the way out."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    from nnumba.torch_import import load_torch_weights
    widths = [3, 4, 5, 6, 7, 8, 9, 10, 2]
    path = tmp_path / "named.safetensors"
    save_file(_named_chain(torch, widths, True).state_dict(), str(path))
    model = nnumba.Sequential(*[Linear(a, b) for a, b in zip(widths, widths[1:])])
    with pytest.raises(WeightsError, match=r"has shape .* 40,320 orders.* export to .npz"):
        load_torch_weights(model, path)
