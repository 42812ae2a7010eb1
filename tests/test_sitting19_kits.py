"""Kit checks added in the nineteenth sitting: check_dataset warns about a class that
has no training sample (a model trained on the set never learns it, silently)."""
import warnings

import numpy as np
import pytest

from nnumba import testing
from nnumba.data.datasets import Dataset


def _three_classes(y_train):
    def loader(root=None, download=False):
        if root is not None:
            raise ValueError("generated: takes no folder")
        rng = np.random.default_rng(0)
        return Dataset("three", rng.normal(size=(len(y_train), 2)).astype(np.float32),
                       np.asarray(y_train, np.int64), rng.normal(size=(3, 2)).astype(np.float32),
                       np.arange(3, dtype=np.int64), ["a", "b", "c"], "three classes")
    return loader


def test_check_dataset_warns_about_a_class_without_training_samples():
    with pytest.warns(UserWarning, match="no training sample of class 'c'"):
        testing.check_dataset(_three_classes([0, 1, 0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every class present: no warning
        testing.check_dataset(_three_classes([0, 1, 2, 1]))


@pytest.mark.parametrize("attributes,match", [
    ({"devices": "cuda"}, "devices must be None or a tuple of device names"),
    ({"devices": 42}, "devices must be None or a tuple"),
    ({"devices": {"cpu": 42}}, "devices must be None, a tuple of device names, or"),
    ({"has_gradient": "no"}, "has_gradient must be True or False"),
    ({"output_is_view": 1}, "output_is_view must be True or False"),
    ({"kept_for_backward": "_x"}, "kept_for_backward must be a tuple of attribute names"),
])
def test_a_layer_class_with_a_wrong_attribute_is_refused_as_it_is_defined(attributes, match):
    # devices = "cuda" was read as the letters of a string, has_gradient = "no" as true
    from nnumba import Layer
    from nnumba.errors import ContractError
    with pytest.raises(ContractError, match=match):
        type("Wrong", (Layer,), attributes)


def test_the_attributes_layers_declare_are_taken():
    from nnumba import Layer
    for attributes in ({"devices": ("cpu", "cuda")}, {"devices": ["cpu"]}, {"devices": None},
                       {"devices": {"cpu": "numpy"}}, {"has_gradient": False},
                       {"kept_for_backward": ()}, {"kept_for_backward": ["_x"]}):
        type("Right", (Layer,), attributes)


@pytest.mark.parametrize("size,batch,advice", [
    (10**9, 1, "that is for one sample: make the layer smaller"),
    (10**5, 3, "one sample's share alone needs 40.0 GB"),
    (4 * 10**3, 10**5, "use smaller batches"),
])
def test_an_array_too_large_says_whether_smaller_batches_would_fit(size, batch, advice):
    # "use smaller batches" was the advice for an output that one sample alone overflows
    import numpy as np
    from nnumba.errors import TooLargeError
    from nnumba.layers import AdaptiveAvgPool2d
    x = np.broadcast_to(np.float32(1), (batch, 1, 2, 2))  # no memory of its own
    with pytest.raises(TooLargeError, match=advice):
        AdaptiveAvgPool2d(size).forward(x)


def test_a_state_dict_missing_a_tensor_says_which_name_is_absent():
    # it reported only the shape clash the missing bias shifted the next tensor into
    import nnumba
    from nnumba.errors import WeightsError
    from nnumba.torch_import import load_torch_weights
    model = nnumba.build("mlp", seed=0)
    tensors = {name: p.value.copy() for name, p in model.params() if name != "1.bias"}
    with pytest.raises(WeightsError, match="it holds 3 tensors, the model has 4 parameters; "
                                           "none is named '1.bias'"):
        load_torch_weights(model, tensors)


def test_a_complex_tensor_is_refused_for_what_it_is():
    import numpy as np
    import nnumba
    from nnumba.errors import WeightsError
    from nnumba.torch_import import load_torch_weights
    model = nnumba.build("mlp", seed=0)
    tensors = {name: p.value.astype(np.complex64) for name, p in model.params()}
    with pytest.raises(WeightsError, match=r"complex64.*nnumba's parameters are real"):
        load_torch_weights(model, tensors)


def test_numpy_booleans_and_properties_are_taken_as_layer_flags():
    import numpy as np
    from nnumba import Layer
    type("NumpyFlag", (Layer,), {"has_gradient": np.False_})
    type("PropertyFlag", (Layer,), {"output_is_view": property(lambda self: True)})


def test_under_mpi_sigterm_ends_a_rank_at_once():
    # a rank blocked in a collective never returns to Python, where the handler would run
    import signal
    from nnumba.commands.train_report import sigterm_under_mpi
    from nnumba.errors import raise_terminated
    before = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        sigterm_under_mpi(None)  # no MPI: SIGTERM saves the weights, as Ctrl-C
        assert signal.getsignal(signal.SIGTERM) is raise_terminated
        sigterm_under_mpi(object())
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        signal.signal(signal.SIGTERM, handler := (lambda *_: None))
        sigterm_under_mpi(object())  # a host program's own handler stays
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.parametrize("name", ["gpu", "GPU"])
def test_device_gpu_points_to_cuda(name):
    # difflib's nearest registered name to "gpu" is "cpu": following that hint trained there
    import nnumba
    from nnumba.errors import RegistryError
    with pytest.raises(RegistryError, match="nnumba's NVIDIA GPU device is 'cuda'"):
        nnumba.build("mlp").to(name)
