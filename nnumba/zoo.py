"""Named models: specs the command line and the library build by name."""
from .hookspecs import hookimpl


def mlp(inputs: int = 784, hidden=(256,), classes: int = 10, activation: str = "ReLU"):
    """The lecture's MLP: Flatten, then Linear + activation per hidden layer, then Linear."""
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    spec, width = [{"type": "Flatten"}], inputs
    for h in hidden:
        spec += [{"type": "Linear", "in_features": width, "out_features": h},
                 {"type": activation}]
        width = h
    return spec + [{"type": "Linear", "in_features": width, "out_features": classes}]


def logreg(inputs: int = 784, classes: int = 10):
    """Multinomial logistic regression: one Linear layer on the flattened input."""
    return mlp(inputs, hidden=(), classes=classes)


# Training settings that reach the stated accuracy; `nnumba train` starts from these.
mlp.train_defaults = {"epochs": 20, "lr": 0.1, "momentum": 0.9, "batch_size": 100}
logreg.train_defaults = {"epochs": 20, "lr": 0.05, "momentum": 0.9, "batch_size": 100}


@hookimpl
def nnumba_register_models():
    return {"mlp": mlp, "logreg": logreg}
