"""Fuzz round 57 (generated model specs): a first layer that keeps any shape (a
Dropout, an activation, an Identity) no longer hides the input shape a later Linear or
Conv2d fixes: train reshapes the rows to it, as without that layer, and summary's hint
is a shape the spec takes; image-linear checks its own options (-2 x -3 built a
Linear(18, 18), a string made a long one)."""
import json
import os
import re
import subprocess
import sys

import pytest

import nnumba
from nnumba.summary import summarize

SHAPE_AGNOSTIC_FIRST = [
    # (spec, a per-sample input shape the spec takes: the reference)
    ([{"type": "Identity"},
      {"type": "Conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 3}], (3, 8, 8)),
    ([{"type": "Dropout", "p": 0.2},
      {"type": "Linear", "in_features": 784, "out_features": 10}], (784,)),
    ([{"type": "Tanh"}, {"type": "Linear", "in_features": 5, "out_features": 2}], (5,)),
]


@pytest.mark.parametrize("spec,takes", SHAPE_AGNOSTIC_FIRST)
def test_summary_input_shape_hint_works_after_a_shape_agnostic_first_layer(spec, takes):
    # the hint "give it, e.g. --input-shape 1,28,28" is a shape the spec takes (as
    # where the Conv2d/Linear comes first), not one it refuses
    nnumba.build(spec).output_shape(takes)  # the reference: the spec does take `takes`
    try:
        summarize(spec)
        return  # a fix may also guess the shape outright: fine
    except nnumba.ShapeError as exc:
        hint = re.search(r"--input-shape ([0-9,]+)", str(exc))
        assert hint, str(exc)
        shape = tuple(int(v) for v in hint.group(1).split(","))
    summarize(spec, input_shape=shape)  # was: ShapeError "... expects (3, *, *) ..."


def _train(spec, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "nnumba", "train", "--model", str(path),
                           "--epochs", "1", "--train-size", "50", "--test-size", "20",
                           "--json"], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize("first", [{"type": "Dropout", "p": 0.2}, {"type": "Identity"}])
def test_train_takes_a_spec_whose_linear_784_follows_a_shape_agnostic_layer(first, tmp_path):
    # [Linear(784, 10)] trains on MNIST; [Dropout, Linear(784, 10)] was refused with
    # "Linear #1 expects per-sample input (784) but receives (1, 28, 28)".
    linear = {"type": "Linear", "in_features": 784, "out_features": 10}
    reference = _train([linear], tmp_path)
    assert reference.returncode == 0, reference.stderr[-500:]
    run = _train([first, linear], tmp_path)
    assert run.returncode == 0, run.stderr[-500:]
    assert json.loads(run.stdout)["epochs"] == 1


@pytest.mark.parametrize("options, name", [
    ({"height": -2, "width": -3}, "height"),            # built Flatten + Linear(18, 18)
    ({"height": 2 ** 70, "channels": [True]}, "channels"),  # a bare OverflowError
    ({"height": "3"}, "height"),                        # a SpecError of in_features '33..3'
])
def test_image_linear_checks_its_own_options(options, name):
    # the factory multiplied its options unchecked
    with pytest.raises(nnumba.NnumbaError) as info:
        nnumba.build("image-linear", bias=False, **options)
    assert f"image-linear: {name} must be an integer >= 1" in str(info.value)  # names the option, not in_features


def test_a_layer_that_may_change_the_shape_stops_the_guess():
    """Past a layer that declares no shape but has an output_shape of its own (a pool),
    nothing is fixed: no guess, the hint is asked for as before."""
    from nnumba.layers.declared_shape import fixed_input_shape
    spec = [{"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
            {"type": "Linear", "in_features": 4, "out_features": 2}]
    assert fixed_input_shape(nnumba.build(spec).layers) is None
    keep = [{"type": "ReLU"}, {"type": "Flatten"}, {"type": "Dropout", "p": 0.1},
            {"type": "Linear", "in_features": 12, "out_features": 2}]
    assert fixed_input_shape(nnumba.build(keep).layers) == (12,)
