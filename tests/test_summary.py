"""``nnumba summary``: the lecture's 3.87e10-parameter example, sized without allocating,
and per-layer figures that agree with the models actually built."""
import json
import math
import tracemalloc

import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.summary import approx_bytes, iec_bytes, si_bytes, summarize

LECTURE_PARAMS = (256 * 256 * 3) ** 2  # 38,654,705,664


def test_lecture_example_counts_and_memory():
    s = summarize("image-linear")
    assert s.params == LECTURE_PARAMS
    assert s.param_bytes == 4 * LECTURE_PARAMS          # float32
    assert [r.output_shape for r in s.rows] == [(196608,), (196608,)]
    assert s.forward_flops == 2 * LECTURE_PARAMS        # one multiply-add per weight
    text = s.format()
    assert "38,654,705,664 parameters (3.87e+10)" in text
    assert "154.6 GB (≈ 150 GB; 144.0 GiB) of float32" in text


def test_lecture_example_on_the_command_line(capsys):
    assert main(["summary", "image-linear"]) == 0
    out = capsys.readouterr().out
    assert "(3.87e+10)" in out and "≈ 150 GB" in out and "1 GB = 10^9 bytes" in out


def test_summary_allocates_nothing_for_a_150_gb_model():
    summarize("image-linear")  # imports and registry set-up outside the measure
    tracemalloc.start()
    try:
        s = summarize("image-linear", batch=64, dtype="float64")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert s.param_bytes == 8 * LECTURE_PARAMS
    assert peak < 2_000_000, f"summary allocated {peak} bytes"


def test_units():
    assert si_bytes(154_618_822_656) == "154.6 GB"
    assert approx_bytes(154_618_822_656) == "150 GB"
    assert iec_bytes(154_618_822_656) == "144.0 GiB"
    assert si_bytes(999) == "999 B" and si_bytes(1500) == "1.5 kB"


def _prefix_shapes(model, input_shape):
    shapes, shape = [], tuple(input_shape)
    for layer in model.layers:
        shape = tuple(layer.output_shape(shape))
        shapes.append(shape)
    return shapes


def test_mlp_agrees_with_the_built_model():
    s = summarize("mlp", batch=100)
    model = nnumba.build("mlp")
    assert s.params == model.num_params()
    assert [r.output_shape for r in s.rows] == _prefix_shapes(model, (784,))
    assert s.rows[1].forward_flops == 100 * (2 * 784 * 256 + 256)
    # Linear + ReLU run as one step: their one output array is counted at the ReLU
    assert s.rows[1].activation_bytes == 0 and s.rows[2].activation_bytes == 100 * 256 * 4
    assert s.rows[0].activation_bytes == 0  # Flatten returns a view


def test_batch_and_dtype_scale_linearly():
    one, many = summarize("mlp"), summarize("mlp", batch=8, dtype="float64")
    assert many.param_bytes == 2 * one.param_bytes
    assert many.activation_bytes == 16 * one.activation_bytes
    assert many.forward_flops == 8 * one.forward_flops


def test_spec_file_and_input_shape(tmp_path, capsys):
    spec = [{"type": "Flatten"}, {"type": "Linear", "in_features": 12, "out_features": 5},
            {"type": "Tanh"}]
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    assert main(["summary", str(path), "--input-shape", "3,2,2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"]["params"] == 65
    assert result["layers"][1]["output_shape"] == [5]
    assert main(["summary", str(path), "--input-shape", "3,2,3"]) == 2
    assert "Linear #1 expects per-sample input (12) but receives (18,)" in capsys.readouterr().err


def test_a_saved_model_is_summarized_from_its_spec_without_its_weights(tmp_path, capsys):
    model = nnumba.build("mlp", hidden=[32])
    path = nnumba.save(model, tmp_path / "net.npz")
    s = summarize(path, batch=10)
    assert s.params == model.num_params() == 784 * 32 + 32 + 32 * 10 + 10
    assert [r.output_shape for r in s.rows] == _prefix_shapes(model, (784,))
    assert main(["summary", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["params"] == model.num_params()
    lenet = nnumba.save(nnumba.build("lenet"), tmp_path / "lenet.npz")
    assert main(["summary", str(lenet)]) == 2  # a conv first: its map size is not stored
    assert f"{lenet}: cannot tell the input shape from the model; give it, e.g. " \
           "--input-shape" in capsys.readouterr().err
    assert main(["summary", str(tmp_path / "none.npz")]) == 2
    assert "none.npz: no such weights file" in capsys.readouterr().err


def test_model_options_on_the_command_line(tmp_path, capsys):
    assert main(["summary", "mlp", "--model-option", "hidden=[64]", "--model-option",
                 "classes=3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"]["params"] == 784 * 64 + 64 + 64 * 3 + 3   # the closed form
    built = nnumba.build("mlp", hidden=[64], classes=3)
    assert result["total"]["params"] == built.num_params()
    for argv, message in ((["mlp", "--model-option", "batch=3"], "--model-option batch"),
                          (["mlp", "--model-option", "depth=3"], "has no option depth"),
                          (["mlp", "--model-option", "hidden"], "takes KEY=VALUE"),
                          (["mlp", "--model-option", "inputs=x"],   # as `nnumba train` says
                           "in_features must be an integer >= 1, got 'x'"),
                          ([str(tmp_path / "m.json"), "--model-option", "a=1"],
                           "applies to named models")):
        assert main(["summary", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and "report it" not in err


def test_unknown_input_shape_is_asked_for():
    with pytest.raises(ValueError, match="--input-shape"):
        summarize([{"type": "ReLU"}])


def test_lenet_and_alexnet_agree_with_the_built_models():
    s = summarize("lenet", input_shape=(1, 28, 28))
    lenet = nnumba.build("lenet")
    assert s.params == lenet.num_params()
    assert [r.output_shape for r in s.rows] == _prefix_shapes(lenet, (1, 28, 28))
    s = summarize("alexnet")
    assert s.params == 61_100_840  # torchvision's AlexNet
    conv_pool = [r.output_shape for r in s.rows if r.layer in ("Conv2d", "MaxPool2d")]
    assert conv_pool == [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13),
                         (384, 13, 13), (256, 13, 13), (256, 13, 13), (256, 6, 6)]
    assert s.rows[13].output_shape == (256, 6, 6) and s.rows[14].output_shape == (9216,)
    assert s.rows[-1].output_shape == (1000,)
    # 655.6 M multiply-adds in the convolutions (plus one add per output for the bias).
    conv = [r for r in s.rows if r.layer == "Conv2d"]
    conv_macs = sum(r.forward_flops - math.prod(r.output_shape) for r in conv) // 2
    assert conv_macs == 655_566_528
    assert s.rows[0].backward_flops < s.rows[3].backward_flops  # no input gradient for #0


def test_alexnet_summary_matches_a_built_alexnet():
    model = nnumba.build("alexnet", num_classes=10)
    s = summarize("alexnet", input_shape=(3, 224, 224), num_classes=10)
    assert s.params == model.num_params()
    assert [r.output_shape for r in s.rows] == _prefix_shapes(model, (3, 224, 224))
    assert np.array_equal([r.params for r in s.rows],
                          [sum(p.value.size for p in layer.params().values())
                           for layer in model.layers])


def test_model_option_values_read_as_json_or_python_literals():
    from nnumba.commands.model_options import parse
    assert parse(["a=5", "b=[1, 2]", "c=true", "d=True", "e=False", "f=None", "g=null",
                  "h=relu", "i=Truth"]) == {"a": 5, "b": [1, 2], "c": True, "d": True,
                                            "e": False, "f": None, "g": None, "h": "relu",
                                            "i": "Truth"}


class _Uncounted(nnumba.Layer):
    """A plugin layer with no ``flops``: summary cannot count it."""

    def _forward(self, x):
        return x

    def _backward(self, dl_dy):
        return dl_dy


def _summarize_with(layer_name, layer_class, spec, **kwargs):
    """summarize(spec, **kwargs) with ``layer_class`` registered as ``layer_name``."""
    class Plugin:
        @nnumba.hookimpl
        def nnumba_register_layers(self):
            return {layer_name: layer_class}
    name = nnumba.register_plugin(Plugin(), f"t-{layer_name.lower()}")
    try:
        return summarize(spec, **kwargs)
    finally:
        nnumba.unregister_plugin(name)


def test_a_layer_without_a_flop_count_leaves_a_lower_bound_naming_it():
    spec = [{"type": "Linear", "in_features": 4, "out_features": 3}, {"type": "Uncounted"},
            {"type": "Linear", "in_features": 3, "out_features": 2}]
    s = _summarize_with("Uncounted", _Uncounted, spec, input_shape=(4,), batch=5)
    assert s.forward_flops is None and s.rows[1].forward_flops is None  # unknown stays unknown
    known = sum(r.forward_flops for r in s.rows if r.forward_flops is not None)
    assert known == 5 * (2 * 4 * 3 + 3 + 2 * 3 * 2 + 2)  # both Linear layers' multiply-adds + bias
    total = s.format().splitlines()[-2]
    assert f"forward at least {known:,} (no count from #1) FLOPs" in total


def test_flop_counts_given_as_floats_are_whole_numbers():
    class Halves(_Uncounted):
        def flops(self, input_shape):
            return 8.5, 1e300, 0.0  # (a count past a float's range in the sum stays exact)

    s = _summarize_with("Halves", Halves, [{"type": "Halves"}, {"type": "Halves"}],
                        input_shape=(4,), batch=10**9)
    assert s.rows[0].forward_flops == 8 * 10**9 and isinstance(s.forward_flops, int)
    text = s.format()
    assert "8.00e+09" in text and "2.00e+309" in text and "inf" not in text
