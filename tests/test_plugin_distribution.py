"""The example plugin distribution in plugins/ is found through its entry point."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("nnumba_extra_activations",
                    reason="pip install -e plugins/nnumba-extra-activations (CI does)")


def plugins_report(env=None):
    out = subprocess.run([sys.executable, "-m", "nnumba", "plugins", "--json"], check=True,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout)


def test_nnumba_plugins_lists_the_plugin_and_its_distribution():
    layers = {e["name"]: e for e in plugins_report()["layer"]}
    for name in ("LeakyReLU", "Softplus"):
        assert layers[name]["plugin"] == "extra_activations"
        assert layers[name]["distribution"].startswith("nnumba-extra-activations")


def test_autoload_switch_hides_it():
    names = {e["name"] for e in plugins_report({"NNUMBA_DISABLE_PLUGIN_AUTOLOAD": "1"})["layer"]}
    assert "LeakyReLU" not in names and "Linear" in names


def test_its_layers_pass_the_conformance_kit_and_train():
    import numpy as np

    import nnumba
    from nnumba import testing
    from nnumba.models.mlp import mlp
    for name in ("LeakyReLU", "Softplus"):
        testing.check_all(nnumba.get_layer(name))
    spec = mlp(inputs=4, hidden=8, classes=2, activation="LeakyReLU")
    model = nnumba.Sequential.from_spec(spec, seed=0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    history = nnumba.SGDTrainer(model, nnumba.get_loss("CrossEntropy")(), lr=0.2,
                                momentum=0.9, batch_size=16).fit(x, y, epochs=30)
    assert history.epochs[-1]["train_loss"] < 0.5 * history.epochs[0]["train_loss"]
