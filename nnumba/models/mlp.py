"""The lecture's multi-layer perceptron and its one-layer special case, the
(multinomial) logistic regression."""
import numbers

from ..errors import SpecError
from ..hookspecs import hookimpl
from ..layers.validation import show
from .named import NamedModel


def mlp(inputs: int = 784, hidden=(256,), classes: int = 10, activation: str = "ReLU"):
    """The lecture's MLP: Flatten, then Linear + activation per hidden layer, then Linear."""
    if isinstance(hidden, (list, tuple)):
        hidden = list(hidden)
    elif isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = [hidden]
    else:  # each width is checked by its Linear layer
        raise SpecError(f"mlp: hidden must be a width or a list of widths, got {show(hidden)}")
    _check_activation(activation)
    spec, width = [{"type": "Flatten"}], inputs
    for h in hidden:
        spec += [{"type": "Linear", "in_features": width, "out_features": h},
                 {"type": activation}]
        width = h
    return spec + [{"type": "Linear", "in_features": width, "out_features": classes}]


def is_activation(layer_type) -> bool:
    """Whether a layer class is an activation: it builds with no arguments and then
    has no parameters, takes any input shape and keeps it, and draws nothing at
    random (Dropout). The registry does not mark activations, so this is the test;
    Flatten (changes the shape), Dropout, pooling and Linear fail it."""
    from ..layers.parameters import shapes_only
    try:
        with shapes_only():
            layer = layer_type()
        return (not layer.params() and layer.random_generator() is None
                and layer.input_shape() is None
                and all(tuple(layer.output_shape(s)) == s for s in ((5,), (2, 3, 4))))
    except Exception:  # noqa: BLE001 - a plugin layer that needs arguments, or fails
        return False


def _check_activation(name):
    """Refuse an activation option that names a registered layer which is not an
    activation (Flatten, Dropout): the MLP would have no nonlinearity. A name that
    is not registered is left to the spec's own check, which suggests names."""
    from ..registry import get_layer, get_registry
    if not isinstance(name, str):
        raise SpecError(f"mlp: activation must be the name of an activation layer, got "
                        f"{show(name)}")
    try:
        layer_type = get_layer(name)
    except LookupError:
        return
    if not is_activation(layer_type):
        accepted = [n for n, e in get_registry().all_entries("layer") if is_activation(e.obj)]
        raise SpecError(f"mlp: activation must name an activation layer "
                        f"({', '.join(accepted)}), got {name!r}, which is not one")


def logreg(inputs: int = 784, classes: int = 10):
    """Multinomial logistic regression: one Linear layer on the flattened input."""
    return mlp(inputs, hidden=(), classes=classes)


def _flat_input(inputs: int = 784, **_):
    # 784 inputs are an MNIST image; any other count, a flat vector.
    return (1, 28, 28) if inputs == 784 else (int(inputs),)


nnumba_register_models = hookimpl(lambda: {
    "mlp": NamedModel(mlp, _flat_input,
                      {"epochs": 20, "lr": 0.1, "momentum": 0.9, "batch_size": 100}),
    "logreg": NamedModel(logreg, _flat_input,
                         {"epochs": 20, "lr": 0.05, "momentum": 0.9, "batch_size": 100}),
})
