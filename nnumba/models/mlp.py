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
    spec, width = [{"type": "Flatten"}], inputs
    for h in hidden:
        spec += [{"type": "Linear", "in_features": width, "out_features": h},
                 {"type": activation}]
        width = h
    return spec + [{"type": "Linear", "in_features": width, "out_features": classes}]


def logreg(inputs: int = 784, classes: int = 10):
    """Multinomial logistic regression: one Linear layer on the flattened input."""
    return mlp(inputs, hidden=(), classes=classes)


def _flat_input(inputs: int = 784, **_):
    # 784 inputs are an MNIST image; any other count, a flat vector.
    return (1, 28, 28) if inputs == 784 else (int(inputs),)


@hookimpl
def nnumba_register_models():
    return {
        "mlp": NamedModel(mlp, _flat_input,
                          {"epochs": 20, "lr": 0.1, "momentum": 0.9, "batch_size": 100}),
        "logreg": NamedModel(logreg, _flat_input,
                             {"epochs": 20, "lr": 0.05, "momentum": 0.9, "batch_size": 100}),
    }
