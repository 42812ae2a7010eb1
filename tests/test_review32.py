"""Review 32, of this sitting's later changes: the float32 floor for parameter gradients
hid a float16 detour in a gradient far below the others (now only a cancelled gradient
gets it), a nested command's unknown option was its parent's error, and one before the
command was blamed on the command."""
import argparse

import numpy as np
import pytest

from nnumba import Layer, testing
from nnumba.layers.validation import integer


# ---- 1. the float32 tolerance floor hides a float16 detour in a small gradient -------

class ScaledBias(Layer):
    """y = x W^T + 0.001 s: a Linear whose offset s is scaled down, so s's gradient is
    some 1000 times smaller than W's."""

    examples = [({"features": 4}, (3, 4))]
    DETOUR = False

    def __init__(self, features: int):
        super().__init__()
        self.features = integer("ScaledBias", "features", features)
        self.weight = self.add_param("weight", (self.features, self.features))
        self.s = self.add_param("s", (self.features,))

    def reset_parameters(self, rng):
        self.weight.value[...] = rng.uniform(-1, 1, self.weight.value.shape)
        self.s.value[...] = rng.uniform(-1, 1, self.s.value.shape)

    def input_shape(self):
        return (self.features,)

    def output_shape(self, input_shape):
        return (self.features,)

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x @ self.weight.value.T + 0.001 * self.s.value
        self._x = x
        return y

    def _backward(self, dl_dy):
        self.weight.grad[...] += dl_dy.T @ self._x
        ds = 0.001 * dl_dy.sum(axis=0)
        if self.DETOUR and ds.dtype == np.float32:  # the bug: float16 on the way
            ds = ds.astype(np.float16).astype(np.float32)
        self.s.grad[...] += ds
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", dl_dy.shape)
        dx[...] = dl_dy @ self.weight.value
        return dx


class Float16Detour(ScaledBias):
    DETOUR = True


def test_float32_check_catches_a_float16_detour_in_a_gradient_far_below_the_others():
    """docs/plugins.md says the float32 check makes 'a float16 detour fail'. Since 27aa15f,
    every parameter gradient's tolerance is at least 64 * eps32 * the largest gradient of
    any parameter, so a detour in a gradient 1000 times smaller than another passes.
    Reference: float16 rounding of such a gradient (numpy) is far past float32 rounding."""
    ds = np.float32(0.00337487)  # the size of s's gradient in the kit's example
    float16_error = abs(float(ds.astype(np.float16)) - float(ds))
    assert float16_error > 64 * np.finfo(np.float32).eps * float(ds)  # float16, not float32
    testing.check_all(ScaledBias)  # the correct layer passes
    with pytest.raises(testing.ConformanceError, match="gradient for s"):
        testing.check_all(Float16Detour)


# ---- 2. nested subcommand: its unknown option is its parent's error -------------------

def test_an_unknown_option_of_a_nested_command_is_that_commands_error(capsys):
    """README: an unknown option is reported as the command's error, with its usage.
    `nnumba experiment run perceptron --bogus` reports 'nnumba experiment: error:' and
    'usage: nnumba experiment [-h] ACTION ...', which does not list the options of
    'run'. Reference: argparse's own error of the 'run' parser."""
    from nnumba.cli import build_parser, main
    run_parser = build_parser()
    for name in ("experiment", "run"):
        run_parser = next(a for a in run_parser._actions
                          if isinstance(a, argparse._SubParsersAction)).choices[name]
    with pytest.raises(SystemExit):
        run_parser.parse_args(["perceptron", "--bogus"])
    want = capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["experiment", "run", "perceptron", "--bogus"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err == want, err


# ---- 3. an unknown option before the command: blamed on the command ------------------

def test_an_unknown_option_before_the_command_is_the_top_level_error(capsys):
    """`nnumba --bogus info` is reported as 'nnumba info: error:' with info's usage,
    although --bogus came where the top-level options (--debug) go. Reference: the
    top-level parser's own answer to those arguments (parse_args)."""
    from nnumba.cli import build_parser, main
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--bogus", "info"])
    want = capsys.readouterr().err
    assert "nnumba: error: unrecognized arguments: --bogus" in want
    with pytest.raises(SystemExit) as info:
        main(["--bogus", "info"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "nnumba: error: unrecognized arguments: --bogus" in err, err
