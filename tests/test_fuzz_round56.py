"""Fuzz round 56 (the file readers, mutated files nnumba wrote): a model of many
layers, from a file or a spec, builds and runs in time linear in its depth (the
model looked each step up among its layers one by one: 20,000 layers took 14 s to
load, 100,000 over a minute, a 2.6 MB spec).  Reference: a stack of Identity
layers computes the Linear before it, in closed form."""
import numpy as np

import nnumba


def test_a_deep_model_from_a_file_builds_runs_and_round_trips(tmp_path):
    depth = 5_000
    spec = [{"type": "Linear", "in_features": 3, "out_features": 2}] + \
        [{"type": "Identity"}] * depth
    model = nnumba.build(spec, seed=0)
    assert len(model.layers) == depth + 1
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    w, b = model.layers[0].weight.value, model.layers[0].bias.value
    np.testing.assert_allclose(model.predict(x), x @ w.T + b, rtol=1e-6)
    path = nnumba.save(model, tmp_path / "deep.npz")
    again = nnumba.load_model(path)
    assert again.spec() == model.spec()
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert all(layer.container() is again for layer in again.layers)  # each one adopted


def test_copies_of_a_deep_model_compute_what_it_does():
    """(review 45) copy(), deepcopy and unpickling went through the same scan per step
    in __setstate__.  Reference: the Linear before the Identity stack, in closed form."""
    import pickle
    model = nnumba.build([{"type": "Linear", "in_features": 3, "out_features": 2}] +
                         [{"type": "Identity"}] * 5_000, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    w, b = model.layers[0].weight.value, model.layers[0].bias.value
    for twin in (model.copy(), pickle.loads(pickle.dumps(model))):
        np.testing.assert_allclose(twin.predict(x), x @ w.T + b, rtol=1e-6)
        assert all(layer.container() is twin for layer in twin.layers)
