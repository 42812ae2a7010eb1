"""Plugin trial 12 (a LeakyReLU, a Huber loss and a model, written from the docs):
what a missing plugin's qualified name says, and the message of a model loaded
without its plugin."""
import json

import numpy as np
import pytest

import nnumba
from nnumba import io
from nnumba.errors import RegistryError, WeightsError
from nnumba.layers import Linear
from nnumba.registry import get_registry


def test_a_qualified_name_of_a_plugin_not_loaded_says_so_without_a_wrong_hint():
    # it said "did you mean 'LeakyReLU'?": another distribution's class, other arguments
    with pytest.raises(RegistryError) as err:
        get_registry().entry("layer", "p12:LeakyReLU")
    assert "nothing loaded registers under 'p12'" in str(err.value)
    assert "did you mean" not in str(err.value)


def test_a_qualified_name_with_a_distribution_or_package_prefix_names_the_real_one():
    # nnumba:ReLU was told to install a distribution; the built-in is reachable by its
    # module's name
    with pytest.raises(RegistryError) as err:
        get_registry().entry("layer", "nnumba:ReLU")
    assert "'ReLU' is registered as 'nnumba.layers.activation:ReLU'" in str(err.value)
    assert get_registry().entry("layer", "nnumba.layers.activation:ReLU").name == "ReLU"


def test_a_model_loaded_without_its_plugin_has_no_stray_punctuation(tmp_path):
    # "...XorProduct.; its layers came from ...": the saved spec edited to name a layer
    # of a distribution that is not installed, as after pip uninstall
    path = io.save(nnumba.Sequential(Linear(3, 2), seed=0), tmp_path / "m.npz")
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__nnumba_spec__"]))
    meta["spec"] = [{"type": "GoneLayer"}]
    meta["distributions"] = {"GoneLayer": "nnumba-gone 0.1.0"}
    arrays["__nnumba_spec__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(WeightsError) as err:
        nnumba.load_model(path)
    assert "its layers came from nnumba-gone 0.1.0 (GoneLayer)" in str(err.value)
    assert ".;" not in str(err.value)
