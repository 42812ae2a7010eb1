"""Plugin trial 46 (losses and data sets from a third-party plugin): resuming with
--loss PLUGIN:NAME after a clash keeps the saved options; --loss of a loss that needs
an option is a clear error; a plugin loss or data set that breaks its contract is the
plugin's bug (status 1, named); per-sample losses of the wrong shape are refused.
Plugins are made inside the tests and registered with the documented ``nnumba.register_plugin`` /
``nnumba.unregister_plugin``; a clash between two third-party plugins (which
``register_plugin`` refuses at once) is made as tests/test_plugin_trial9.py makes it,
as if both were installed."""
import json
import warnings

import numpy as np
import pytest

import nnumba
from nnumba import LabelError, Loss, ShapeError, hookimpl, testing
from nnumba.cli import main
from nnumba.device import to_host
from nnumba.errors import NnumbaError
from nnumba.layers.validation import number
from nnumba.registry import get_registry


class Pin46(Loss):
    """Quantile (pinball) loss at q, per sample the sum (mean under "mean") over K."""

    examples = [({}, (5, 1), "values"), ({"q": 0.9, "reduction": "sum"}, (4, 3), "values")]

    def __init__(self, q: float = 0.5, reduction: str = "mean"):
        super().__init__(reduction)
        self.q = number("Pin46", "q", q, above=0, below=1)

    def config(self):
        return {"q": self.q, **super().config()}

    def _compute(self, y_hat, y, scale):
        p = to_host(y_hat).astype(np.float64)
        t = np.asarray(to_host(y), dtype=np.float64).reshape(p.shape)
        n, k = p.shape[0], p[0].size
        r = (t - p).reshape(n, k)
        elem = np.maximum(self.q * r, (self.q - 1) * r)
        g = np.where(r > 0, -self.q, 1 - self.q)
        if self.reduction == "mean":
            elem, scale = elem / k, scale / k
        return elem.sum(axis=1), self.device.to_device((scale * g).reshape(p.shape).astype(y_hat.dtype))


class WCE46(Loss):
    """Softmax cross-entropy, each sample's loss times its class's weight."""

    target_dtype = "int64"
    examples = [({"weight": [1.0, 2.0, 0.5]}, (5, 3), "classes")]

    def __init__(self, weight, reduction: str = "mean"):   # no default: --loss cannot build it
        super().__init__(reduction)
        self.weight = [float(v) for v in weight]

    def config(self):
        return {"weight": self.weight, **super().config()}

    def _compute(self, y_hat, y, scale):
        z, labels = to_host(y_hat).astype(np.float64), to_host(y)
        n, c = z.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise LabelError(f"WCE46 loss: expected {n} integer class labels, "
                             f"got {labels.dtype} {labels.shape}")
        labels = labels.astype(np.int64)
        w = np.asarray(self.weight)
        if w.shape != (c,):
            raise ShapeError(f"WCE46 loss: {w.size} class weights for {c} classes")
        if labels.min() < 0 or labels.max() >= c:
            raise LabelError(f"WCE46 loss: class labels must be in [0, {c})")
        s = z - z.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        onehot = np.eye(c)[labels]
        wy = w[labels]
        grad = scale * wy[:, None] * (np.exp(logp) - onehot)
        return -wy * logp[np.arange(n), labels], self.device.to_device(grad.astype(y_hat.dtype))


class GradShape46(Pin46):
    """A bug: the gradient one column short."""

    def _compute(self, y_hat, y, scale):
        losses, grad = super()._compute(y_hat, y, scale)
        return losses, np.ascontiguousarray(grad[:, :1])


class ShortLosses46(Pin46):
    """A bug: one per-sample loss short."""

    def _compute(self, y_hat, y, scale):
        losses, grad = super()._compute(y_hat, y, scale)
        return losses[:-1], grad


def _plugin(**hooks):
    class Plugin:
        pass
    for kind, entries in hooks.items():
        setattr(Plugin, f"nnumba_register_{kind}",
                staticmethod(hookimpl((lambda e: lambda: dict(e))(entries))))
    return Plugin


@pytest.fixture
def registered():
    names = []

    def add(name, **hooks):
        nnumba.register_plugin(_plugin(**hooks), name)
        names.append(name)

    yield add
    for name in names:
        nnumba.unregister_plugin(name)


def _installed(plugin, name):
    """As tests/test_plugin_trial9.py: ``plugin`` as an installed entry point gives it,
    its clashes warned about and settled (register_plugin refuses a clash)."""
    registry = get_registry()
    registry.pm.register(plugin, name=name)
    registry._dists[name] = f"nnumba-{name} 1.0"
    registry._cache.clear()


def _uninstalled(name):
    registry = get_registry()
    if registry.pm.has_plugin(name):
        registry.pm.unregister(name=name)
    registry._dists.pop(name, None)
    registry._cache.clear()


def _npz(tmp_path, classes=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.arange(60) % classes
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x[:45], y_train=y[:45], x_test=x[45:], y_test=y[45:])
    return path


def _stored_training(path):
    return json.loads(str(np.load(path)["__nnumba_spec__"]))["training"]


def test_resume_after_a_loss_clash_keeps_the_saved_loss_options(registered, tmp_path, capsys):
    """A run saved with a plugin loss and its option (q=0.9); another plugin installed
    since claims the loss's name, so the bare name is refused and the user names the
    same loss qualified, `--loss t46a:Pin46`. The saved q=0.9 was then dropped silently
    (q=0.5, the default, no word of it); without the clash the same command keeps it, and
    Python's `resume` warns of a loss option that differs."""
    registered("t46a", losses={"Pin46": Pin46})
    data = _npz(tmp_path)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(45, 4)).astype(np.float32)
    model = nnumba.build("mlp", inputs=4, classes=3, hidden=[8], seed=0)
    trainer = nnumba.SGDTrainer(model, Pin46(q=0.9), lr=0.01, batch_size=15, seed=0)
    trainer.fit(x, np.eye(3, dtype=np.float32)[np.arange(45) % 3], epochs=1)
    saved = nnumba.save(model, tmp_path / "pin.npz", classes=["0", "1", "2"], training=trainer)
    assert _stored_training(saved)["loss_options"]["q"] == 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _installed(_plugin(losses={"Pin46": type("Pin46", (Pin46,), {})}), "t46b")
        try:
            rc = main(["train", "--model", str(saved), "--data", str(data), "--epochs", "1",
                       "--loss", "t46a:Pin46", "--no-progress", "--save", str(tmp_path / "on.npz")])
        finally:
            _uninstalled("t46b")
    out = capsys.readouterr()
    err = out.out + out.err
    assert rc == 0, err
    kept = _stored_training(tmp_path / "on.npz")["loss_options"]["q"] == 0.9
    assert kept or "0.9" in err, ("the saved loss option q=0.9 was dropped without a word: "
                                  f"{_stored_training(tmp_path / 'on.npz')['loss_options']}")


def test_cli_loss_that_needs_an_option_is_a_clear_error(registered, tmp_path, capsys):
    """`check_loss` passes a loss whose option has no default (the kit builds it from its
    examples); `nnumba train --loss` builds losses with their defaults and crashed with
    'TypeError: ... missing 1 required positional argument: 'weight' (unexpected: ...
    please report it)', status 1, blaming nnumba."""
    testing.check_loss(WCE46)
    registered("t46w", losses={"WCE46": WCE46})
    rc = main(["train", "--data", str(_npz(tmp_path)), "--loss", "WCE46", "--epochs", "1",
               "--no-progress"])
    err = capsys.readouterr().err
    assert "please report it" not in err and "TypeError" not in err, err
    assert "WCE46" in err and "weight" in err, err
    assert rc == 2, err


def test_cli_names_the_plugin_whose_loss_breaks_its_contract(registered, tmp_path, capsys):
    """A plugin loss returning a gradient of the wrong shape: Loss.forward raises
    nnumba's ContractError (good), but `nnumba train` printed it with status 2 (what
    the user can fix) and without the plugin's name; the README gives status 1 for a
    plugin's bug, as a loss that raises gets ("plugin 't46g' raised ...")."""
    registered("t46g", losses={"GradShape46": GradShape46})
    rc = main(["train", "--data", str(_npz(tmp_path)), "--loss", "GradShape46",
               "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "t46g" in err, err


def test_per_sample_losses_of_the_wrong_length_are_refused_at_run_time():
    """The gradient's shape, dtype and device are checked on every call (a ContractError);
    the per-sample losses are not: one short, the loss came out silently wrong (the
    mean of N-1 losses scaled by 1/N), in training as in Loss.forward."""
    rng = np.random.default_rng(0)
    y_hat, y = rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    reference = np.maximum(0.5 * (y - y_hat), -0.5 * (y - y_hat)).mean()
    assert Pin46().forward(y_hat, y) == pytest.approx(reference)
    with pytest.raises(NnumbaError):
        value = ShortLosses46().forward(y_hat, y)
        assert value == pytest.approx(reference), f"silently {value}, not {reference}"


@pytest.mark.parametrize("broken, status, said", [
    ("none", 1, "the loader returned a NoneType"),   # its bug: status 1, as a raising loader
    ("float64", 1, "x_train is float64"),
    ("nan", 2, "x_train holds NaN"),                 # maybe the data it read: the user's
])
def test_cli_a_plugin_data_set_of_the_wrong_kind_is_the_plugins_bug(registered, capsys, broken,
                                                                   status, said):
    """A loader that returned None or float64 inputs was status 2, "what the user can
    fix", while the same loader raising was status 1, "a bug in plugin ..."; arrays of
    the documented kind whose values are wrong (NaN) may be the data's fault: 2."""
    def tiles(root=None, download=False):
        if broken == "none":
            return None
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(30, 2, 8, 8)).astype(np.float64 if broken == "float64"
                                                      else np.float32)
        x[3, 1, 2, 2] = np.nan if broken == "nan" else x[3, 1, 2, 2]
        y = np.arange(30) % 3
        return nnumba.data.Dataset("tiles46", x[:20], y[:20], x[20:], y[20:],
                                   classes=["a", "b", "c"], description="")

    registered("t46d", datasets={"tiles46": tiles})
    rc = main(["train", "--dataset", "tiles46", "--epochs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert "t46d" in err and said in err, err
    assert rc == status, err
    assert ("a bug in plugin 't46d'" in err) == (status == 1), err
