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


def lenet(classes: int = 10):
    """The lecture's MNIST CNN (LeNet-style), for 1 x 28 x 28 inputs."""
    return [{"type": "Conv2d", "in_channels": 1, "out_channels": 32, "kernel_size": 5},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 3},
            {"type": "Conv2d", "in_channels": 32, "out_channels": 64, "kernel_size": 5},
            {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Linear", "in_features": 256, "out_features": 256}, {"type": "ReLU"},
            {"type": "Linear", "in_features": 256, "out_features": classes}]


# Training settings that reach the stated accuracy; `nnumba train` starts from these.
mlp.train_defaults = {"epochs": 20, "lr": 0.1, "momentum": 0.9, "batch_size": 100}
logreg.train_defaults = {"epochs": 20, "lr": 0.05, "momentum": 0.9, "batch_size": 100}
lenet.train_defaults = {"epochs": 10, "lr": 0.05, "momentum": 0.9, "batch_size": 100}
# The per-sample input each model is built for (nnumba summary uses it).
mlp.input_shape = logreg.input_shape = lenet.input_shape = (1, 28, 28)


@hookimpl
def nnumba_register_models():
    return {"mlp": mlp, "logreg": logreg, "lenet": lenet}
