"""Fuzz round 5 (the command line, files and plugins from the outside): each test
fails on the code before its fix."""
import json

import numpy as np
import pytest

import nnumba
from nnumba.cli import main
from nnumba.errors import SaveError


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _data(path, n=30):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.random((n, 4)).astype("f4"), y_train=np.arange(n) % 2)
    return path


def test_save_never_replaces_a_file_that_is_not_nnumba_weights(tmp_path, capsys):
    data = _data(tmp_path / "mydata.npz")
    before = data.read_bytes()
    for name in ("mydata", "mydata.npz"):  # --save naming the --data file lost the data set
        code, _, err = _run(capsys, "train", "--data", data, "--epochs", 1, "--save",
                            tmp_path / name)
        assert code == 2 and "is not an nnumba weights file; refusing to replace it" in err
        assert data.read_bytes() == before
    with pytest.raises(SaveError, match="not an nnumba weights file"):
        nnumba.save(nnumba.build("logreg", inputs=4, classes=2), data)
    # weights saved before are replaced, as a user re-running a script expects
    weights = tmp_path / "w.npz"
    nnumba.save(nnumba.build("logreg", inputs=4, classes=2), weights)
    code, _, _ = _run(capsys, "train", "--data", data, "--epochs", 1, "--model", "logreg",
                      "--save", weights)
    assert code == 0 and nnumba.load_model(weights).num_params() == 4 * 2 + 2


def test_a_byte_order_mark_is_no_data(tmp_path):
    from nnumba.commands.classify import load_labels
    from nnumba.data import load_arrays
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(6))
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text(rows)
    bom.write_bytes(b"\xef\xbb\xbf" + rows.encode())  # Excel's "CSV UTF-8"
    a, b = load_arrays(plain, test_fraction=0.5), load_arrays(bom, test_fraction=0.5)
    assert len(b.x_train) + len(b.x_test) == 6  # the first sample was taken for a header
    np.testing.assert_array_equal(a.x_train, b.x_train)
    labels = tmp_path / "labels.json"
    labels.write_bytes(b"\xef\xbb\xbf" + json.dumps(["cat", "dog"]).encode())
    assert load_labels(labels) == {0: "cat", 1: "dog"}  # was one class named by the JSON
    spec = tmp_path / "net.json"
    spec.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"type": "Linear", "in_features": 2,
                                                     "out_features": 2}]).encode())
    from nnumba.summary import summarize
    assert summarize(str(spec), (2,)).params == 6


def test_a_label_column_index_is_never_matched_against_the_first_data_row(tmp_path):
    from nnumba.data import load_arrays
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    rows = [[7, 2, 0]] + [[int(rng.integers(3, 9)), int(rng.integers(3, 9)), i % 2]
                          for i in range(1, 40)]
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    for column in (2, "2", -1):
        data = load_arrays(path, label_column=column, test_fraction=0.25)
        assert len(data.x_train) + len(data.x_test) == 40 and len(data.classes) == 2
    named = tmp_path / "named.csv"  # with a header, a name is a name
    named.write_text("a,2,label\n" + "".join(f"{i},{i % 2},{i % 3}\n" for i in range(30)))
    assert len(load_arrays(named, label_column="2", test_fraction=0.2).classes) == 2


@pytest.mark.parametrize("extra", [("--trainer", "perceptron"), ("--loss", "Hinge")])
def test_two_classes_need_training_samples_of_each(capsys, extra):
    # the first 3 samples of the embedded set hold no 5: it "converged" on class 0 alone
    code, _, err = _run(capsys, "train", "--train-size", 3, "--classes", "0,5", "--epochs", 1,
                        *extra)
    assert code == 2 and "class 5 has no training samples" in err


def test_a_safetensors_file_whose_header_length_starts_with_0x80_is_read(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    import struct

    from nnumba.torch_import import read_state_dict
    rng = np.random.default_rng(0)
    tensors = {"1.weight": rng.standard_normal((5, 48)).astype(np.float32),
               "1.bias": np.zeros(5, np.float32)}
    path = tmp_path / "a.safetensors"
    safetensors.save_file(tensors, str(path))
    assert struct.unpack("<Q", path.read_bytes()[:8])[0] & 0xFF == 0x80  # as a pickle starts
    got, ordered = read_state_dict(path)
    assert not ordered and set(got) == set(tensors)
    np.testing.assert_array_equal(got["1.weight"], tensors["1.weight"])


def test_odd_npz_members_are_one_data_file_error(tmp_path):
    import zipfile

    from nnumba.data import load_arrays
    from nnumba.data.arrays import DataFileError
    raw = tmp_path / "raw.npz"  # a member without .npy: numpy hands it over as bytes
    with zipfile.ZipFile(raw, "w") as z:
        z.writestr("x_train", b"123")
        z.writestr("y_train.npy", b"")
    with pytest.raises(DataFileError, match="member .x_train. is not a .npy array"):
        load_arrays(raw)
    names = tmp_path / "names.npz"
    np.savez(names, x_train=np.zeros((4, 2), "f4"), y_train=np.array([b"\xff", b"a"] * 2))
    with pytest.raises(DataFileError, match="y_train holds byte strings that are not ASCII"):
        load_arrays(names)
    ascii_names = tmp_path / "ascii.npz"
    np.savez(ascii_names, x_train=np.zeros((8, 2), "f4"), y_train=np.array([b"b", b"a"] * 4))
    assert load_arrays(ascii_names, test_fraction=0.5).classes == ["a", "b"]


def test_an_encrypted_zip_is_a_file_error_not_a_runtime_error(tmp_path):
    from nnumba.data import load_arrays
    from nnumba.data.arrays import DataFileError
    from nnumba.errors import WeightsError
    for target, path in (("data", _data(tmp_path / "d.npz")),
                         ("weights", nnumba.save(nnumba.build("logreg", inputs=4, classes=2),
                                                 tmp_path / "w.npz"))):
        blob = bytearray(path.read_bytes())
        # set the "encrypted" bit (0x1) of every member's general-purpose flags, in the
        # local headers (PK\3\4, flags at +6) and the central directory (PK\1\2, at +8)
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = blob.find(sig)
            while i >= 0:
                blob[i + at] |= 1
                i = blob.find(sig, i + 4)
        path.write_bytes(bytes(blob))
        if target == "data":
            with pytest.raises(DataFileError, match="encrypted"):
                load_arrays(path)
        else:
            with pytest.raises(WeightsError, match="encrypted"):
                nnumba.load_model(path)


def test_train_with_stderr_closed_prints_one_json_object(tmp_path):
    import os
    import subprocess
    import sys
    # 2>&-, as cron and daemons run commands: sys.stderr is None
    done = subprocess.run(
        f"'{sys.executable}' -m nnumba train --train-size 50 --test-size 20 --epochs 1 "
        f"--json 2>&-", shell=True, capture_output=False, stdout=subprocess.PIPE, text=True,
        cwd=tmp_path, env={**os.environ, "NNUMBA_PRECOMPILE": "0"}, timeout=300)
    assert done.returncode == 0
    assert json.loads(done.stdout)["epochs"] == 1  # the notes went nowhere, not to stdout


class _ExitingEntryPoint:
    """An installed plugin whose import calls sys.exit (it ended every command)."""
    name, dist = "exiter", None

    def load(self):
        raise SystemExit(3)


def test_a_plugin_calling_sys_exit_costs_only_itself(monkeypatch):
    import importlib.metadata
    import types

    from nnumba.registry import Registry
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [
        _ExitingEntryPoint()] if kw.get("group") == "nnumba" else real(**kw))
    with pytest.warns(RuntimeWarning, match="'exiter'.*failed to load and was skipped: "
                                            "SystemExit: 3"):
        registry = Registry(autoload=True)
    assert registry.get("layer", "Linear") is not None
    exits = types.SimpleNamespace(nnumba_register_layers=nnumba.hookimpl(
        lambda: (_ for _ in ()).throw(SystemExit(5))))
    with pytest.raises(nnumba.RegistryError, match="nnumba_register_layers raised "
                                                   "SystemExit: 5"):
        nnumba.register_plugin(exits, name="exits-in-hook")


def test_an_error_raised_in_a_plugins_code_names_the_plugin(tmp_path, monkeypatch, capsys):
    import sys
    (tmp_path / "blamed_plugin.py").write_text(
        "import nnumba\n"
        "from nnumba.losses import MSE\n"
        "class Boom(MSE):\n"
        "    def _compute(self, y_hat, y, scale):\n"
        "        raise KeyError('boom')\n"
        "@nnumba.hookimpl\n"
        "def nnumba_register_losses():\n"
        "    return {'Boom': Boom}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import blamed_plugin
    name = nnumba.register_plugin(blamed_plugin, name="blamed")
    try:
        code, _, err = _run(capsys, "train", "--train-size", 50, "--epochs", 1, "--loss", "Boom")
    finally:
        nnumba.unregister_plugin(name)
        sys.modules.pop("blamed_plugin", None)
    assert code == 1
    assert "plugin 'blamed' raised KeyError: 'boom' (at " in err and "blamed_plugin.py:5" in err
    assert "report it to the plugin's authors" in err and "please report it)" not in err


def test_main_puts_pythons_interrupt_handler_back_while_it_runs(monkeypatch):
    import signal

    from nnumba import cli
    before, seen = signal.getsignal(signal.SIGINT), []
    monkeypatch.setattr(cli, "_run", lambda args, debug: seen.append(
        signal.getsignal(signal.SIGINT)) or 0)
    try:
        cli.quiet_interrupt()  # as `import nnumba` does in the nnumba command
        assert cli.main(["info"]) == 0
        assert seen == [signal.default_int_handler]  # Ctrl-C: KeyboardInterrupt, handled
        # and as the interpreter shuts down after it: one line again, no traceback
        assert signal.getsignal(signal.SIGINT) is cli._interrupted
    finally:
        signal.signal(signal.SIGINT, before)


class _FortranGrad(nnumba.Layer):
    """Passes x through; its gradient comes back Fortran-ordered (right shape, dtype)."""

    def _forward(self, x):
        y = self._buffer("y", x.shape)
        y[...] = x
        return y

    def _backward(self, g):
        return np.asfortranarray(g.copy()) if self.needs_input_grad else None


class _MatrixOut(_FortranGrad):
    def _forward(self, x):
        return np.asmatrix(x.copy())

    def _backward(self, g):
        return g.copy() if self.needs_input_grad else None


def test_a_layers_fortran_gradient_or_matrix_output_reaches_no_kernel_as_is():
    from nnumba.layers import Conv2d, Flatten, Linear, ReLU
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 8, 8)).astype(np.float32)
    g = rng.standard_normal((6, 3)).astype(np.float32)
    grads = []
    for middle in (_FortranGrad, None):  # the same model with and without the odd layer
        layers = [Conv2d(2, 2, 1)] + ([middle()] if middle else []) + [Flatten(),
                                                                      Linear(128, 3)]
        m = nnumba.Sequential(*layers, seed=0)
        m.forward(x)
        m.backward(g)  # was a numba TypingError from inside the Conv2d's kernel
        grads.append(m.layers[0].weight.grad.copy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)
    m2 = nnumba.Sequential(Linear(5, 5), _MatrixOut(), ReLU(), Linear(5, 3), seed=0)
    assert type(m2.forward(np.ones((4, 5), np.float32))) is np.ndarray


def test_an_empty_model_name_is_refused(capsys):
    code, _, err = _run(capsys, "train", "--model", "", "--epochs", 1)  # trained the MLP
    assert code == 2 and "--model needs a model name or a spec file, got ''" in err


def test_a_callback_that_evaluates_in_eval_mode_does_not_stop_dropout(tmp_path):
    from nnumba.layers import Dropout, Linear, ReLU
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 4)).astype("f4"), rng.integers(0, 3, 60)
    losses = []
    for callback in ((), [lambda t, row: t.model.eval()]):
        model = nnumba.Sequential(Linear(4, 16), ReLU(), Dropout(0.5), Linear(16, 3), seed=0)
        trainer = SGDTrainer(model, CrossEntropy(), lr=0.1, batch_size=20, seed=0,
                             callbacks=callback)
        losses.append([row["train_loss"] for row in trainer.fit(x, y, epochs=3).epochs])
    assert losses[0] == losses[1]  # the later epochs trained without Dropout before


def test_fit_from_a_callback_and_accuracy_of_labels_out_of_range_are_errors():
    from nnumba.errors import LabelError
    from nnumba.layers import Linear
    from nnumba.losses import CrossEntropy
    from nnumba.train import SGDTrainer
    from nnumba.train.metrics import accuracy
    x, y = np.ones((10, 2), "f4"), np.arange(10) % 2
    trainer = SGDTrainer(nnumba.Sequential(Linear(2, 2), seed=0), CrossEntropy(), lr=0.1,
                         callbacks=[lambda t, row: t.fit(x, y)])
    with pytest.raises(RuntimeError, match="a callback cannot call fit again"):
        trainer.fit(x, y)
    with pytest.raises(LabelError, match=r"labels must be in \[0, 3\)"):
        accuracy(np.zeros((3, 3)), np.array([100, 101, 102]))
    with pytest.raises(nnumba.DTypeError, match="masked"):
        accuracy(np.zeros((2, 3)), np.ma.masked_array([0, 1], mask=[0, 1]))


def test_a_fifo_or_an_endless_file_is_refused_not_read(tmp_path, capsys):
    import os
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # reading it blocked forever
    for args, fragment in ((("summary", fifo), "not a regular file"),
                           (("train", "--model", fifo, "--epochs", 1), "not a regular file"),
                           (("summary", "/dev/zero.json"), "no such"),):
        code, _, err = _run(capsys, *args)
        assert code == 2 and fragment in err.lower(), err
    from nnumba.jsonfile import read_text
    from nnumba.torch_import import read_state_dict
    with pytest.raises(nnumba.errors.JSONFileError, match="not a regular file"):
        read_text("/dev/zero", "model spec")  # never ends
    with pytest.raises(nnumba.WeightsError, match="not a regular file"):
        read_state_dict(fifo)


def test_experiment_out_is_checked_before_anything_runs(capsys):
    code, out, err = _run(capsys, "experiment", "run", "all", "--fast", "--out",
                          "/proc/nope/figures")
    assert code == 2 and "cannot write the figures there" in err
    assert "==" not in out  # no experiment ran (all 23 ran, then it failed)


def test_a_saved_model_is_classified_with_and_trained_on_from(tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    model = nnumba.build("lenet")
    saved = nnumba.save(model, tmp_path / "lenet.npz")
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(tmp_path / "digit.png")
    code, out, _ = _run(capsys, "classify", tmp_path / "digit.png", "--model", saved,
                        "--weights", saved, "--size", "28,28", "--top", 1, "--json")
    assert code == 0
    scores = model.predict(np.full((1, 1, 28, 28), 200 / 255, np.float32))[0]  # [0, 1] pixels
    assert json.loads(out)["top"][0]["index"] == int(scores.argmax())
    # said "unknown model"; then refused; now trains on from the weights
    code, out, err = _run(capsys, "train", "--model", saved, "--epochs", 1, "--train-size", 100,
                          "--test-size", 100, "--no-progress")
    assert code == 0 and "(its weights, trained on)" in out, err


def test_dropout_draws_other_masks_on_each_mpi_rank_and_the_same_again():
    from nnumba.layers import Dropout

    def masks(rank):
        layer = Dropout(0.5, seed=3)
        layer.for_rank(rank, 2)
        return layer.forward(np.ones((4, 50), np.float32)).copy()
    # every rank shares one seed: they dropped the same units of different samples
    assert not np.array_equal(masks(0), masks(1))
    np.testing.assert_array_equal(masks(1), masks(1))
