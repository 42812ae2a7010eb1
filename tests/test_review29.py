"""Review 29: a failed save after Ctrl-C is reported, not read as the interrupt; the
kit's size-1 pass skips a size the layer's forward refuses and reports an output_shape
that raises a plain error; CSV class names such as "2_3" load as names, and a field of
thousands of digits is no raw ValueError."""
import csv

import numpy as np
import pytest

from nnumba import Layer, testing
from nnumba.errors import ShapeError
from nnumba.layers.validation import integer


# ---- 1. a real error raised while an interrupt is handled is swallowed as "interrupted" -------
def _interrupt_after(monkeypatch, before_raise):
    from nnumba.train.base import Trainer
    step = Trainer._step

    def interrupted_step(self):
        if self.updates + 1 == 5:
            before_raise()
            raise KeyboardInterrupt
        step(self)
    monkeypatch.setattr(Trainer, "_step", interrupted_step)


ARGS = ["train", "--train-size", "300", "--test-size", "50", "--batch-size", "100",
        "--seed", "3", "--no-progress", "--epochs", "4"]


def test_a_save_that_fails_after_ctrl_c_is_reported_not_swallowed(tmp_path, monkeypatch, capsys):
    """`nnumba train --save d/m.npz`, Ctrl-C, and the save of the weights so far fails (d
    became a file meanwhile: disk full, a folder removed, ... read the same).  interrupted()
    saves inside `except KeyboardInterrupt:` (commands/train.py:370-373), so the SaveError's
    __context__ is the KeyboardInterrupt; caused_by_interrupt (errors.py:81-90) follows
    __context__ and cli._run (cli.py:154-155) turns it into a bare "interrupted", status 130:
    the user asked for the weights, gets no error, and they are not there.  At 4746f0e the
    command said "error: cannot save weights to ...", status 2.
    Reference: the same save failure without Ctrl-C (the finish path) is status 2 and
    names the save."""
    from nnumba.cli import main
    folder = tmp_path / "d"

    def break_folder():
        folder.rmdir() if folder.is_dir() else None
        folder.write_text("")  # the folder is now a file: the save must fail

    # the reference: the same failure at the end of a run that is not interrupted
    from nnumba.commands import train_report
    finish = train_report.finish

    def finish_after_break(*a, **k):
        break_folder()
        return finish(*a, **k)
    with monkeypatch.context() as m:
        m.setattr(train_report, "finish", finish_after_break)
        import nnumba.commands.train as train_cmd
        m.setattr(train_cmd, "finish", finish_after_break, raising=False)
        reference = main(ARGS + ["--save", str(folder / "m.npz")])
    ref_err = capsys.readouterr().err
    assert reference == 2 and "cannot save" in ref_err, (reference, ref_err)

    folder.unlink()
    _interrupt_after(monkeypatch, break_folder)
    status = main(ARGS + ["--save", str(folder / "m.npz")])
    err = capsys.readouterr().err
    assert status == reference, (status, err)
    assert "cannot save" in err, err


def test_caused_by_interrupt_is_the_wrapped_interrupt_not_one_being_handled():
    """Python 3.11 wraps Ctrl-C in a class body as RuntimeError *caused by* (__cause__) the
    KeyboardInterrupt; an error raised while code handles an interrupt (its __context__)
    is a real error of that code.  Reference: the two chains Python builds."""
    from nnumba.errors import SaveError, caused_by_interrupt
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise RuntimeError("Error calling __set_name__") from stop
    except RuntimeError as exc:
        wrapped = exc
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SaveError("cannot save weights to d/m.npz")  # (the handler's own failure)
    except SaveError as exc:
        handled = exc
    assert wrapped.__cause__ is not None and handled.__cause__ is None
    assert caused_by_interrupt(wrapped)
    assert not caused_by_interrupt(handled)


# ---- 2. the kit's size-1 pass fails a correct layer that refuses that size in forward ----------
class ChannelBatchNorm(Layer):
    """PyTorch's BatchNorm1d on (N, C, L): statistics over N and L per channel; as PyTorch,
    it refuses, in training, a batch with one value per channel (which output_shape,
    knowing no batch size, cannot say)."""
    examples = [({"channels": 3}, (1, 3, 6))]
    devices = ("cpu",)
    kept_for_backward = ("_xhat", "_inv_std", "_batch_stats")

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.channels = integer("ChannelBatchNorm", "channels", channels)
        self.eps, self.momentum = eps, momentum
        self.weight = self.add_param("weight", (self.channels,))
        self.bias = self.add_param("bias", (self.channels,))
        self.running_mean = self.add_param("running_mean", (self.channels,), trainable=False)
        self.running_var = self.add_param("running_var", (self.channels,), trainable=False)

    def config(self):
        return {"channels": self.channels, "eps": self.eps, "momentum": self.momentum}

    def reset_parameters(self, rng):
        self.weight.value[...] = 1
        self.bias.value[...] = 0
        self.running_mean.value[...] = 0
        self.running_var.value[...] = 1

    def input_shape(self):
        return (self.channels, None)

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def _forward(self, x):
        dt, n = x.dtype, x.shape[0] * x.shape[2]
        if self.training:
            if n < 2:
                raise ShapeError(f"{self.label}: expected more than 1 value per channel when "
                                 f"training, got input of shape {x.shape}")
            mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
            m = dt.type(self.momentum)
            self.running_mean.value[...] = (1 - m) * self.running_mean.value + m * mean
            self.running_var.value[...] = (1 - m) * self.running_var.value + m * var * (n / (n - 1))
        else:
            mean, var = self.running_mean.value, self.running_var.value
        inv_std = (1.0 / np.sqrt(var + dt.type(self.eps))).astype(dt)
        xhat = ((x - mean[:, None]) * inv_std[:, None]).astype(dt)
        y = self._buffer("y", x.shape)
        y[...] = xhat * self.weight.value[:, None] + self.bias.value[:, None]
        self._xhat, self._inv_std, self._batch_stats = xhat, inv_std, self.training
        return y

    def _backward(self, dl_dy):
        xhat, inv_std = self._xhat, self._inv_std
        self.weight.grad[...] += (dl_dy * xhat).sum(axis=(0, 2))
        self.bias.grad[...] += dl_dy.sum(axis=(0, 2))
        if not self.needs_input_grad:
            return None
        g = dl_dy * self.weight.value[:, None]
        dx = self._buffer("dx", dl_dy.shape)
        if self._batch_stats:
            n = dl_dy.shape[0] * dl_dy.shape[2]
            dx[...] = inv_std[:, None] / n * (n * g - g.sum(axis=(0, 2))[:, None]
                                              - xhat * (g * xhat).sum(axis=(0, 2))[:, None])
        else:
            dx[...] = g * inv_std[:, None]
        return dx


def test_size_one_pass_skips_a_size_the_layer_refuses_in_its_forward():
    """The layer computes PyTorch's BatchNorm1d and, as PyTorch, refuses (1, 3, 1) in
    training.  check_layer passes on its one example; check_all at HEAD derives (1, 3, 1)
    (testing/layers.py:346-348; _size_one, 352-382, asks output_shape only) and fails it
    with "refused the example input of shape (1, 3, 1) ... an example gives the input
    shape ...", an example its author never wrote.  At 4746f0e check_all passed.
    Reference: torch's BatchNorm1d gives the same output on the example and refuses
    the size-1 input too."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((1, 3, 6))
    bn = torch.nn.BatchNorm1d(3).double()
    layer = ChannelBatchNorm(3).astype("float64")
    np.testing.assert_allclose(layer.forward(x), bn(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError):
        bn(torch.zeros(1, 3, 1, dtype=torch.float64))
    testing.check_layer(ChannelBatchNorm, {"channels": 3}, (1, 3, 6))
    testing.check_all(ChannelBatchNorm)


class Diff(Layer):
    """First difference along the last axis: (C, L) -> (C, L - 1), L >= 2."""
    examples = [({}, (2, 3, 5))]
    devices = ("cpu",)

    def input_shape(self):
        return (None, None)

    def output_shape(self, s):
        if s[1] < 2:
            raise ValueError(f"Diff: needs 2 or more values, got {s[1]}")
        return (s[0], s[1] - 1)

    def _forward(self, x):
        y = self._buffer("y", x.shape[:2] + (x.shape[2] - 1,))
        y[...] = x[:, :, 1:] - x[:, :, :-1]
        return y

    def _backward(self, g):
        dx = self._buffer("dx", g.shape[:2] + (g.shape[2] + 1,), zero=True)
        dx[:, :, 1:] += g
        dx[:, :, :-1] -= g
        return dx


def test_size_one_pass_reports_an_output_shape_error_as_a_conformance_error():
    """_size_one catches NnumbaError only (testing/layers.py:373): an output_shape that
    refuses L = 1 with a plain ValueError escapes check_all raw (at 4746f0e check_all
    passed this layer); the kit reports the author's exceptions as ConformanceError
    (check_layer's _raised).  Reference: np.diff, which the layer computes."""
    x = np.random.default_rng(1).standard_normal((2, 3, 5))
    np.testing.assert_allclose(Diff().astype("float64").forward(x), np.diff(x, axis=2))
    try:
        testing.check_all(Diff)
    except testing.ConformanceError:
        pass  # (either passing, or a ConformanceError naming output_shape, is right)


# ---- 3. CSV: class names with digit_digit are refused as numbers --------------------------------
def test_csv_class_names_that_include_an_underscored_number_load_as_names(tmp_path):
    """A label column of class names ('cat', '2_3'): the labels are names (not all of them
    numbers), so nothing reads '2_3' as 23.  At 4746f0e it loaded; at HEAD
    _no_underscored_numbers (data/csv_table.py:143-158) checks every field, the label
    column of names included, and refuses it "which Python reads as 23".
    Reference: the csv module's reading of the label column."""
    from nnumba.data import load_arrays
    text = "a,b,label\n1,2,cat\n3,4,2_3\n5,6,cat\n7,8,2_3\n"
    path = tmp_path / "t.csv"
    path.write_text(text)
    names = sorted({row["label"] for row in csv.DictReader(text.splitlines())})
    data = load_arrays(path, test_fraction=0.5)
    assert sorted(data.classes) == names


def test_csv_integer_with_many_leading_zeros_is_read_not_a_raw_valueerror(tmp_path):
    """'000...0001' (5,001 digits) is the number 1, which float32 holds exactly; another
    field of 1e30 sends _numbers to _no_large_integers (csv_table.py:169-177), whose int()
    passes Python's 4,300-digit limit: a raw ValueError "Exceeds the limit (4300 digits)"
    naming neither file nor line (at 4746f0e the file loaded).  Reference: float()."""
    from nnumba.data import load_arrays
    ones = "0" * 5000 + "1"
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,label\n{ones},1e30,0\n3,4,1\n5,6,0\n7,8,1\n")
    data = load_arrays(path, test_fraction=0.5)
    x = np.concatenate([data.x_train, data.x_test])
    assert np.float32(float(ones)) in x[:, 0]
